/*
 * durable.c - the durability barrier and the server's durability
 * settings (see durable.h).
 */
#include "durable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"

/* A row that really changes (n = n + 1): an UPDATE that changes nothing
 * writes no redo and flushes nothing. */
static const char SQL_BARRIER[] =
    "INSERT INTO durability_barrier (name, n, touched_at) "
    "VALUES (?, 1, UTC_TIMESTAMP(6)) "
    "ON DUPLICATE KEY UPDATE n = n + 1, touched_at = UTC_TIMESTAMP(6)";

static const char SQL_SETTINGS[] =
    "SELECT @@global.innodb_flush_log_at_trx_commit, @@global.log_bin, "
    "@@global.sync_binlog";

int
durable_barrier(db_conn *c, const char *name)
{
	struct db_val a = DB_STRN(name, strnlen(name, DURABLE_NAME_MAX));
	int rc;

	rc = db_exec(c, SQL_BARRIER, &a, 1, NULL);
	/* A connection found dead before anything was sent is replaced
	 * once: the barrier is only a commit of our own. */
	if (rc == DB_ECONN)
		rc = db_exec(c, SQL_BARRIER, &a, 1, NULL);
	return rc;
}

static const char SQL_SESSION_ALIVE[] =
    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?";
static const char SQL_KILL[] = "KILL CONNECTION ?";

/* 1 while the session is in the process list, 0 once it is gone, or a
 * db_rc. */
static int
session_alive(db_conn *c, unsigned long id)
{
	struct db_val a = DB_INT((long long)id);
	long long n = -1;
	int rc;

	rc = db_query(c, SQL_SESSION_ALIVE, &a, 1, db_count_row, &n, NULL);
	if (rc == DB_ECONN)
		rc = db_query(c, SQL_SESSION_ALIVE, &a, 1, db_count_row, &n,
		    NULL);
	if (rc != DB_OK)
		return rc;
	return n > 0;
}

int
durable_end_session(db_conn *c, unsigned long session_id, int timeout_ms)
{
	struct db_val a = DB_INT((long long)session_id);
	long long deadline = clock_ms() + timeout_ms;
	int alive;

	if (session_id == 0)
		return 0;
	alive = session_alive(c, session_id);
	if (alive == 1) {
		/* A session already gone answers "unknown thread": the wait
		 * below tells. */
		(void)db_exec(c, SQL_KILL, &a, 1, NULL);
	}
	while (alive == 1 && clock_ms() < deadline) {
		backoff_sleep(10, NULL);
		alive = session_alive(c, session_id);
	}
	return alive == 0 ? 0 : -1;
}

enum durable_outcome
durable_resolve(db_conn *c, unsigned long session_id, long long started,
    durable_probe_fn probe, void *ud, const char *name, int timeout_ms)
{
	long long skew;
	int seen;

	if (db_connect(c) != DB_OK)
		return DURABLE_UNKNOWN;
	/* Start times are read to the second, each as now - Uptime.  On
	 * another server life the old session went with its server (and
	 * its id may be another session's now): nothing to end. */
	skew = db_server_started(c) - started;
	if (skew >= -2 && skew <= 2 &&
	    durable_end_session(c, session_id, timeout_ms) != 0)
		return DURABLE_UNKNOWN;
	seen = probe(c, ud);
	if (seen < 0)
		return DURABLE_UNKNOWN;
	if (seen == 0)
		return DURABLE_ROLLED_BACK;
	return durable_barrier(c, name) == DB_OK ? DURABLE_COMMITTED :
	    DURABLE_UNKNOWN;
}

struct settings {
	int found;
	long flush, log_bin, sync_binlog;
};

static int
settings_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct settings *s = ud;

	if (ncols != 3 || cols[0].is_null || cols[1].is_null ||
	    cols[2].is_null)
		return -1;
	s->flush = strtol(cols[0].s, NULL, 10);
	s->log_bin = strtol(cols[1].s, NULL, 10);
	s->sync_binlog = strtol(cols[2].s, NULL, 10);
	s->found = 1;
	return 0;
}

int
durable_check_server(db_conn *c, char *desc, size_t desclen)
{
	struct settings s = { 0, 0, 0, 0 };
	int rc, ok;

	rc = db_query(c, SQL_SETTINGS, NULL, 0, settings_row, &s, NULL);
	if (rc != DB_OK)
		return rc;
	if (!s.found)
		return DB_EOTHER;
	ok = s.flush == 1 && (!s.log_bin || s.sync_binlog == 1);
	snprintf(desc, desclen, "innodb_flush_log_at_trx_commit=%ld, binary "
	    "log %s%s: %s", s.flush, s.log_bin ? "on, sync_binlog=" : "off",
	    s.log_bin ? (s.sync_binlog == 1 ? "1" : "not 1") : "",
	    ok ? "a commit that returned is on disk" :
	    "a commit that returned may be lost in a server crash, and so "
	    "may the events published for it");
	return ok;
}
