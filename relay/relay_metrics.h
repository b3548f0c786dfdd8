/*
 * relay_metrics.h - the relay's Prometheus series (served by common/obs.c
 * on RELAY_METRICS_PORT; its servers and readiness: common/health.h).
 */
#ifndef OUTBOX_RELAY_METRICS_H
#define OUTBOX_RELAY_METRICS_H

#include <stddef.h>

/* Registers every series; once, at start. */
void relay_metrics_init(void);

/* One batch committed: its messages by outcome (acked, nacked, returned,
 * without a confirm), the rows rescheduled, and the time from its first
 * publish to its last confirm. */
void relay_metrics_batch(size_t acked, size_t nacked, size_t returned,
    size_t pending, size_t rescheduled, double publish_s);
/* One published message: seconds from its row's created_at to its
 * confirm. */
void relay_metrics_lag(double seconds);
/* A row parked after its last attempt. */
void relay_metrics_parked(void);
/* A message the broker refused by closing the channel. */
void relay_metrics_refused(void);
/* One durability barrier: seconds from its start to its commit on
 * disk. */
void relay_metrics_barrier(double seconds);
/* The outbox's unpublished rows and the age of the oldest (0: none). */
void relay_metrics_backlog(long long rows, double oldest_s);

#endif
