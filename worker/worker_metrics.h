/*
 * worker_metrics.h - the worker's Prometheus series (served by
 * common/obs.c on WORKER_METRICS_PORT; its servers and readiness:
 * common/health.h).
 */
#ifndef OUTBOX_WORKER_METRICS_H
#define OUTBOX_WORKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Why a message was dead-lettered (the label "reason" of
 * outbox_worker_messages_dead_lettered_total). */
enum dead_class {
	DEAD_MALFORMED,     /* the envelope does not decode */
	DEAD_UNKNOWN_EVENT, /* no handler for its event_name */
	DEAD_BAD_PAYLOAD,   /* the handler refused the payload */
	DEAD_DB_REFUSED,    /* the database refused its effect */
	DEAD_TOO_OLD,       /* older than the inbox retention allows */
	DEAD_CLASS_COUNT
};

/* Registers every series; once, at start. */
void worker_metrics_init(void);

/* One delivery received from the broker. */
void worker_metrics_consumed(void);
/* One effect committed; created_s: the payload's CreatedAt in seconds
 * since the epoch, or 0 when it has none (then not timed). */
void worker_metrics_handled(double created_s);
void worker_metrics_duplicate(void);
void worker_metrics_dead(enum dead_class c);
/* One database transaction run again (outage, deadlock). */
void worker_metrics_retry(void);
/* One batch acked after its commit: its deliveries. */
void worker_metrics_batch(size_t n);
/* One transaction committed: its time, BEGIN to COMMIT. */
void worker_metrics_commit(double seconds);
/* Processed ids deleted by the inbox retention. */
void worker_metrics_pruned(uint64_t n);
/* The last sample of the ready messages in queue outbox / outbox.dlq
 * (qdepth.c). */
void worker_metrics_queue_depth(double n);
void worker_metrics_dlq_depth(double n);

#endif
