/*
 * poll.c - the locking read of a batch of due outbox rows.
 */
#include "poll.h"

#include <stdlib.h>

#include "timefmt.h"

static const char SQL_SELECT_DUE[] =
    "SELECT seq, message_id, event_name, payload, attempts, traceparent, "
    "created_at "
    "FROM outbox "
    "WHERE published_at IS NULL AND (next_attempt_at IS NULL OR "
    "next_attempt_at <= UTC_TIMESTAMP(6)) "
    "ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED";

int
poll_connect(db_conn *c)
{
	int rc;

	if (db_is_connected(c))
		return DB_OK;
	if ((rc = db_connect(c)) != DB_OK)
		return rc;
	rc = db_exec_sql(c, "SET SESSION TRANSACTION ISOLATION LEVEL READ "
	    "COMMITTED");
	/* Never a connection without it: the next try starts afresh. */
	if (rc != DB_OK)
		db_disconnect(c);
	return rc;
}

static int
poll_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct outbatch *b = ud;
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
poll_batch(db_conn *c, int limit, struct outbatch *b)
{
	struct db_val arg = DB_INT(limit);
	int rc;

	outbatch_reset(b);
	if ((rc = poll_connect(c)) != DB_OK)
		return rc;
	if ((rc = db_begin(c)) != DB_OK)
		return rc;
	rc = db_query(c, SQL_SELECT_DUE, &arg, 1, poll_row, b, NULL);
	if (rc != DB_OK) {
		db_rollback(c);
		outbatch_reset(b);
		return rc;
	}
	outbatch_seal(b);
	return DB_OK;
}
