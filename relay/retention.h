/*
 * retention.h - deletes published outbox rows past their retention, a
 * small batch at a time, between the relay's batches.  Parked rows are
 * never deleted, in either mode.
 */
#ifndef OUTBOX_RELAY_RETENTION_H
#define OUTBOX_RELAY_RETENTION_H

#include <stdint.h>

#include "db.h"

/* Rows deleted per statement: short statements, short locks. */
#define RETENTION_CHUNK 500

struct retention {
	int hours;          /* 0: keep every row */
	int interval_ms;
	long long next_ms;  /* monotonic time of the next sweep */
	int sweeping;       /* the last chunk was full: more to delete */
	uint64_t swept;     /* rows deleted by the current sweep */
	int binlog;         /* 1: binlog mode's meaning of published */
};

/* Binlog mode keeps a row this long after the row of the position's
 * last_seq was created (retention.c says why). */
#define RETENTION_TXN_MARGIN_S 3600

/* Binlog mode's meaning of published, as SQL of the outbox table
 * (retention.c says why), shared by the retention and the recovery of a
 * purged position (poll.c), which reads the rows it does not cover:
 *   RETENTION_BINLOG_LAST_SEQ  the stored position's last_seq (NULL:
 *                              none);
 *   RETENTION_BINLOG_CUT       RETENTION_TXN_MARGIN_S before both the
 *                              position's updated_at and the created_at
 *                              of the row last_seq names (NULL: none);
 *   RETENTION_BINLOG_AT        a row's own time: its creation, or its
 *                              release (outbox-admin parked release),
 *                              whichever is later.
 * A row is published when its seq is at or below the first, it is not
 * parked, and its time is before the second. */
#define RETENTION_STR_(x) #x
#define RETENTION_STR(x) RETENTION_STR_(x)
#define RETENTION_BINLOG_LAST_SEQ \
	"(SELECT last_seq FROM outbox_relay_position WHERE id = 1)"
#define RETENTION_BINLOG_CUT \
	"(SELECT LEAST(p.updated_at, o.created_at) - INTERVAL " \
	RETENTION_STR(RETENTION_TXN_MARGIN_S) " SECOND FROM " \
	"outbox_relay_position p JOIN outbox o ON o.seq = p.last_seq " \
	"WHERE p.id = 1)"
#define RETENTION_BINLOG_AT \
	"GREATEST(created_at, COALESCE(next_attempt_at, created_at))"

/* hours: RELAY_RETENTION_HOURS; interval_s: between sweeps.  The first
 * sweep is due at once; poll mode. */
void retention_init(struct retention *r, int hours, int interval_s,
    long long now_ms);

/* on: from the next step, published means binlog mode's (at or below
 * the stored position, kept a margin for long transactions: retention.c);
 * 0: the poll mode's published_at (the default). */
void retention_binlog_mode(struct retention *r, int on);

/* 1 when retention_step has work to do at now_ms. */
int retention_due(const struct retention *r, long long now_ms);

/* Deletes at most RETENTION_CHUNK published rows older than the
 * retention, by primary key after a non-locking read (it never waits for
 * a row another relay holds), on c outside a transaction.  A sweep is
 * a series of steps until a chunk comes back short; it is logged when it
 * deleted something.  A db_rc; on error the sweep is tried again at the
 * next interval. */
int retention_step(struct retention *r, db_conn *c, long long now_ms);

#endif
