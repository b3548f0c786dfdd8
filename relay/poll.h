/*
 * poll.h - finds the next unpublished outbox rows and locks them.
 */
#ifndef OUTBOX_RELAY_POLL_H
#define OUTBOX_RELAY_POLL_H

#include "outbatch.h"
#include "db.h"

/* Gets the connection ready for the relay's transactions: connects if
 * needed and sets READ COMMITTED for the session (the locking reads
 * then take no gap locks, so the app's inserts never wait for a relay).
 * A db_rc. */
int poll_connect(db_conn *c);

/* Starts a transaction on c and reads into b (reset first) up to limit
 * unpublished rows that are due, in sequence order, locked FOR UPDATE
 * SKIP LOCKED: rows another relay holds are skipped, and the rows read
 * stay locked until the caller commits or rolls back.  The rows are
 * chosen by state, not by "seq above the last seen", so a row that
 * committed after a later one is still found.  On success the
 * transaction stays open, even with no rows; on error it is rolled back.
 * A db_rc. */
int poll_batch(db_conn *c, int limit, struct outbatch *b);

#endif
