/*
 * backlog.c - the backlog sample (backlog.h).
 */
#include "backlog.h"

#include <stdlib.h>

#include "relay_metrics.h"

/* Through ix_outbox_due (published_at, ...): the unpublished rows
 * only.  The age is computed by the database server (no parsing here). */
static const char SQL_BACKLOG[] =
    "SELECT COUNT(*), COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), "
    "UTC_TIMESTAMP(6)), 0) FROM outbox WHERE published_at IS NULL";

/* Binlog mode: how far the relay has published (NULL before its first
 * row; no row before its first start). */
static const char SQL_LAST_SEQ[] =
    "SELECT last_seq FROM outbox_relay_position WHERE id = 1";

/* Binlog mode, the two placeholders the position's last_seq (0: none).
 * published_at is NULL on every row the binlog relay published, so
 * "published_at IS NULL" alone would read the whole table: the rows
 * above the position through the primary key (a short range), and the
 * parked ones below it through ix_outbox_due, as parking leaves them
 * (next_attempt_at 9999-12-31: relay/publish.c, migration 010).  A row
 * marked published_at by a poll relay (before a switch of mode) is
 * published whatever its seq. */
static const char SQL_BACKLOG_BINLOG[] =
    "SELECT COUNT(*), COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), "
    "UTC_TIMESTAMP(6)), 0) FROM ("
    "SELECT created_at FROM outbox WHERE seq > ? AND published_at IS NULL "
    "UNION ALL "
    "SELECT created_at FROM outbox WHERE seq <= ? AND published_at IS NULL "
    "AND next_attempt_at >= '9999-12-31' AND parked_at IS NOT NULL) u";

struct sample {
	long long rows, age_us;
	int got;
};

static int
backlog_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct sample *s = ud;
	char *end;

	if (ncols != 2 || cols[0].is_null || cols[1].is_null)
		return -1;
	s->rows = strtoll(cols[0].s, &end, 10);
	if (*end != '\0')
		return -1;
	s->age_us = strtoll(cols[1].s, &end, 10);
	if (*end != '\0')
		return -1;
	s->got = 1;
	return 0;
}

/* The position's last_seq into *ud (left as it is when NULL). */
static int
last_seq_row(void *ud, const struct db_col *cols, size_t ncols)
{
	long long *last = ud;
	char *end;

	if (ncols != 1)
		return -1;
	if (cols[0].is_null)
		return 0;
	*last = strtoll(cols[0].s, &end, 10);
	return *end == '\0' && *last >= 0 ? 0 : -1;
}

void
backlog_init(struct backlog *b, long long now_ms)
{
	b->next_ms = now_ms;
	b->binlog = 0;
}

void
backlog_binlog_mode(struct backlog *b, int on)
{
	b->binlog = on != 0;
}

int
backlog_due(const struct backlog *b, long long now_ms)
{
	return now_ms >= b->next_ms;
}

int
backlog_sample(const struct backlog *b, db_conn *c, long long *rows,
    double *oldest_s)
{
	struct sample s = { 0, 0, 0 };
	struct db_val v[2];
	long long last = 0;
	int rc;

	if (!b->binlog) {
		rc = db_query(c, SQL_BACKLOG, NULL, 0, backlog_row, &s, NULL);
	} else {
		/* The position first: one stored meanwhile makes this
		 * sample count a few rows just published, never miss one. */
		rc = db_query(c, SQL_LAST_SEQ, NULL, 0, last_seq_row, &last,
		    NULL);
		v[0] = DB_INT(last);
		v[1] = DB_INT(last);
		if (rc == DB_OK)
			rc = db_query(c, SQL_BACKLOG_BINLOG, v, 2, backlog_row,
			    &s, NULL);
	}
	/* COUNT(*) gives one row: DB_OK means backlog_row took it. */
	if (rc != DB_OK)
		return rc;
	*rows = s.rows;
	*oldest_s = (double)s.age_us / 1e6;
	return DB_OK;
}

int
backlog_step(struct backlog *b, db_conn *c, long long now_ms)
{
	long long rows;
	double oldest_s;
	int rc;

	b->next_ms = now_ms + BACKLOG_INTERVAL_MS;
	rc = backlog_sample(b, c, &rows, &oldest_s);
	if (rc == DB_OK)
		relay_metrics_backlog(rows, oldest_s);
	return rc;
}
