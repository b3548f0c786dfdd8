/*
 * poll.c - the locking read of a batch of due outbox rows.
 */
#include "poll.h"

#include <stdio.h>
#include <stdlib.h>

#include "retention.h"
#include "timefmt.h"

/* The two halves of a batch, both through ix_outbox_due (published_at
 * DESC, next_attempt_at, seq), so that rows waiting for a later retry and
 * parked rows are never read: first the retries that are due (oldest due
 * first), then fresh rows in sequence order.  The unpublished rows sort
 * after every published one (migration 014): a locking read ends on the
 * first entry past its range, and keeps it locked until the commit; with
 * NULL first that entry was the oldest published row, the retention's
 * next to delete (tests/it_relay_sessions.c, "poll cost").
 *
 * Forced, never left to the optimizer: on a small outbox it read the
 * fresh rows through the primary key, on one mostly published through
 * ix_outbox_due, and it changes its mind as the statistics move.  Two
 * relay sessions polling through different indexes hold each other's
 * marks back: one that skips (SKIP LOCKED) the rows the other holds
 * through the primary key still locks their ix_outbox_due entries, to its
 * end, and the other's mark rewrites those entries: it waited its 2 s and
 * failed (tests/it_relay_refusals.c, mark_not_held_back_by_another_
 * relays_poll).  Through one index, a held entry is skipped unlocked. */
static const char SQL_SELECT_RETRIES[] =
    "SELECT seq, message_id, event_name, payload, attempts, traceparent, "
    "created_at "
    "FROM outbox FORCE INDEX (ix_outbox_due) "
    "WHERE published_at IS NULL AND next_attempt_at <= UTC_TIMESTAMP(6) "
    "ORDER BY next_attempt_at, seq LIMIT ? FOR UPDATE SKIP LOCKED";
static const char SQL_SELECT_FRESH[] =
    "SELECT seq, message_id, event_name, payload, attempts, traceparent, "
    "created_at "
    "FROM outbox FORCE INDEX (ix_outbox_due) "
    "WHERE published_at IS NULL AND next_attempt_at IS NULL "
    "ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED";

/* The binlog mode's recovery: rows not published by the poll mode and
 * not parked, in sequence order, without locks. */
#define SCAN_HEAD \
	"SELECT seq, message_id, event_name, payload, attempts, " \
	"traceparent, created_at FROM outbox WHERE seq > ? AND " \
	"published_at IS NULL AND parked_at IS NULL "
static const char SQL_SCAN[] = SCAN_HEAD "ORDER BY seq LIMIT ?";
/* ... and, from a stored position, not published by the binlog mode
 * either (retention.h): above the position's last_seq, or at or below
 * it with a time within the margin (a long transaction's row may have
 * committed after the position).  No position, or no row at last_seq:
 * every row. */
static const char SQL_SCAN_UNSURE[] = SCAN_HEAD
    "AND (seq > COALESCE(" RETENTION_BINLOG_LAST_SEQ ", 0) OR "
    RETENTION_BINLOG_AT " >= COALESCE(" RETENTION_BINLOG_CUT ", created_at)) "
    "ORDER BY seq LIMIT ?";

void
poll_session(db_conn *c, int idle_transaction_timeout_s)
{
	char sql[256];

	/* READ COMMITTED: the locking reads take no gap locks, so the app's
	 * inserts never wait for a relay.  idle_transaction_timeout: the
	 * server ends the session of a relay that froze or vanished while
	 * holding rows, so that another relay takes them.  A lock wait of 2
	 * s at most: a relay waits for locks only when relays wait for each
	 * other through their several open transactions, which the server
	 * cannot see as a deadlock; failing fast breaks it. */
	snprintf(sql, sizeof(sql), "SET SESSION tx_isolation = "
	    "'READ-COMMITTED', SESSION idle_transaction_timeout = %d, "
	    "SESSION innodb_lock_wait_timeout = 2",
	    idle_transaction_timeout_s);
	db_set_session(c, sql);
}

struct poll_ud {
	struct outbatch *b;
	const struct unmarked *u;
};

static int
poll_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct poll_ud *p = ud;
	struct outbatch *b = p->b;
	struct timespec ts;
	size_t before = b->n;
	long long seq;
	unsigned long att;
	char *end;

	if (ncols != 7 || cols[0].is_null || cols[1].is_null ||
	    cols[2].is_null || cols[3].is_null || cols[4].is_null)
		return -1;
	seq = strtoll(cols[0].s, &end, 10);
	if (*end != '\0')
		return -1;
	att = strtoul(cols[4].s, &end, 10);
	if (*end != '\0')
		return -1;
	if (p->u != NULL && unmarked_has(p->u, (int64_t)seq)) {
		outbatch_add_sent(b, (int64_t)seq);
		return 0;
	}
	/* A row that does not fit stays locked until the commit and is
	 * read again by the next batch. */
	outbatch_add(b, (int64_t)seq, (unsigned)att, cols[1].s, cols[1].len,
	    cols[2].s, cols[2].len, cols[3].s, cols[3].len,
	    cols[5].is_null ? NULL : cols[5].s, cols[5].len);
	/* For the lag metric only: a row that cannot tell is not timed. */
	if (b->n > before && !cols[6].is_null &&
	    timefmt_parse_sql(cols[6].s, &ts) == 0)
		b->rows[b->n - 1].created = (double)ts.tv_sec +
		    (double)ts.tv_nsec / 1e9;
	return 0;
}

int
poll_batch(db_conn *c, int limit, const struct unmarked *u,
    struct outbatch *b)
{
	struct db_val arg;
	struct poll_ud p = { b, u };
	size_t got = 0;
	int rc;

	outbatch_reset(b);
	if ((rc = db_begin(c)) != DB_OK)
		return rc;
	arg = DB_INT(limit);
	rc = db_query(c, SQL_SELECT_RETRIES, &arg, 1, poll_row, &p, &got);
	if (rc == DB_OK && (int)got < limit && !b->full) {
		arg = DB_INT(limit - (int)got);
		rc = db_query(c, SQL_SELECT_FRESH, &arg, 1, poll_row, &p, NULL);
	}
	if (rc != DB_OK) {
		db_rollback(c);
		outbatch_reset(b);
		return rc;
	}
	outbatch_seal(b);
	return DB_OK;
}

int
poll_scan(db_conn *c, int64_t after, int limit, int unsure_only,
    struct outbatch *b)
{
	struct db_val args[2] = { DB_INT(after), DB_INT(limit) };
	struct poll_ud p = { b, NULL };
	int rc;

	outbatch_reset(b);
	rc = db_query(c, unsure_only ? SQL_SCAN_UNSURE : SQL_SCAN, args, 2,
	    poll_row, &p, NULL);
	if (rc != DB_OK) {
		outbatch_reset(b);
		return rc;
	}
	outbatch_seal(b);
	return DB_OK;
}
