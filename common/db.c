/*
 * db.c - the MariaDB Connector/C wrapper: connection, reconnection,
 * prepared-statement cache, error classification.
 */
#include "db.h"

#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

/* Prepared statements kept per connection; the daemons use a handful. */
#define DB_STMT_CACHE 32
/* Initial size of a text result column; longer ones are fetched again. */
#define DB_COL_INIT 256
/* Most parameters or result columns of one statement. */
#define DB_MAX_BINDS 1024
/* A connection unused this long is pinged before its next statement
 * outside a transaction: the server may have closed it meanwhile
 * (wait_timeout), and a fresh one is made without a word instead of
 * failing the statement. */
#define DB_IDLE_CHECK_MS 1000
/* A transaction's first statement that failed on a dead connection this
 * fast goes once more on a fresh one (db_first_again). */
#define DB_AGAIN_MS 1000

struct db_stmt {
	char *sql;
	MYSQL_STMT *stmt;
	unsigned long nparams;
	unsigned long long last_use;
};

struct db_conn {
	struct db_params p;
	MYSQL *my;
	int connected;
	int in_txn;
	int txn_broken; /* the connection was lost inside the transaction */
	int txn_fresh;  /* in a transaction, no statement sent yet */
	int ac_off;     /* the session's autocommit is off (db_begin) */
	unsigned long session_id; /* the server's id of the last session */
	long long server_started; /* when its server started (s, epoch) */
	_Atomic unsigned long *session_out; /* a copy for another thread */
	long long used_ms;        /* monotonic time of its last use */
	char session_sql[512];    /* run on every new connection */
	unsigned err;
	char errmsg[512];
	struct db_stmt cache[DB_STMT_CACHE];
	unsigned long long use_clock;
};

void
db_global_init(void)
{
	mysql_library_init(0, NULL, NULL);
}

void
db_global_end(void)
{
	mysql_library_end();
}

static void
db_set_err(db_conn *c, unsigned code, const char *msg)
{
	c->err = code;
	snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg ? msg : "?");
}

static int
db_is_conn_error(unsigned e)
{
	switch (e) {
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_CONN_HOST_ERROR:
	case CR_CONNECTION_ERROR:
	case CR_SERVER_LOST_EXTENDED:
	case CR_UNKNOWN_HOST:
	case CR_COMMANDS_OUT_OF_SYNC:
	case ER_CONNECTION_KILLED:
	case ER_SERVER_SHUTDOWN:
	case ER_CON_COUNT_ERROR:
	case ER_QUERY_INTERRUPTED:
	case 4031: /* ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8) */
	/* A server that takes no writes now (read_only, a full disk) is
	 * down for every daemon, as a lost one is: not the fault of the
	 * statement. */
	case ER_OPTION_PREVENTS_STATEMENT:
	case ER_READ_ONLY_MODE:
	case ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION:
	case ER_DISK_FULL:
	case ER_RECORD_FILE_FULL:
		return 1;
	}
	return 0;
}

static void
db_cache_clear(db_conn *c)
{
	int i;

	for (i = 0; i < DB_STMT_CACHE; i++) {
		if (c->cache[i].stmt != NULL)
			mysql_stmt_close(c->cache[i].stmt);
		free(c->cache[i].sql);
		memset(&c->cache[i], 0, sizeof(c->cache[i]));
	}
}

void
db_disconnect(db_conn *c)
{
	db_cache_clear(c);
	if (c->my != NULL)
		mysql_close(c->my);
	c->my = NULL;
	c->connected = 0;
	if (c->in_txn)
		c->txn_broken = 1;
}

/* Maps the last error of the connection or statement to a db_rc and
 * drops the connection if it is gone. */
static int
db_classify(db_conn *c, unsigned code, const char *msg)
{
	db_set_err(c, code, msg);
	if (code == ER_DUP_ENTRY || code == ER_DUP_ENTRY_WITH_KEY_NAME)
		return DB_EDUP;
	if (code == ER_LOCK_DEADLOCK || code == ER_LOCK_WAIT_TIMEOUT)
		return DB_ERETRY;
	if (db_is_conn_error(code)) {
		db_disconnect(c);
		return DB_ECONN;
	}
	return DB_EOTHER;
}

