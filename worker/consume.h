/*
 * consume.h - the worker's loop: consume queue outbox, batch deliveries,
 * handle each batch in one database transaction, then ack it with one
 * multiple-ack.  Reconnects to the database and the broker by itself.
 */
#ifndef OUTBOX_WORKER_CONSUME_H
#define OUTBOX_WORKER_CONSUME_H

#include <signal.h>

#include "config.h"

/* Runs until *stop becomes non-zero, then finishes (or rolls back) the
 * batch in flight, closes the connections and returns 0.  Returns -1
 * only when out of memory at start. */
int consume_run(const struct worker_config *cfg, volatile sig_atomic_t *stop);

#endif
