/*
 * backlog.h - samples the size of the outbox's backlog for the metrics:
 * unpublished rows and the age of the oldest, every few seconds, between
 * the relay's batches (never on the hot path).
 */
#ifndef OUTBOX_RELAY_BACKLOG_H
#define OUTBOX_RELAY_BACKLOG_H

#include "db.h"

/* Milliseconds between two samples. */
#define BACKLOG_INTERVAL_MS 5000

struct backlog {
	long long next_ms; /* monotonic time of the next sample */
};

/* The first sample is due at once. */
void backlog_init(struct backlog *b, long long now_ms);
/* 1 when a sample is due at now_ms. */
int backlog_due(const struct backlog *b, long long now_ms);
/* One sample on c (outside any transaction), published to the gauges;
 * the next one is due BACKLOG_INTERVAL_MS later, whatever the outcome.
 * A db_rc. */
int backlog_step(struct backlog *b, db_conn *c, long long now_ms);

#endif