db_conn *
db_new(const struct db_params *params)
{
	db_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->p = *params;
	return c;
}

void
db_free(db_conn *c)
{
	if (c == NULL)
		return;
	db_disconnect(c);
	memset(c->p.pass, 0, sizeof(c->p.pass));
	free(c);
}

int
db_is_connected(const db_conn *c)
{
	return c->connected;
}

unsigned long
db_session_id(const db_conn *c)
{
	return c->session_id;
}

long long
db_server_started(const db_conn *c)
{
	return c->server_started;
}

void
db_share_session_id(db_conn *c, _Atomic unsigned long *out)
{
	c->session_out = out;
	if (out != NULL)
		atomic_store(out, c->session_id);
}

int
db_count_row(void *ud, const struct db_col *cols, size_t ncols)
{
	long long *n = ud;

	if (ncols != 1 || cols[0].is_null)
		return -1;
	*n = strtoll(cols[0].s, NULL, 10);
	return 0;
}

int
db_lock_wait_timed_out(const db_conn *c)
{
	return c->err == ER_LOCK_WAIT_TIMEOUT;
}

const char *
db_error(const db_conn *c)
{
	return c->errmsg;
}

unsigned
db_errno(const db_conn *c)
{
	return c->err;
}

/* The start time of the server of the new connection c, into
 * c->server_started (to the second: now - Uptime).  0 or -1. */
static int
db_read_started(db_conn *c)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	int rc = -1;

	if (mysql_query(c->my, "SELECT UNIX_TIMESTAMP() - VARIABLE_VALUE FROM "
	    "information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'")
	    != 0 || (res = mysql_store_result(c->my)) == NULL)
		return -1;
	if ((row = mysql_fetch_row(res)) != NULL && row[0] != NULL) {
		c->server_started = strtoll(row[0], NULL, 10);
		rc = 0;
	}
	mysql_free_result(res);
	return rc;
}

