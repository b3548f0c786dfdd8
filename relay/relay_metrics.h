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
/* 1 while the broker blocks publishing. */
void relay_metrics_blocked(int on);
/* A row parked after its last attempt. */
void relay_metrics_parked(void);
/* A message the broker refused by closing the channel. */
void relay_metrics_refused(void);
/* One durability barrier: seconds from its start to its commit on
 * disk. */
void relay_metrics_barrier(double seconds);
/* The outbox's unpublished rows and the age of the oldest (0: none). */
void relay_metrics_backlog(long long rows, double oldest_s);

/* Binlog mode (README, "Binlog mode"): its series, registered only in
 * that mode. */
void relay_metrics_binlog_init(void);
/* 1 while this relay holds the leader lock. */
void relay_metrics_binlog_leader(int on);
/* This relay became the leader. */
void relay_metrics_binlog_takeover(void);
/* What the binary log gave: events (rows, ends of transactions,
 * heartbeats) and, among them, outbox rows. */
void relay_metrics_binlog_read(size_t events, size_t rows);
/* The highest seq published or parked up to the stored position. */
void relay_metrics_binlog_position(long long seq);
/* Seconds from the last transaction read to now; 0 when caught up. */
void relay_metrics_binlog_behind(double seconds);
/* A republication of the table's rows: first_start (1) or purged (0). */
void relay_metrics_binlog_recovery(int first_start);

#endif
