/*
 * position.h - the binlog mode's stored position: the one row of table
 * outbox_relay_position (migration 013), read at start and written once
 * per batch, on the relay's least-privilege login.  "Published" in
 * binlog mode means: in a transaction at or before the stored GTID list
 * (README, "Binlog mode").
 */
#ifndef OUTBOX_RELAY_POSITION_H
#define OUTBOX_RELAY_POSITION_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* Reads the position into gtid (len bytes) and *last_seq (-1 when NULL).
 * 1 when there is one, 0 when none was ever stored, or a db_rc (< 0). */
int position_load(db_conn *c, char *gtid, size_t len, int64_t *last_seq);

/* Stores gtid and last_seq (< 0: NULL) in one statement (autocommit, or
 * the caller's transaction).  A db_rc. */
int position_store(db_conn *c, const char *gtid, int64_t last_seq);

#endif
