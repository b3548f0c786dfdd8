/*
 * poll.h - finds the next unpublished outbox rows and locks them (and,
 * for the binlog mode's recovery, reads them without a lock).
 */
#ifndef OUTBOX_RELAY_POLL_H
#define OUTBOX_RELAY_POLL_H

#include "db.h"
#include "outbatch.h"
#include "unmarked.h"

/* The session settings of every new relay connection: READ COMMITTED
 * and idle_transaction_timeout. */
void poll_session(db_conn *c, int idle_transaction_timeout_s);

/* Starts a transaction on c and reads into b (reset first) up to limit
 * unpublished rows that are due (retries that are due first, then fresh
 * rows in sequence order; parked rows never), locked FOR UPDATE
 * SKIP LOCKED: rows another relay holds are skipped, and the rows read
 * stay locked until the caller commits or rolls back.  The rows are
 * chosen by state, not by "seq above the last seen", so a row that
 * committed after a later one is still found.  On success the
 * transaction stays open, even with no rows; on error it is rolled back.
 * A row of u (confirmed before, its mark failed) goes to b->sent[]
 * instead of becoming a message again.  A db_rc. */
int poll_batch(db_conn *c, int limit, const struct unmarked *u,
    struct outbatch *b);

/* The binlog mode's recovery (binlog_loop.c): reads into b (reset first)
 * up to limit rows with seq above after that are neither marked
 * published nor parked (unsure_only: nor published by the binlog mode's
 * stored position, retention.h), in sequence order, without a lock or a
 * transaction of its own.  A row that does not fit sets b->full and is
 * read by the next call.  A db_rc. */
int poll_scan(db_conn *c, int64_t after, int limit, int unsure_only,
    struct outbatch *b);

#endif
