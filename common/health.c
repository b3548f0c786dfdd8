/*
 * health.c - up flags, reconnect counters and readiness of a daemon's
 * servers (see health.h).
 */
#include "health.h"

#include <stdatomic.h>
#include <stdio.h>

#include "metrics.h"

static const char *const server_labels[SERVER_COUNT] = {
	"server=\"database\"", "server=\"broker\"",
};

static struct mcounter *reconnects[SERVER_COUNT];
static struct mgauge *up_gauge[SERVER_COUNT];
static atomic_int up[SERVER_COUNT];
static atomic_int outage[SERVER_COUNT];

void
health_init(const char *prefix)
{
	char up_name[128], rc_name[128];
	int i;

	snprintf(up_name, sizeof(up_name), "%s_server_up", prefix);
	snprintf(rc_name, sizeof(rc_name), "%s_reconnects", prefix);
	for (i = 0; i < SERVER_COUNT; i++) {
		reconnects[i] = metrics_counter(rc_name, "Servers reachable "
		    "again after an outage", server_labels[i]);
		up_gauge[i] = metrics_gauge(up_name, "1 while the server "
		    "answers, else 0", server_labels[i]);
	}
}

void
health_set(enum server s, int is_up)
{
	atomic_store(&up[s], is_up != 0);
	mgauge_set(up_gauge[s], is_up ? 1 : 0);
}

void
health_reconnected(enum server s)
{
	mcounter_add(reconnects[s], 1);
}

int
health_outage_begin(enum server s)
{
	health_set(s, 0);
	return atomic_exchange(&outage[s], 1) == 0;
}

int
health_outage_end(enum server s)
{
	health_set(s, 1);
	if (atomic_exchange(&outage[s], 0) == 0)
		return 0;
	health_reconnected(s);
	return 1;
}

int
health_outage(enum server s)
{
	return atomic_load(&outage[s]);
}

int
health_ready(void *ud)
{
	(void)ud;
	return atomic_load(&up[SERVER_DB]) && atomic_load(&up[SERVER_MQ]);
}
