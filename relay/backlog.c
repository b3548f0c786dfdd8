/*
 * backlog.c - the backlog sample (backlog.h).
 */
#include "backlog.h"

#include <stdlib.h>

#include "relay_metrics.h"

/*
 * Each sample reads at most BACKLOG_COUNT_MAX rows of each of two kinds
 * (backlog.h), in the order the relay takes them; per kind: the rows
 * read, the oldest one's age (computed by the database server: no
 * parsing here) and the lowest seq.  Kind 1 is the bulk of a backlog,
 * kind 2 what was refused or parked.
 *
 * Poll mode, through ix_outbox_due (published_at DESC, next_attempt_at, seq):
 * 1, fresh rows (next_attempt_at NULL) by seq; 2, rows refused before (a
 * retry to come, or parked: next_attempt_at set) by next_attempt_at.
 */
#define SAMPLE_HEAD \
	"SELECT kind, COUNT(*), COALESCE(TIMESTAMPDIFF(MICROSECOND, " \
	"MIN(created_at), UTC_TIMESTAMP(6)), 0), MIN(seq) FROM ("
static const char SQL_BACKLOG[] = SAMPLE_HEAD
    "(SELECT 1 AS kind, seq, created_at FROM outbox FORCE INDEX "
    "(ix_outbox_due) WHERE published_at IS NULL AND next_attempt_at IS "
    "NULL ORDER BY seq LIMIT ?) UNION ALL "
    "(SELECT 2, seq, created_at FROM outbox FORCE INDEX (ix_outbox_due) "
    "WHERE published_at IS NULL AND next_attempt_at IS NOT NULL "
    "ORDER BY next_attempt_at, seq LIMIT ?)) u GROUP BY kind";

/* Binlog mode: how far the relay has published (NULL before its first
 * row; no row before its first start). */
static const char SQL_LAST_SEQ[] =
    "SELECT last_seq FROM outbox_relay_position WHERE id = 1";

/* Binlog mode, the placeholders the position's last_seq (0: none) and
 * the limit, twice.  published_at is NULL on every row the binlog relay
 * published, so "published_at IS NULL" alone would read the whole table:
 * 1, the rows above the position through the primary key, by seq; 2,
 * the parked ones below it through ix_outbox_due, as parking leaves them
 * (next_attempt_at 9999-12-31: relay/publish.c, migration 010).  A row
 * marked published_at by a poll relay (before a switch of mode) is
 * published whatever its seq. */
static const char SQL_BACKLOG_BINLOG[] = SAMPLE_HEAD
    "(SELECT 1 AS kind, seq, created_at FROM outbox FORCE INDEX (PRIMARY) "
    "WHERE seq > ? AND published_at IS NULL ORDER BY seq LIMIT ?) "
    "UNION ALL "
    "(SELECT 2, seq, created_at FROM outbox FORCE INDEX (ix_outbox_due) "
    "WHERE seq <= ? AND published_at IS NULL AND next_attempt_at >= "
    "'9999-12-31' AND parked_at IS NOT NULL "
    "ORDER BY next_attempt_at, seq LIMIT ?)) u GROUP BY kind";

/* The table's highest seq: where a backlog past the limit ends. */
static const char SQL_MAX_SEQ[] = "SELECT COALESCE(MAX(seq), 0) FROM outbox";
/* Poll mode, past the limit: the refused rows (up to the limit) within
 * the bulk's span, which the span counts already. */
static const char SQL_REFUSED_ABOVE[] =
    "SELECT COUNT(*) FROM (SELECT 1 FROM outbox FORCE INDEX "
    "(ix_outbox_due) WHERE published_at IS NULL AND next_attempt_at IS NOT "
    "NULL AND seq >= ? LIMIT ?) u";

struct sample {
	long long rows[2], age_us[2], low[2];
};

/* strtoll of a whole non-negative column into *v: 0, or -1. */
static int
col_ll(const struct db_col *col, long long *v)
{
	char *end;

	if (col->is_null)
		return -1;
	*v = strtoll(col->s, &end, 10);
	return *end == '\0' && *v >= 0 ? 0 : -1;
}

/* One kind's row: kind, rows, age, lowest seq. */
static int
kind_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct sample *s = ud;
	long long kind;

	if (ncols != 4 || col_ll(&cols[0], &kind) == -1 || kind < 1 ||
	    kind > 2)
		return -1;
	kind--;
	if (col_ll(&cols[1], &s->rows[kind]) == -1 ||
	    col_ll(&cols[2], &s->age_us[kind]) == -1 ||
	    col_ll(&cols[3], &s->low[kind]) == -1)
		return -1;
	return 0;
}

/* The position's last_seq into *ud (left as it is when NULL). */
static int
last_seq_row(void *ud, const struct db_col *cols, size_t ncols)
{
	long long *last = ud;

	if (ncols != 1)
		return -1;
	if (cols[0].is_null)
		return 0;
	return col_ll(&cols[0], last);
}

/* A one-column integer row into *ud. */
static int
one_ll_row(void *ud, const struct db_col *cols, size_t ncols)
{
	return ncols == 1 ? col_ll(&cols[0], ud) : -1;
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
	struct sample s = { { 0, 0 }, { 0, 0 }, { 0, 0 } };
	long long last = 0, limit = BACKLOG_COUNT_MAX + 1, top, inside;
	struct db_val v[4];
	int rc;

	if (!b->binlog) {
		v[0] = DB_INT(limit);
		v[1] = DB_INT(limit);
		rc = db_query(c, SQL_BACKLOG, v, 2, kind_row, &s, NULL);
	} else {
		/* The position first: one stored meanwhile makes this
		 * sample count a few rows just published, never miss one. */
		rc = db_query(c, SQL_LAST_SEQ, NULL, 0, last_seq_row, &last,
		    NULL);
		v[0] = DB_INT(last);
		v[1] = DB_INT(limit);
		v[2] = DB_INT(last);
		v[3] = DB_INT(limit);
		if (rc == DB_OK)
			rc = db_query(c, SQL_BACKLOG_BINLOG, v, 4, kind_row, &s,
			    NULL);
	}
	/* Past the limit, the bulk is its span of seq up to the table's
	 * highest (gaps of rolled-back inserts and rows published out of
	 * turn counted in: an estimate from above), less the refused rows
	 * within it in poll mode (counted as refused); what was refused is
	 * counted up to the limit. */
	if (rc == DB_OK && s.rows[0] > BACKLOG_COUNT_MAX) {
		top = 0;
		inside = 0;
		rc = db_query(c, SQL_MAX_SEQ, NULL, 0, one_ll_row, &top, NULL);
		if (rc == DB_OK && !b->binlog) {
			v[0] = DB_INT(s.low[0]);
			v[1] = DB_INT(limit);
			rc = db_query(c, SQL_REFUSED_ABOVE, v, 2, one_ll_row,
			    &inside, NULL);
		}
		if (rc == DB_OK && top - s.low[0] + 1 - inside > s.rows[0])
			s.rows[0] = top - s.low[0] + 1 - inside;
	}
	if (rc != DB_OK)
		return rc;
	*rows = s.rows[0] + s.rows[1];
	*oldest_s = (double)(s.age_us[0] > s.age_us[1] ? s.age_us[0] :
	    s.age_us[1]) / 1e6;
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