int
db_connect(db_conn *c)
{
	unsigned int tmo;
	my_bool off = 0;

	if (c->connected)
		return DB_OK;
	if (c->in_txn) {
		db_set_err(c, CR_SERVER_LOST, "connection lost inside a "
		    "transaction; roll back first");
		return DB_ECONN;
	}
	c->my = mysql_init(NULL);
	if (c->my == NULL) {
		db_set_err(c, CR_OUT_OF_MEMORY, "mysql_init: out of memory");
		return DB_ECONN;
	}
	tmo = (unsigned)c->p.connect_timeout_s;
	mysql_options(c->my, MYSQL_OPT_CONNECT_TIMEOUT, &tmo);
	tmo = (unsigned)c->p.io_timeout_s;
	mysql_options(c->my, MYSQL_OPT_READ_TIMEOUT, &tmo);
	mysql_options(c->my, MYSQL_OPT_WRITE_TIMEOUT, &tmo);
	/* Reconnecting silently could split a transaction: we do it
	 * ourselves, only between transactions. */
	mysql_options(c->my, MYSQL_OPT_RECONNECT, &off);
	mysql_options(c->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(c->my, MYSQL_INIT_COMMAND,
	    "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,"
	    "NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
	    "NO_ENGINE_SUBSTITUTION', autocommit = 1");
	if (mysql_real_connect(c->my, c->p.host, c->p.user, c->p.pass,
	    c->p.name, (unsigned)c->p.port, NULL, 0) == NULL) {
		db_set_err(c, mysql_errno(c->my), mysql_error(c->my));
		mysql_close(c->my);
		c->my = NULL;
		return DB_ECONN;
	}
	c->connected = 1;
	c->ac_off = 0;
	c->session_id = mysql_thread_id(c->my);
	if (c->session_out != NULL)
		atomic_store(c->session_out, c->session_id);
	c->used_ms = clock_ms();
	/* Session ids start again at 1 when the server restarts: the
	 * start time tells two sessions of the same id apart. */
	if (db_read_started(c) == -1) {
		db_set_err(c, mysql_errno(c->my), mysql_error(c->my));
		db_disconnect(c);
		return DB_ECONN;
	}
	if (c->session_sql[0] != '\0' &&
	    mysql_query(c->my, c->session_sql) != 0) {
		db_set_err(c, mysql_errno(c->my), mysql_error(c->my));
		db_disconnect(c);
		return DB_ECONN;
	}
	return DB_OK;
}

void
db_set_session(db_conn *c, const char *sql)
{
	snprintf(c->session_sql, sizeof(c->session_sql), "%s",
	    sql != NULL ? sql : "");
}

int
db_ping(db_conn *c)
{
	int rc;

	if ((rc = db_connect(c)) != DB_OK)
		return rc;
	if (mysql_ping(c->my) != 0)
		return db_classify(c, mysql_errno(c->my), mysql_error(c->my));
	return DB_OK;
}

/* The session's autocommit on (1) or off (0), when it is not: a round
 * trip.  A db_rc. */
static int
db_autocommit(db_conn *c, int on)
{
	if (c->ac_off == !on)
		return DB_OK;
	if (mysql_autocommit(c->my, on ? 1 : 0) != 0)
		return db_classify(c, mysql_errno(c->my), mysql_error(c->my));
	c->ac_off = !on;
	return DB_OK;
}

/* Connects if needed (a fresh connection for an idle one that the
 * server closed) and refuses to work on a transaction whose connection
 * was lost.  Between transactions autocommit is on: a statement there
 * commits at once, and never opens a transaction that nobody ends. */
static int
db_ready(db_conn *c)
{
	long long now = clock_ms();
	int rc;

	if (c->txn_broken) {
		db_set_err(c, CR_SERVER_LOST, "connection lost inside a "
		    "transaction; roll back first");
		return DB_ECONN;
	}
	if (c->connected && !c->in_txn && now - c->used_ms > DB_IDLE_CHECK_MS &&
	    mysql_ping(c->my) != 0)
		db_disconnect(c);
	c->used_ms = now;
	if ((rc = db_connect(c)) != DB_OK || c->in_txn)
		return rc;
	/* A dead connection: a fresh session has autocommit on. */
	if ((rc = db_autocommit(c, 1)) == DB_ECONN)
		rc = db_connect(c);
	return rc;
}

/* Sets autocommit off on a live connection (a fresh one if the one
 * there was found dead).  A db_rc. */
static int
db_txn_open(db_conn *c)
{
	int rc;

	if ((rc = db_connect(c)) != DB_OK)
		return rc;
	if ((rc = db_autocommit(c, 0)) == DB_ECONN &&
	    (rc = db_connect(c)) == DB_OK)
		rc = db_autocommit(c, 0);
	return rc;
}

/* In a transaction that has sent no statement yet (1), or in none (0). */
static void
db_txn_set(db_conn *c, int in)
{
	c->in_txn = in;
	c->txn_fresh = in;
	c->txn_broken = 0;
}

/* After a statement that started at t0 (clock_ms) and returned rc: the
 * transaction, if any, has sent a statement now; 1 when this one goes
 * once more, on a fresh connection.  Only
 * the first statement of a transaction, and only when it found its
 * connection dead (closed by the server while idle, the server
 * restarted: the socket lost, CR_SERVER_GONE_ERROR or CR_SERVER_LOST)
 * at once: it has left nothing behind, since autocommit is off and no
 * COMMIT came.  Not after a wait (a read timeout, a session killed
 * after a second at work: the statement may still be running there,
 * and is not run twice at once), nor for a server that refuses writes
 * (an outage, classified with the lost connections).  A session killed
 * sooner (the app's shutdown ends its transactions so) looks like a
 * dead one: its statement goes again, rolled back as it was, as the
 * START TRANSACTION that met such a session did. */
static int
db_first_again(db_conn *c, int rc, long long t0)
{
	int first = c->in_txn && c->txn_fresh;

	c->txn_fresh = 0;
	if (!first || rc != DB_ECONN || !c->txn_broken ||
	    (c->err != CR_SERVER_GONE_ERROR && c->err != CR_SERVER_LOST) ||
	    clock_ms() - t0 > DB_AGAIN_MS)
		return 0;
	c->in_txn = 0;
	c->txn_broken = 0;
	rc = db_txn_open(c);
	/* In the transaction again, its first statement about to go once
	 * more; or still lost there (the error now the new connection's),
	 * until the caller rolls back. */
	c->in_txn = 1;
	c->txn_broken = rc != DB_OK;
	return rc == DB_OK;
}

static int
db_exec_sql_once(db_conn *c, const char *sql)
{
	MYSQL_RES *res;
	int rc;

	if ((rc = db_ready(c)) != DB_OK)
		return rc;
	if (mysql_query(c->my, sql) != 0)
		return db_classify(c, mysql_errno(c->my), mysql_error(c->my));
	/* Drain any result so that the connection stays in sync. */
	do {
		res = mysql_store_result(c->my);
		if (res != NULL)
			mysql_free_result(res);
	} while (mysql_next_result(c->my) == 0);
	if (mysql_errno(c->my) != 0)
		return db_classify(c, mysql_errno(c->my), mysql_error(c->my));
	return DB_OK;
}

int
db_exec_sql(db_conn *c, const char *sql)
{
	long long t0 = clock_ms();
	int rc = db_exec_sql_once(c, sql);

	if (db_first_again(c, rc, t0))
		rc = db_exec_sql_once(c, sql);
	return rc;
}

/* No START TRANSACTION, a round trip before every transaction's first
 * statement: the session's autocommit is off while it runs transactions
 * (set once; db_ready sets it on again before a statement between
 * them), so the first statement opens the transaction and COMMIT or
 * ROLLBACK ends it.  Without db_ready's look at a connection idle for a
 * while (a ping, one round trip more): a first statement that finds it
 * dead goes once more on a fresh one (db_first_again). */
int
db_begin(db_conn *c)
{
	int rc;

	if (c->in_txn) {
		db_set_err(c, 0, "db_begin inside a transaction");
		return DB_EOTHER;
	}
	c->used_ms = clock_ms();
	if ((rc = db_txn_open(c)) != DB_OK)
		return rc;
	db_txn_set(c, 1);
	return DB_OK;
}

/* A rollback that failed other than by a lost connection leaves the
 * server's transaction in doubt: the connection goes (the server rolls
 * back), so that no later statement (a SET autocommit = 1 or a COMMIT)
 * ever commits it. */
static void
db_rollback_or_drop(db_conn *c)
{
	if (mysql_rollback(c->my) != 0 && c->connected)
		db_disconnect(c);
}

int
db_commit(db_conn *c)
{
	int rc;

	if (!c->in_txn) {
		db_set_err(c, 0, "db_commit outside a transaction");
		return DB_EOTHER;
	}
	/* No statement sent: nothing to end on the server, whatever
	 * became of the connection. */
	if (c->txn_fresh) {
		db_txn_set(c, 0);
		return DB_OK;
	}
	if (c->txn_broken || !c->connected) {
		db_set_err(c, CR_SERVER_LOST, "connection lost inside a "
		    "transaction");
		return DB_ECONN;
	}
	if (mysql_commit(c->my) != 0) {
		rc = db_classify(c, mysql_errno(c->my), mysql_error(c->my));
		/* The outcome of a commit whose reply was lost is unknown to
		 * us; callers must treat DB_ECONN here as "maybe committed"
		 * and rely on idempotence downstream. */
		if (rc != DB_ECONN)
			db_rollback_or_drop(c);
		c->in_txn = 0;
		c->txn_broken = 0;
		return rc;
	}
	c->in_txn = 0;
	return DB_OK;
}

int
db_rollback(db_conn *c)
{
	int rc = DB_OK;

	if (c->in_txn && c->txn_fresh) {
		db_txn_set(c, 0);
		return DB_OK;
	}
	if (c->connected && mysql_rollback(c->my) != 0) {
		rc = db_classify(c, mysql_errno(c->my), mysql_error(c->my));
		if (c->connected)
			db_disconnect(c);
	}
	c->in_txn = 0;
	c->txn_broken = 0;
	return rc;
}

/* Returns the cached statement for sql, preparing it on first use. */
static int
db_stmt_get(db_conn *c, const char *sql, struct db_stmt **out)
{
	struct db_stmt *s, *victim = NULL;
	int i, rc;

	for (i = 0; i < DB_STMT_CACHE; i++) {
		s = &c->cache[i];
		if (s->sql != NULL && strcmp(s->sql, sql) == 0) {
			s->last_use = ++c->use_clock;
			*out = s;
			return DB_OK;
		}
		if (victim == NULL || s->sql == NULL ||
		    (victim->sql != NULL && s->last_use < victim->last_use))
			victim = s;
	}
	if ((rc = db_ready(c)) != DB_OK)
		return rc;
	if (victim->stmt != NULL)
		mysql_stmt_close(victim->stmt);
	free(victim->sql);
	memset(victim, 0, sizeof(*victim));
	victim->stmt = mysql_stmt_init(c->my);
	if (victim->stmt == NULL)
		return db_classify(c, mysql_errno(c->my), mysql_error(c->my));
	if (mysql_stmt_prepare(victim->stmt, sql, strlen(sql)) != 0) {
		rc = db_classify(c, mysql_stmt_errno(victim->stmt),
		    mysql_stmt_error(victim->stmt));
		if (rc != DB_ECONN) {
			mysql_stmt_close(victim->stmt);
			victim->stmt = NULL;
		}
		return rc;
	}
	victim->sql = strdup(sql);
	if (victim->sql == NULL) {
		mysql_stmt_close(victim->stmt);
		victim->stmt = NULL;
		db_set_err(c, CR_OUT_OF_MEMORY, "out of memory");
		return DB_EOTHER;
	}
	victim->nparams = mysql_stmt_param_count(victim->stmt);
	victim->last_use = ++c->use_clock;
	*out = victim;
	return DB_OK;
}

static int
db_run_once(db_conn *c, const char *sql, const struct db_val *args,
    size_t nargs, struct db_stmt **out)
{
	MYSQL_BIND bind[DB_MAX_BINDS];
	struct db_stmt *s = NULL;
	my_bool is_null = 1;
	size_t i;
	int rc;

	if ((rc = db_ready(c)) != DB_OK)
		return rc;
	if ((rc = db_stmt_get(c, sql, &s)) != DB_OK)
		return rc;
	if (s->nparams != nargs || nargs > DB_MAX_BINDS) {
		db_set_err(c, 0, "parameter count mismatch");
		return DB_EOTHER;
	}
	memset(bind, 0, sizeof(bind[0]) * nargs);
	for (i = 0; i < nargs; i++) {
		switch (args[i].type) {
		case DB_V_NULL:
			bind[i].buffer_type = MYSQL_TYPE_NULL;
			bind[i].is_null = &is_null;
			break;
		case DB_V_STR:
			bind[i].buffer_type = MYSQL_TYPE_STRING;
			bind[i].buffer = (void *)(uintptr_t)args[i].s;
			bind[i].buffer_length = args[i].len;
			bind[i].length = (unsigned long *)(uintptr_t)&args[i].len;
			break;
		case DB_V_INT:
			bind[i].buffer_type = MYSQL_TYPE_LONGLONG;
			bind[i].buffer = (void *)(uintptr_t)&args[i].i;
			break;
		}
	}
	if (nargs > 0 && mysql_stmt_bind_param(s->stmt, bind) != 0)
		return db_classify(c, mysql_stmt_errno(s->stmt),
		    mysql_stmt_error(s->stmt));
	if (mysql_stmt_execute(s->stmt) != 0)
		return db_classify(c, mysql_stmt_errno(s->stmt),
		    mysql_stmt_error(s->stmt));
	*out = s;
	return DB_OK;
}

/* Prepares (or reuses) and executes; the statement is returned in *out. */
static int
db_run(db_conn *c, const char *sql, const struct db_val *args, size_t nargs,
    struct db_stmt **out)
{
	long long t0 = clock_ms();
	int rc = db_run_once(c, sql, args, nargs, out);

	if (db_first_again(c, rc, t0))
		rc = db_run_once(c, sql, args, nargs, out);
	return rc;
}

int
db_exec(db_conn *c, const char *sql, const struct db_val *args, size_t nargs,
    uint64_t *affected)
{
	struct db_stmt *s;
	int rc;

	if ((rc = db_run(c, sql, args, nargs, &s)) != DB_OK)
		return rc;
	if (affected != NULL)
		*affected = (uint64_t)mysql_stmt_affected_rows(s->stmt);
	mysql_stmt_free_result(s->stmt);
	return DB_OK;
}

int
db_query(db_conn *c, const char *sql, const struct db_val *args,
    size_t nargs, db_row_fn fn, void *ud, size_t *nrows)
{
	MYSQL_BIND bind[64];
	struct db_col cols[64];
	unsigned long lens[64];
	my_bool nulls[64], errs[64];
	char *bufs[64];
	size_t sizes[64];
	struct db_stmt *s = NULL;
	unsigned ncols, i;
	size_t rows = 0;
	int rc, f;

	if (nrows != NULL)
		*nrows = 0;
	if ((rc = db_run(c, sql, args, nargs, &s)) != DB_OK)
		return rc;
	ncols = mysql_stmt_field_count(s->stmt);
	if (ncols > 64) {
		mysql_stmt_free_result(s->stmt);
		db_set_err(c, 0, "too many result columns");
		return DB_EOTHER;
	}
	memset(bind, 0, sizeof(bind[0]) * ncols);
	memset(bufs, 0, sizeof(bufs));
	for (i = 0; i < ncols; i++) {
		sizes[i] = DB_COL_INIT;
		bufs[i] = malloc(sizes[i]);
		if (bufs[i] == NULL) {
			db_set_err(c, CR_OUT_OF_MEMORY, "out of memory");
			rc = DB_EOTHER;
			goto out;
		}
		bind[i].buffer_type = MYSQL_TYPE_STRING;
		bind[i].buffer = bufs[i];
		bind[i].buffer_length = sizes[i] - 1;
		bind[i].length = &lens[i];
		bind[i].is_null = &nulls[i];
		bind[i].error = &errs[i];
	}
	if (ncols > 0 && mysql_stmt_bind_result(s->stmt, bind) != 0) {
		rc = db_classify(c, mysql_stmt_errno(s->stmt),
		    mysql_stmt_error(s->stmt));
		goto out;
	}
	for (;;) {
		f = mysql_stmt_fetch(s->stmt);
		if (f == MYSQL_NO_DATA)
			break;
		if (f == 1) {
			rc = db_classify(c, mysql_stmt_errno(s->stmt),
			    mysql_stmt_error(s->stmt));
			goto out;
		}
		for (i = 0; i < ncols; i++) {
			if (!nulls[i] && lens[i] >= sizes[i]) {
				/* Truncated: grow and fetch the column again. */
				char *nb = realloc(bufs[i], lens[i] + 1);

				if (nb == NULL) {
					db_set_err(c, CR_OUT_OF_MEMORY,
					    "out of memory");
					rc = DB_EOTHER;
					goto out;
				}
				bufs[i] = nb;
				sizes[i] = lens[i] + 1;
				bind[i].buffer = nb;
				bind[i].buffer_length = sizes[i] - 1;
				if (mysql_stmt_fetch_column(s->stmt, &bind[i],
				    i, 0) != 0) {
					rc = db_classify(c,
					    mysql_stmt_errno(s->stmt),
					    mysql_stmt_error(s->stmt));
					goto out;
				}
			}
			cols[i].is_null = nulls[i];
			cols[i].len = nulls[i] ? 0 : lens[i];
			bufs[i][cols[i].len] = '\0';
			cols[i].s = bufs[i];
		}
		rows++;
		if (fn != NULL && fn(ud, cols, ncols) != 0) {
			db_set_err(c, 0, "row callback stopped the query");
			rc = DB_EOTHER;
			goto out;
		}
		/* Buffers may have grown for this row: rebind for the next. */
		if (ncols > 0 && mysql_stmt_bind_result(s->stmt, bind) != 0) {
			rc = db_classify(c, mysql_stmt_errno(s->stmt),
			    mysql_stmt_error(s->stmt));
			goto out;
		}
	}
	if (nrows != NULL)
		*nrows = rows;
out:
	if (c->connected && s != NULL && s->stmt != NULL)
		mysql_stmt_free_result(s->stmt);
	for (i = 0; i < ncols; i++)
		free(bufs[i]);
	return rc;
}
