/*
 * loop.h - the relay's main loop: connections, batches, idle polling,
 * reconnection with backoff, retention, shutdown.
 */
#ifndef OUTBOX_RELAY_LOOP_H
#define OUTBOX_RELAY_LOOP_H

#include <signal.h>

#include "config.h"

/* Runs until *stop becomes non-zero, then finishes (or rolls back) the
 * batch in flight and closes the connections.  Never returns for a lost
 * database or broker: it reconnects.  0, or -1 when out of memory at
 * start. */
int relay_run(const struct relay_config *cfg, volatile sig_atomic_t *stop);

#endif
