/*
 * retention.h - deletes published outbox rows past their retention, a
 * small batch at a time, on a thread and a database connection of its
 * own (common/pruner.h), beside publishing: a chunk's DELETE never holds
 * a message.  Parked rows are never deleted, in either mode.
 */
#ifndef OUTBOX_RELAY_RETENTION_H
#define OUTBOX_RELAY_RETENTION_H

#include <stdint.h>

#include "chunkdel.h"
#include "config.h"
#include "db.h"
#include "pruner.h"

/* Binlog mode keeps a row this long after the row of the position's
 * last_seq was created (retention.c says why). */
#define RETENTION_TXN_MARGIN_S 3600

/* Binlog mode's meaning of published, as SQL of the outbox table
 * (retention.c says why), shared by the retention and the recovery of a
 * purged position (poll.c), which reads the rows it does not cover:
 *   RETENTION_BINLOG_LAST_SEQ  the stored position's last_seq (NULL:
 *                              none);
 *   RETENTION_BINLOG_CUT       RETENTION_TXN_MARGIN_S before both the
 *                              position's updated_at and the created_at
 *                              of the row last_seq names (NULL: none);
 *   RETENTION_BINLOG_AT        a row's own time: its creation, or its
 *                              release (outbox-admin parked release),
 *                              whichever is later.
 * A row is published when its seq is at or below the first, it is not
 * parked, and its time is before the second. */
#define RETENTION_BINLOG_LAST_SEQ \
	"(SELECT last_seq FROM outbox_relay_position WHERE id = 1)"
#define RETENTION_BINLOG_CUT \
	"(SELECT LEAST(p.updated_at, o.created_at) - INTERVAL " \
	DB_SQL_NUM(RETENTION_TXN_MARGIN_S) " SECOND FROM " \
	"outbox_relay_position p JOIN outbox o ON o.seq = p.last_seq " \
	"WHERE p.id = 1)"
#define RETENTION_BINLOG_AT \
	"GREATEST(created_at, COALESCE(next_attempt_at, created_at))"

/* One chunk of a sweep on c, outside a transaction (what the pruner
 * runs; the tests call it too): at most CHUNKDEL_ROWS published rows
 * older than hours deleted (binlog: binlog mode's meaning), *deleted how
 * many (fewer: nothing more to delete for now).  A db_rc.  One thread at
 * a time. */
int retention_chunk(int binlog, db_conn *c, int hours, uint64_t *deleted);

/* Starts the retention's pruner: every RELAY_RETENTION_INTERVAL seconds
 * a sweep deletes the published rows older than RELAY_RETENTION_HOURS
 * (binlog: binlog mode's meaning of published, above), CHUNKDEL_ROWS
 * at a time by primary key after a non-locking read (it never waits for
 * a row a relay holds), chunk after chunk while whole chunks go, a short
 * pause between two; a sweep that deleted rows is logged ("pruned N
 * published rows older than H h in T ms").  NULL when
 * RELAY_RETENTION_HOURS is 0, or when it could not start (*failed 1,
 * logged).  Stop it with pruner_free. */
struct pruner *retention_start(const struct relay_config *cfg, int binlog,
    int *failed);

#endif
