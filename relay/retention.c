/*
 * retention.c - chunked deletion of old published outbox rows.
 */
#include "retention.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"

/* Two steps, so that no locking scan ever waits for a row another relay
 * holds: a consistent (non-locking) read of the oldest published rows
 * through ix_outbox_due, then a delete of exactly those rows by primary
 * key (old published rows, which no relay locks). */
static const char SQL_SELECT_OLD[] =
    "SELECT seq FROM outbox WHERE published_at < UTC_TIMESTAMP(6) - "
    "INTERVAL ? HOUR ORDER BY published_at LIMIT 500";

_Static_assert(RETENTION_CHUNK == 500, "SQL_SELECT_OLD's LIMIT");

/* "DELETE ... WHERE seq IN (?, ..., ?) AND published_at < ...": one
 * prepared text for every chunk, padded by repeating a seq. */
static char sql_delete[sizeof("DELETE FROM outbox WHERE published_at < "
    "UTC_TIMESTAMP(6) - INTERVAL ? HOUR AND seq IN ()") +
    2 * RETENTION_CHUNK];

static const char *
delete_sql(void)
{
	size_t i, n;

	if (sql_delete[0] != '\0')
		return sql_delete;
	n = (size_t)snprintf(sql_delete, sizeof(sql_delete), "DELETE FROM "
	    "outbox WHERE published_at < UTC_TIMESTAMP(6) - INTERVAL ? HOUR "
	    "AND seq IN (?");
	for (i = 1; i < RETENTION_CHUNK; i++) {
		sql_delete[n++] = ',';
		sql_delete[n++] = '?';
	}
	sql_delete[n++] = ')';
	sql_delete[n] = '\0';
	return sql_delete;
}

struct old_rows {
	struct db_val *vals; /* [0]: the hours, then the seqs */
	size_t n;
};

static int
old_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct old_rows *o = ud;

	if (ncols != 1 || cols[0].is_null || o->n >= RETENTION_CHUNK)
		return -1;
	o->vals[1 + o->n++] = DB_INT(strtoll(cols[0].s, NULL, 10));
	return 0;
}

/* One chunk; *deleted the rows deleted.  A db_rc. */
static int
delete_chunk(int hours, db_conn *c, uint64_t *deleted)
{
	struct db_val vals[1 + RETENTION_CHUNK];
	struct old_rows o = { vals, 0 };
	size_t i;
	int rc;

	*deleted = 0;
	vals[0] = DB_INT(hours);
	rc = db_query(c, SQL_SELECT_OLD, vals, 1, old_row, &o, NULL);
	if (rc != DB_OK || o.n == 0)
		return rc;
	for (i = 1 + o.n; i < 1 + RETENTION_CHUNK; i++)
		vals[i] = vals[1];
	return db_exec(c, delete_sql(), vals, 1 + RETENTION_CHUNK, deleted);
}

void
retention_init(struct retention *r, int hours, int interval_s,
    long long now_ms)
{
	r->hours = hours;
	r->interval_ms = interval_s * 1000;
	r->next_ms = now_ms;
	r->sweeping = 0;
	r->swept = 0;
}

int
retention_due(const struct retention *r, long long now_ms)
{
	return r->hours > 0 && (r->sweeping || now_ms >= r->next_ms);
}

int
retention_step(struct retention *r, db_conn *c, long long now_ms)
{
	uint64_t n = 0;
	int rc;

	if (!r->sweeping)
		r->swept = 0;
	rc = delete_chunk(r->hours, c, &n);
	if (rc != DB_OK) {
		r->sweeping = 0;
		r->next_ms = now_ms + r->interval_ms;
		return rc;
	}
	r->swept += n;
	r->sweeping = n >= RETENTION_CHUNK;
	if (!r->sweeping) {
		r->next_ms = now_ms + r->interval_ms;
		if (r->swept > 0)
			log_info("retention: deleted %llu published rows "
			    "older than %d h", (unsigned long long)r->swept,
			    r->hours);
	}
	return DB_OK;
}
