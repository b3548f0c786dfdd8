/*
 * db.h - MariaDB/MySQL connection with cached prepared statements.
 *
 * The only interface to the database: no other file includes <mysql.h>.
 * Every statement that carries values is a prepared statement; values are
 * passed as an array of struct db_val and never spliced into SQL text.
 *
 * A connection is used by one thread at a time.  It connects lazily and
 * reconnects by itself at the start of the next statement after a lost
 * connection, but never inside a transaction: once the connection is lost
 * after db_begin, every call fails with DB_ECONN until db_rollback.
 */
#ifndef OUTBOX_DB_H
#define OUTBOX_DB_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

struct db_params {
	char host[256];
	char user[128];
	char pass[256];
	char name[128];
	int port;
	int connect_timeout_s; /* connect */
	int io_timeout_s;      /* each read or write on the socket */
};

/* Config rows for struct db_params member M of config struct T. */
#define DB_CFG_ROWS(T, M)                                                   \
	CFG_ROW_STR("DB_HOST", T, M.host, "127.0.0.1", 1,                  \
	    "MySQL/MariaDB host"),                                          \
	CFG_ROW_INT("DB_PORT", T, M.port, "3306", 1, 65535,                 \
	    "MySQL/MariaDB port"),                                          \
	CFG_ROW_STR("DB_USER", T, M.user, "root", 1, "database user"),      \
	CFG_ROW_SECRET("DB_PASS", T, M.pass, "", "database password"),      \
	CFG_ROW_STR("DB_NAME", T, M.name, "outbox-demo", 1,                 \
	    "database (schema) name"),                                      \
	CFG_ROW_INT("DB_CONNECT_TIMEOUT", T, M.connect_timeout_s, "2", 1,   \
	    60, "seconds to wait for a database connection"),               \
	CFG_ROW_INT("DB_IO_TIMEOUT", T, M.io_timeout_s, "10", 1, 3600,      \
	    "seconds a database read or write may block")

enum db_rc {
	DB_OK = 0,
	DB_EDUP = -1,   /* duplicate key (ER_DUP_ENTRY) */
	DB_ECONN = -2,  /* no connection, lost, or the server takes no writes
	                 * now (read_only, a full disk): reconnect, retry */
	DB_ERETRY = -3, /* deadlock or lock wait timeout: retry the txn */
	DB_EOTHER = -4, /* anything else: a bug, a constraint, a trigger */
};

enum db_vtype { DB_V_NULL, DB_V_STR, DB_V_INT };

struct db_val {
	enum db_vtype type;
	const char *s;
	unsigned long len;
	long long i;
};

#define DB_STRN(p, n) ((struct db_val){ DB_V_STR, (p), (unsigned long)(n), 0 })
#define DB_STR(p) DB_STRN((p), strlen(p))
#define DB_INT(v) ((struct db_val){ DB_V_INT, NULL, 0, (long long)(v) })
#define DB_NULL ((struct db_val){ DB_V_NULL, NULL, 0, 0 })

/* A numeric macro's value as SQL text, for statements built at compile
 * time: DB_SQL_NUM(CHUNKDEL_ROWS) is "100". */
#define DB_SQL_NUM(n) DB_SQL_NUM_(n)
#define DB_SQL_NUM_(n) #n

/* One column of a result row: text (NUL-terminated) or NULL. */
struct db_col {
	const char *s;
	size_t len;
	int is_null;
};

/* Called per row; return 0 to go on, -1 to stop (db_query returns
 * DB_EOTHER). */
typedef int (*db_row_fn)(void *ud, const struct db_col *cols, size_t ncols);

typedef struct db_conn db_conn;

/* Once per process, before any thread uses the database. */
void db_global_init(void);
void db_global_end(void);

/* A connection handle; does not connect yet.  params is copied.
 * Returns NULL only when out of memory.  Free with db_free. */
db_conn *db_new(const struct db_params *params);
/* Closes and frees; NULL is a no-op. */
void db_free(db_conn *c);

/* A db_row_fn for "SELECT COUNT(*) ...": one integer column into
 * *(long long *)ud; -1 for any other row. */
int db_count_row(void *ud, const struct db_col *cols, size_t ncols);

/* A statement (no values) run on every new connection of c, after the
 * session defaults (e.g. "SET SESSION TRANSACTION ISOLATION LEVEL READ
 * COMMITTED"): a connection that cannot run it is closed again.  sql is
 * copied (at most 511 bytes); NULL clears it. */
void db_set_session(db_conn *c, const char *sql);

/* Connects if not connected.  DB_OK or DB_ECONN. */
int db_connect(db_conn *c);
/* Round trip to the server (connects if needed). */
int db_ping(db_conn *c);
/* Drops the connection (next call reconnects). */
void db_disconnect(db_conn *c);
int db_is_connected(const db_conn *c);

/* The server's id of the session this handle had last (CONNECTION_ID();
 * kept after the connection is lost, for durable_resolve), 0 before
 * the first connection. */
unsigned long db_session_id(const db_conn *c);
/* When the server of that session started (seconds since the epoch,
 * to the second), 0 before the first connection: session ids start
 * again at 1 when the server restarts. */
long long db_server_started(const db_conn *c);
/* Keeps *out equal to db_session_id(c) from now on (updated at every
 * new connection), for another thread to read, e.g. to KILL a statement
 * that hangs.  NULL stops it. */
void db_share_session_id(db_conn *c, _Atomic unsigned long *out);

/* Text and code of the last error on this connection. */
const char *db_error(const db_conn *c);
unsigned db_errno(const db_conn *c);
/* 1 when the last error was a lock wait that timed out (the statement
 * rolled back, the transaction still open), else 0. */
int db_lock_wait_timed_out(const db_conn *c);

/* Opens a transaction without a statement of its own: the session's
 * autocommit is off while it runs transactions, and the first statement
 * starts one (no START TRANSACTION round trip).  A connection found dead
 * (closed by the server while idle, the server restarted) at the first
 * statement is replaced once there, since nothing has been done on it
 * yet; an idle one is not pinged first.  A transaction that sent no
 * statement ends without one (db_commit, db_rollback). */
int db_begin(db_conn *c);
int db_commit(db_conn *c);
/* Always leaves the connection outside a transaction. */
int db_rollback(db_conn *c);

/* Runs a statement without values and without a result (DDL, SET...). */
int db_exec_sql(db_conn *c, const char *sql);

/* Runs a prepared statement (cached per connection by its text).
 * *affected (may be NULL) receives the affected row count. */
int db_exec(db_conn *c, const char *sql, const struct db_val *args,
    size_t nargs, uint64_t *affected);

/* Runs a prepared query and calls fn (NULL: none) for each row.  *nrows
 * (may be NULL) receives the number of rows seen. */
int db_query(db_conn *c, const char *sql, const struct db_val *args,
    size_t nargs, db_row_fn fn, void *ud, size_t *nrows);

#endif
