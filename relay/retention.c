/*
 * retention.c - chunked deletion of old published outbox rows.
 */
#include "retention.h"

#include <stdio.h>

#include "chunkdel.h"
#include "log.h"

/* Old published rows through ix_outbox_due, then exactly those rows by
 * primary key (old published rows, which no relay locks): no locking
 * scan ever waits for a row another relay holds. */
static struct chunkdel old_published = {
	"SELECT seq FROM outbox WHERE published_at < UTC_TIMESTAMP(6) - "
	    "INTERVAL ? HOUR ORDER BY published_at " CHUNKDEL_LIMIT,
	"DELETE FROM outbox WHERE published_at < UTC_TIMESTAMP(6) - "
	    "INTERVAL ? HOUR AND seq IN (",
	1, { 0 },
};

/*
 * Binlog mode (retention_chunk's binlog): published_at stays NULL, and a row
 * counts as published when its transaction is at or before the stored
 * position (outbox_relay_position, migration 013).  The table cannot say
 * which transaction wrote a row, so a row is deleted only when all of
 * these hold:
 *   - older than the retention, as in poll mode;
 *   - seq at or below the position's last_seq (no position, or a NULL
 *     last_seq: nothing is deleted);
 *   - not parked (as in poll mode, where a parked row is unpublished),
 *     and not released since the same cutoff as below: outbox-admin
 *     parked release sets next_attempt_at to the release time, and a
 *     row released after the position is published again (or parked
 *     again: its row must still be there) only when the relay reads
 *     that release from the binary log;
 *   - created RETENTION_TXN_MARGIN_S before both the position's
 *     updated_at and the created_at of the row last_seq names.  A row
 *     with a lower seq than last_seq may come from a transaction that
 *     committed after the position's (a long one: seq is taken at the
 *     INSERT, the binary log's order is the COMMIT's), which the relay
 *     has not read yet.  That transaction was still open when the row
 *     last_seq was created (that row's transaction committed at or
 *     before the position's), so it has lasted since its own row's
 *     created_at at least until then: a row created more than the
 *     longest transaction before the row last_seq cannot be in it.  The
 *     app's transactions last milliseconds (a request, a group commit);
 *     an hour also covers the clock skew between two app machines (both
 *     created_at come from the app's clock; updated_at from the
 *     database's).  updated_at alone would not do: while the relay
 *     catches up on an old binary log, the position it stores names an
 *     old transaction at a recent updated_at.
 * A row deleted too early would still be published (from the binary
 * log); what it would lose is the copy that the recovery of a purged
 * position republishes from the table, and the audit's view of it.
 *
 * The keys: the first CHUNKDEL_ROWS unparked rows at or below the
 * position, in seq order (a short primary key range), and among them the
 * old ones.
 * Every row of the table matches "published_at IS NULL" in this mode,
 * and no index has created_at: a plain "WHERE created_at < ... ORDER BY
 * seq LIMIT ..." would read every row kept once nothing is old enough.
 * Rows are created in seq order (but for the transactions above and
 * clock skew), so the sweep stops at its first chunk with a young row,
 * which is right: the rest is younger. */
#define BINLOG_OLD \
	"created_at < UTC_TIMESTAMP(6) - INTERVAL ? HOUR AND " \
	RETENTION_BINLOG_AT " < " RETENTION_BINLOG_CUT
#define BINLOG_DELETE_HEAD \
	"DELETE FROM outbox WHERE seq <= " RETENTION_BINLOG_LAST_SEQ " AND " \
	"parked_at IS NULL AND " BINLOG_OLD " AND seq IN ("

static struct chunkdel binlog_published = {
	"SELECT seq FROM (SELECT seq, created_at, next_attempt_at FROM outbox "
	    "WHERE seq <= " RETENTION_BINLOG_LAST_SEQ " AND parked_at IS NULL "
	    "ORDER BY seq " CHUNKDEL_LIMIT ") w WHERE " BINLOG_OLD,
	BINLOG_DELETE_HEAD,
	1, { 0 },
};

_Static_assert(sizeof(BINLOG_DELETE_HEAD) - 1 <= CHUNKDEL_HEAD_MAX,
    "chunkdel builds the delete in a buffer of its own");

/* Between two whole chunks at least (pruner.h: paced, a chunk's time
 * times PRUNER_RETENTION_PACE): the relay's own statements go first. */
#define RETENTION_GAP_MS 10

int
retention_chunk(int binlog, db_conn *c, int hours, uint64_t *deleted)
{
	return chunkdel_step(binlog ? &binlog_published : &old_published, c,
	    hours, deleted);
}

static int
chunk_poll(void *ud, db_conn *c, uint64_t *deleted)
{
	const struct relay_config *cfg = ud;

	return retention_chunk(0, c, cfg->retention_hours, deleted);
}

static int
chunk_binlog(void *ud, db_conn *c, uint64_t *deleted)
{
	const struct relay_config *cfg = ud;

	return retention_chunk(1, c, cfg->retention_hours, deleted);
}

struct pruner *
retention_start(const struct relay_config *cfg, int binlog, int *failed)
{
	struct pruner_spec s = { .chunk = binlog ? chunk_binlog : chunk_poll,
	    .chunk_rows = CHUNKDEL_ROWS, .gap_ms = RETENTION_GAP_MS,
	    .pace = PRUNER_RETENTION_PACE,
	    .rest_ms = (unsigned)cfg->retention_interval_s * 1000,
	    .fail_ms = (unsigned)cfg->reconnect_max_ms,
	    .ud = (void *)cfg };
	struct pruner *p;

	*failed = 0;
	if (cfg->retention_hours == 0)
		return NULL;
	snprintf(s.what, sizeof(s.what), "published rows older than %d h",
	    cfg->retention_hours);
	snprintf(s.unit, sizeof(s.unit), "rows");
	snprintf(s.task, sizeof(s.task), "retention");
	if ((p = pruner_start(&cfg->db, &s)) == NULL)
		*failed = 1;
	return p;
}
