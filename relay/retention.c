/*
 * retention.c - chunked deletion of old published outbox rows.
 */
#include "retention.h"

#include "log.h"

/* Published rows only (published_at < x is false for NULL), through
 * ix_outbox_pending (published_at, seq). */
static const char SQL_DELETE_OLD[] =
    "DELETE FROM outbox WHERE published_at < UTC_TIMESTAMP(6) - "
    "INTERVAL ? HOUR LIMIT 500";

_Static_assert(RETENTION_CHUNK == 500, "SQL_DELETE_OLD's LIMIT");

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
	struct db_val arg = DB_INT(r->hours);
	uint64_t n = 0;
	int rc;

	if (!r->sweeping)
		r->swept = 0;
	rc = db_exec(c, SQL_DELETE_OLD, &arg, 1, &n);
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
