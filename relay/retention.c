/*
 * retention.c - chunked deletion of old published outbox rows.
 */
#include "retention.h"

#include "chunkdel.h"
#include "log.h"

/* Old published rows through ix_outbox_due, then exactly those rows by
 * primary key (old published rows, which no relay locks): no locking
 * scan ever waits for a row another relay holds. */
static struct chunkdel old_published = {
	"SELECT seq FROM outbox WHERE published_at < UTC_TIMESTAMP(6) - "
	    "INTERVAL ? HOUR ORDER BY published_at LIMIT 500",
	"DELETE FROM outbox WHERE published_at < UTC_TIMESTAMP(6) - "
	    "INTERVAL ? HOUR AND seq IN (",
	1, { 0 },
};

_Static_assert(RETENTION_CHUNK == CHUNKDEL_ROWS, "a chunk of chunkdel's");

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
	rc = chunkdel_step(&old_published, c, r->hours, &n);
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
