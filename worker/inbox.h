/*
 * inbox.h - the worker's inbox: one transaction per batch that
 * records the message ids in processed_messages and runs the handlers'
 * effects for the ids that were new.
 */
#ifndef OUTBOX_WORKER_INBOX_H
#define OUTBOX_WORKER_INBOX_H

#include <stddef.h>

#include "inbatch.h"
#include "db.h"

/* Handles items[0..n) (ITEM_OK, distinct ids) in ONE transaction: inserts
 * their ids into processed_messages and runs their handlers' effects,
 * commits.  Ids already there (a redelivery) get seen_before and no
 * effect: the first attempt inserts without looking, and only when that
 * meets a duplicate key is the batch done again, looking the ids up
 * first.  On failure the transaction is rolled back and the seen_before
 * marks mean nothing.  When every id was seen before, the transaction
 * wrote nothing and its commit flushed nothing: a durability barrier
 * (common/durable.h) then makes sure the rows that said "processed" are
 * on disk before the messages are acked.  Returns a db_rc:
 *   DB_OK      committed (and, if it wrote nothing, the barrier passed);
 *   DB_ECONN   connection lost (when the reply to the COMMIT was lost,
 *              what became of it is found out first, durable_resolve:
 *              DB_OK if it committed; DB_ECONN if it did not, or if that
 *              could not be known: the retry then sees the ids that are
 *              there as processed);
 *   DB_ERETRY  deadlock, lock timeout, or another worker inserted one of
 *              the ids meanwhile: retry;
 *   DB_EOTHER  refused: inbox_refused_by_data() tells whether by the
 *              data of a message (db_errno / db_error say which error). */
int inbox_apply(db_conn *db, struct item *const *items, size_t n);

/* 1 if the last error of db is about the data of a row (too long, bad
 * value, a constraint or a trigger refusing it): retrying the same
 * message cannot succeed, but other messages can.  0 for errors of the
 * database itself (missing table, privileges...). */
int inbox_refused_by_data(const db_conn *db);

#endif
