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

/* What became of a transaction whose COMMIT got no reply. */
enum durable_outcome {
	DURABLE_COMMITTED,   /* its rows are there, and on disk */
	DURABLE_ROLLED_BACK, /* its session is gone and its rows are not */
	DURABLE_UNKNOWN,     /* could not be found out (the server away) */
};

/* Tells whether the transaction's rows are there: 1 yes, 0 no, or a
 * db_rc (< 0) when the read failed.  Runs on c, outside a transaction. */
typedef int (*durable_probe_fn)(db_conn *c, void *ud);

/* Ends the server's session session_id (one of this user's; 0: none):
 * KILL CONNECTION unless it is already gone, then waits, on c, until it
 * has left the process list, for at most timeout_ms: from then on its
 * transaction is rolled back or committed for good, and nothing of it
 * can still change.  0 once it is gone, -1 otherwise (not in time, or
 * the server away). */
int durable_end_session(db_conn *c, unsigned long session_id,
    int timeout_ms);

/* Finds out what became of a transaction whose COMMIT was sent on a
 * session that then broke (session_id and started: db_session_id and
 * db_server_started of that handle), on c, another connection of the
 * same user:
 *   1. the old session may still be committing: it is killed (unless
 *      already gone) and waited for until it has left the process list,
 *      for at most timeout_ms; before that, not seeing its rows proves
 *      nothing.  When c's server started at another time, the old
 *      session went with the server it ran on (and the id may now be
 *      another session's): nothing is killed;
 *   2. probe(c, ud) looks for the rows;
 *   3. rows seen may not be durable yet: a barrier (name) first.
 * DURABLE_UNKNOWN when a step fails or the old session does not leave in
 * time; the caller then knows no more than before. */
enum durable_outcome durable_resolve(db_conn *c, unsigned long session_id,
    long long started, durable_probe_fn probe, void *ud, const char *name,
    int timeout_ms);

/* Reads the server's durability settings.  Returns 1 when a commit that
 * returned is on disk (innodb_flush_log_at_trx_commit=1, and sync_binlog=1
 * if the binary log is on), 0 when it is not, or a db_rc on error.  desc
 * receives a one-line description for the log. */
int durable_check_server(db_conn *c, char *desc, size_t desclen);

#endif
