/*
 * dlq.h - dead-lettering: a message the worker cannot handle is copied to
 * the exchange outbox.dlx (queue outbox.dlq) with its reason in the
 * x-dlq-reason header, over a connection of its own in confirm mode, and
 * acked only once the broker confirmed the copy.  When the copy cannot be
 * made, the delivery is rejected without requeue: the queue's own
 * x-dead-letter-exchange then moves it to outbox.dlq (without the
 * reason header).  Either way it leaves the queue, and is never dropped.
 */
#ifndef OUTBOX_WORKER_DLQ_H
#define OUTBOX_WORKER_DLQ_H

#include <stddef.h>

#include "inbatch.h"
#include "mq.h"

struct dlq;

/* A dead-letter publisher; connects on first use.  NULL when out of
 * memory.  params is copied. */
struct dlq *dlq_new(const struct mq_params *params, int confirm_timeout_ms);
void dlq_free(struct dlq *q);

/* Dead-letters every ITEM_BAD item of b not settled yet: copies, then
 * acks (or rejects) each on the consumer connection and marks it settled.
 * Logs each, as the original logs a message it cannot handle.  Returns
 * 0, or -1 when the consumer connection failed (the batch is lost: the
 * broker redelivers what was not settled). */
int dlq_settle(struct dlq *q, mq_conn *consumer, struct inbatch *b);

/* Keeps the idle publisher connection alive (heartbeats); call it while
 * the worker waits for deliveries. */
void dlq_service(struct dlq *q);

#endif
