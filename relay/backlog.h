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

/* A sample reads at most this many rows of each of two kinds (relay/
 * backlog.c): the bulk (fresh rows in poll mode, the rows above the
 * position in binlog mode), in seq order, and the rows refused before
 * (waiting for a retry or parked; parked only, below the position, in
 * binlog mode), in the order the relay retries them.  The sample runs
 * between the relay's batches: counting a backlog of millions row by
 * row every BACKLOG_INTERVAL_MS took the time the relay needed to catch
 * up (1 million rows, every page in memory: 0.2 s in poll mode, 0.35 to
 * 0.47 s in binlog mode).  Up to the limit the count is exact; past it
 * the bulk is the span of its seq up to the table's highest (an
 * estimate from above: the gaps rolled-back inserts leave, and rows
 * published out of turn, are counted in; in poll mode less the refused
 * rows within it), and the refused rows are counted up to the limit.
 * The oldest row is looked for among the rows read: the bulk's oldest
 * is its lowest seq (a row gets its seq when inserted, just after its
 * created_at), so only an old refused row past the limit can be missed
 * (past the limit of the refused kind; in binlog mode, one a poll relay
 * refused before a switch of mode, above the position and past the
 * bulk's limit: a binlog relay keeps its retries in memory). */
#define BACKLOG_COUNT_MAX 10000

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
/* One sample on c (outside any transaction): the unpublished rows
 * (past BACKLOG_COUNT_MAX an estimate, above) and the age of the oldest
 * in seconds (0 when none, database clock).  A db_rc. */
int backlog_sample(const struct backlog *b, db_conn *c, long long *rows,
    double *oldest_s);
/* One sample (backlog_sample), published to the gauges; the next one is
 * due BACKLOG_INTERVAL_MS later, whatever the outcome.  A db_rc. */
int backlog_step(struct backlog *b, db_conn *c, long long now_ms);

#endif
