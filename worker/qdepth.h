/*
 * qdepth.h - the queue depth sampler: a thread of the worker's with a
 * broker connection of its own (the worker's login) that reads the ready
 * messages of queues outbox and outbox.dlq by a passive queue.declare,
 * for the gauges outbox_worker_queue_messages and
 * outbox_worker_dlq_messages (what the "DLQ not empty" alert reads), every
 * WORKER_QUEUE_SAMPLE_INTERVAL seconds (5 by default).
 *
 * Off the consume loop's connection and thread: a slow or lost broker
 * delays a sample, never a delivery.  A passive declare of a missing
 * queue makes the broker close the channel (its connection is then
 * closed here): that queue's gauge keeps its last value and the next
 * sample connects again.  A failure is logged once, and again only after
 * a sample succeeded.
 */
#ifndef OUTBOX_WORKER_QDEPTH_H
#define OUTBOX_WORKER_QDEPTH_H

#include "mq.h"

struct qdepth;

/* Starts the thread (signals blocked in it: they are the main thread's),
 * which connects at its first sample, interval_s later (the gauges read
 * 0 until then), then samples every interval_s; p is copied.  NULL on
 * failure (logged): the worker then runs without the gauges. */
struct qdepth *qdepth_start(const struct mq_params *p, int interval_s);
/* Stops the thread (a sample in progress ends first; the pause is cut
 * short), joins it, closes its connection, frees.  NULL is a no-op. */
void qdepth_free(struct qdepth *q);

#endif
