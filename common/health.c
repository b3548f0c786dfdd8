/*
 * health.c - up flags, reconnect counters and readiness of a daemon's
 * servers (see health.h).
 */
#include "health.h"

#include <stdatomic.h>
#include <stdio.h>

#include "metrics.h"
#include "mq.h"

static const char *const server_labels[SERVER_COUNT] = {
	"server=\"database\"", "server=\"broker\"",
};

static struct mcounter *reconnects[SERVER_COUNT];
static struct mgauge *up_gauge[SERVER_COUNT];
static atomic_int up[SERVER_COUNT];
static atomic_int outage[SERVER_COUNT];
static char prefix_s[64];
static struct mgauge *broker_g[MQ_HOSTS_MAX];
static int nbroker;

void
health_init(const char *prefix)
{
	char up_name[128], rc_name[128];
	int i;

	snprintf(prefix_s, sizeof(prefix_s), "%s", prefix);
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
health_broker_hosts(const struct mq_params *p)
{
	struct mq_host h[MQ_HOSTS_MAX];
	char name[128], label[300], err[256];
	int i, n;

	if ((n = mq_hosts_parse(p, h, MQ_HOSTS_MAX, err, sizeof(err))) < 0)
		return;
	snprintf(name, sizeof(name), "%s_broker_connected_info", prefix_s);
	for (i = 0; i < n; i++) {
		if (snprintf(label, sizeof(label), "host=\"%s:%d\"",
		    h[i].host, h[i].port) >= (int)sizeof(label))
			break;
		broker_g[i] = metrics_gauge(name, "1 for the broker of the "
		    "host list connected to, 0 for the others", label);
	}
	nbroker = i;
}

void
health_broker(int k)
{
	int i;

	for (i = 0; i < nbroker; i++)
		mgauge_set(broker_g[i], i == k ? 1 : 0);
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
