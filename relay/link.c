/*
 * link.c - the health of one server (link.h).
 */
#include "link.h"

#include <string.h>

#include "log.h"

void
link_init(struct link *l, const char *name, enum server srv,
    unsigned cap_ms)
{
	memset(l, 0, sizeof(*l));
	l->name = name;
	l->srv = srv;
	backoff_init(&l->bo, RELAY_RECONNECT_BASE_MS, cap_ms);
}

unsigned
link_failed(struct link *l, const char *why)
{
	unsigned ms = backoff_next(&l->bo);

	l->failures++;
	if (l->srv == SERVER_MQ)
		health_broker(-1);
	if (!l->down)
		log_warnx("%s unavailable (%s); retrying with backoff",
		    l->name, why);
	else
		log_debug("%s still unavailable (%s); next try in %u ms",
		    l->name, why, ms);
	l->down = 1;
	health_set(l->srv, 0);
	return ms;
}

void
link_ok(struct link *l)
{
	if (l->down) {
		log_info("%s reachable again after %u failed attempts",
		    l->name, l->failures);
		health_reconnected(l->srv);
	}
	health_set(l->srv, 1);
	l->down = 0;
	l->failures = 0;
	backoff_reset(&l->bo);
}

void
link_pause(struct link *mql, mq_conn *mq, unsigned ms,
    volatile sig_atomic_t *stop)
{
	unsigned step;

	while (ms > 0 && !*stop) {
		/* A loss seen here is logged now; the reconnection comes
		 * at the caller's next turn. */
		if (mq_is_connected(mq) && mq_service(mq) == -1)
			(void)link_failed(mql, mq_error(mq));
		step = ms < RELAY_SERVICE_MS ? ms : RELAY_SERVICE_MS;
		backoff_sleep(step, stop);
		ms -= step;
	}
}
