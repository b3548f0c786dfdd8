/*
 * inbox_retention.c - the inbox retention: old processed ids deleted,
 * and messages too old to be told apart from handled ones refused
 * (inbox_retention.h).
 */
#include "inbox_retention.h"

#include <inttypes.h>
#include <stdio.h>

#include "chunkdel.h"
#include "health.h"
#include "log.h"
#include "pruner.h"
#include "timefmt.h"
#include "uid.h"
#include "worker_metrics.h"

/* Between two whole chunks: the committer's transactions go first. */
#define INBOX_PRUNE_GAP_MS 10

void
inbox_age(const char *id, size_t n, uint64_t ts, int64_t now_ms,
    struct msg_age *out)
{
	int64_t ms;

	if (uid_time_ms(id, n, &ms)) {
		out->source = AGE_FROM_ID;
		out->born_ms = ms;
	} else if (ts > 0 && ts < (uint64_t)INT64_MAX / 1000) {
		out->source = AGE_FROM_TIMESTAMP;
		out->born_ms = (int64_t)ts * 1000;
	} else {
		out->source = AGE_NONE;
		out->born_ms = 0;
		out->age_ms = 0;
		return;
	}
	out->age_ms = now_ms - out->born_ms;
}

int
inbox_too_old(const struct msg_age *a, int hours, char *reason,
    size_t reasonlen)
{
	struct timespec born;
	char at[40];

	if (hours <= 0 || a->source == AGE_NONE ||
	    a->age_ms <= (int64_t)hours * 3600 * 1000 - INBOX_MARGIN_MS)
		return 0;
	if (reason == NULL)
		return 1;
	born.tv_sec = (time_t)(a->born_ms / 1000);
	born.tv_nsec = (long)(a->born_ms % 1000) * 1000000L;
	if (timefmt_rfc3339(&born, at, sizeof(at)) == -1)
		snprintf(at, sizeof(at), "%" PRId64 " ms", a->born_ms);
	snprintf(reason, reasonlen, "older than WORKER_PROCESSED_RETENTION_HOURS "
	    "(%d h) minus 1 h: %s %s, %" PRId64 " h ago; its processed id may "
	    "be deleted, so it cannot be told apart from a message already "
	    "handled: not applied, an operator decides", hours,
	    a->source == AGE_FROM_ID ? "its id was made at" :
	    "it was published at", at, a->age_ms / (3600 * 1000));
	return 1;
}

/* ---- the pruner ---- */

/* Oldest first along ix_processed_at (migration 011), then exactly those
 * rows by primary key. */
static struct chunkdel old_ids = {
	"SELECT message_id FROM processed_messages WHERE processed_at < "
	    "UTC_TIMESTAMP(6) - INTERVAL ? HOUR ORDER BY processed_at "
	    "LIMIT 500",
	"DELETE FROM processed_messages WHERE processed_at < "
	    "UTC_TIMESTAMP(6) - INTERVAL ? HOUR AND message_id IN (",
	0, { 0 },
};

static int
prune_chunk(void *ud, db_conn *c, uint64_t *deleted)
{
	const struct worker_config *cfg = ud;

	return chunkdel_step(&old_ids, c, cfg->retention_hours, deleted);
}

static void
prune_down(void *ud, db_conn *c)
{
	(void)ud;
	if (health_outage_begin(SERVER_DB))
		log_warnx("database unavailable: %s; old processed ids are "
		    "kept until it takes writes, retrying with backoff",
		    db_error(c));
	else
		log_debug("database still unavailable (pruning processed "
		    "ids): %s", db_error(c));
}

static void
prune_wrote(void *ud)
{
	(void)ud;
	if (health_outage_end(SERVER_DB))
		log_info("database reachable again (pruning processed ids)");
}

static void
prune_count(uint64_t n)
{
	worker_metrics_pruned(n);
}

struct pruner *
inbox_pruner_start(const struct worker_config *cfg, int *failed)
{
	struct pruner_spec s = { .chunk = prune_chunk,
	    .chunk_rows = CHUNKDEL_ROWS, .gap_ms = INBOX_PRUNE_GAP_MS,
	    .rest_ms = (unsigned)cfg->retention_interval_s * 1000,
	    .fail_ms = (unsigned)cfg->retry_max_ms, .down = prune_down,
	    .wrote = prune_wrote, .pruned = prune_count,
	    .ud = (void *)cfg };
	struct pruner *p;

	*failed = 0;
	if (cfg->retention_hours == 0)
		return NULL;
	snprintf(s.what, sizeof(s.what), "processed ids older than %d h",
	    cfg->retention_hours);
	snprintf(s.unit, sizeof(s.unit), "ids");
	snprintf(s.task, sizeof(s.task), "prune processed ids");
	if ((p = pruner_start(&cfg->db, &s)) == NULL)
		*failed = 1;
	return p;
}
