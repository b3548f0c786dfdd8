/*
 * link.h - the health of one server the relay talks to (the database or
 * the broker): down from the first failure until a success, logged once
 * per outage, with the reconnection backoff.  Shared by both modes of the
 * relay (loop.c, binlog_loop.c).
 */
#ifndef OUTBOX_RELAY_LINK_H
#define OUTBOX_RELAY_LINK_H

#include <signal.h>

#include "backoff.h"
#include "health.h"
#include "mq.h"

/* First delay before reconnecting; doubles up to RELAY_RECONNECT_MAX_MS. */
#define RELAY_RECONNECT_BASE_MS 100
/* Longest sleep without servicing the broker connection. */
#define RELAY_SERVICE_MS 1000

struct link {
	const char *name;
	enum server srv;
	int down;
	unsigned failures;
	struct backoff bo;
};

void link_init(struct link *l, const char *name, enum server srv,
    unsigned cap_ms);
/* Records a failure (a warning at the first of an outage, the server
 * not ready); returns how long to wait before the next try. */
unsigned link_failed(struct link *l, const char *why);
/* Records a success: the end of an outage, if there was one. */
void link_ok(struct link *l);

/* Sleeps ms (less on *stop), servicing mq (heartbeats, confirms) at
 * least every RELAY_SERVICE_MS; a loss seen meanwhile is recorded on mql
 * (the reconnection is the caller's).  Only while no batch waits for its
 * confirms in a call of the caller's. */
void link_pause(struct link *mql, mq_conn *mq, unsigned ms,
    volatile sig_atomic_t *stop);

#endif
