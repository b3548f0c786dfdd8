/*
 * backlog.c - the backlog sample (backlog.h).
 */
#include "backlog.h"

#include <stdlib.h>

#include "relay_metrics.h"

/* Through ix_outbox_pending (published_at, seq): the unpublished rows
 * only.  The age is computed by the database server (no parsing here). */
static const char SQL_BACKLOG[] =
    "SELECT COUNT(*), COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), "
    "UTC_TIMESTAMP(6)), 0) FROM outbox WHERE published_at IS NULL";

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

void
backlog_init(struct backlog *b, long long now_ms)
{
	b->next_ms = now_ms;
}

int
backlog_due(const struct backlog *b, long long now_ms)
{
	return now_ms >= b->next_ms;
}

int
backlog_step(struct backlog *b, db_conn *c, long long now_ms)
{
	struct sample s = { 0, 0, 0 };
	int rc;

	b->next_ms = now_ms + BACKLOG_INTERVAL_MS;
	rc = db_query(c, SQL_BACKLOG, NULL, 0, backlog_row, &s, NULL);
	if (rc == DB_OK && s.got)
		relay_metrics_backlog(s.rows, (double)s.age_us / 1e6);
	return rc;
}
