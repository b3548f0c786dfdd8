/*
 * backlog.h - samples the size of the outbox's backlog for the metrics:
 * unpublished rows and the age of the oldest, every few seconds, between
 * the relay's batches (never on the hot path).
 *
 * What "unpublished" means depends on the relay's mode (README, "What
 * published means in binlog mode"):
 *   - poll mode (the default): published_at IS NULL, parked rows
 *     included (they are stuck too);
 *   - binlog mode: published_at stays NULL, so a row counts as
 *     unpublished when its seq is above the stored position's last_seq
 *     (outbox_relay_position, migration 013; every row with
 *     published_at IS NULL while no position is stored), and parked rows
 *     count as in poll mode, whatever their seq.
 */
#ifndef OUTBOX_RELAY_BACKLOG_H
#define OUTBOX_RELAY_BACKLOG_H

#include "db.h"

/* Milliseconds between two samples. */
#define BACKLOG_INTERVAL_MS 5000

struct backlog {
	long long next_ms; /* monotonic time of the next sample */
	int binlog;        /* 1: binlog mode's meaning of unpublished */
};

/* The first sample is due at once; poll mode. */
void backlog_init(struct backlog *b, long long now_ms);
/* on: binlog mode's meaning of unpublished from the next sample on; 0:
 * the poll mode's (the default). */
void backlog_binlog_mode(struct backlog *b, int on);
/* 1 when a sample is due at now_ms. */
int backlog_due(const struct backlog *b, long long now_ms);
/* One sample on c (outside any transaction): the unpublished rows and
 * the age of the oldest in seconds (0 when none, database clock).  A
 * db_rc. */
int backlog_sample(const struct backlog *b, db_conn *c, long long *rows,
    double *oldest_s);
/* One sample (backlog_sample), published to the gauges; the next one is
 * due BACKLOG_INTERVAL_MS later, whatever the outcome.  A db_rc. */
int backlog_step(struct backlog *b, db_conn *c, long long now_ms);

#endif
