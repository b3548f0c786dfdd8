/*
 * durable.h - never report what the database may still forget.
 *
 * InnoDB makes a committed transaction visible to other sessions before
 * its redo log is on disk (with the binary log off, nothing orders the
 * two): a session can read rows that a crash of the server will take
 * away.  Whoever derives an answer from another transaction's fresh rows
 * (the relay publishing an outbox row, the app answering 409, a replay
 * or a GET, the worker acking a message it found already processed)
 * first waits for a durability barrier: one small committed write of its
 * own.  The redo log is one ordered stream, so when that commit returns
 * durable, every transaction the session could see before it is durable
 * too.  A commit of the session's own that wrote rows serves as well.
 *
 * The guarantee needs innodb_flush_log_at_trx_commit=1 (and, with the
 * binary log on, sync_binlog=1): durable_check_server says whether the
 * server has them.
 */
#ifndef OUTBOX_DURABLE_H
#define OUTBOX_DURABLE_H

#include "db.h"

/* Longest name of a barrier row (the column is VARCHAR(64)). */
#define DURABLE_NAME_MAX 64

/* Commits one change of the row `name` of durability_barrier (created on
 * first use), outside any transaction: when it returns DB_OK, everything
 * this connection could see before the call is durable.  Any other
 * value: nothing is known (the caller must not report what it read). */
int durable_barrier(db_conn *c, const char *name);

/* Reads the server's durability settings.  Returns 1 when a commit that
 * returned is on disk (innodb_flush_log_at_trx_commit=1, and sync_binlog=1
 * if the binary log is on), 0 when it is not, or a db_rc on error.  desc
 * receives a one-line description for the log. */
int durable_check_server(db_conn *c, char *desc, size_t desclen);

#endif
