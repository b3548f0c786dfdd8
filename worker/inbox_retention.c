/*
 * inbox_retention.c - the inbox retention: old processed ids deleted
 * (inbox_retention.h; the too-old rule is common/inbox_age.c).
 */
#include "inbox_retention.h"

#include <stdio.h>

#include "chunkdel.h"
#include "health.h"
#include "log.h"
#include "pruner.h"
#include "worker_metrics.h"

/* Between two whole chunks at least (pruner.h: paced, a chunk's time
 * times PRUNER_RETENTION_PACE): the committer's transactions go first. */
#define INBOX_PRUNE_GAP_MS 10

/* ---- the pruner ---- */

/* Oldest first along ix_processed_at (migration 011), then exactly those
 * rows by primary key. */
static struct chunkdel old_ids = {
	"SELECT message_id FROM processed_messages WHERE processed_at < "
	    "UTC_TIMESTAMP(6) - INTERVAL ? HOUR ORDER BY processed_at "
	    CHUNKDEL_LIMIT,
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
	    .pace = PRUNER_RETENTION_PACE,
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
