/*
 * it_migrations.c - the schema's migrations against the real MariaDB:
 * migration 009 (every id column to VARCHAR ... COLLATE ascii_bin,
 * converted online); migrations 011 and 014 run again (014 on an outbox
 * with rows and its index as 010 built it).
 *
 * Each test builds a schema of its own, `outbox-migtest` (dropped first,
 * then every migration but 009 through outbox-migrate: a database
 * migrated before 009 existed, 010 included), and runs outbox-migrate on
 * the full folder.  "ids compare byte for byte": the regression test of
 * issue 14 (an upper-case twin of a processed id).  "009 id columns":
 * tens of thousands of rows per table, mixed-case ids among them:
 *   - every id is still there and equal byte for byte, every index and
 *     key is back, the id columns have the target type, nothing of the
 *     migration is left, seq values are never handed out again;
 *   - daemon-like writers (each with its daemon's least-privilege login
 *     and statements) insert, update and delete throughout: no write is
 *     lost or doubled, outbox.seq keeps increasing, and none waits more
 *     than MT_LOCK_BOUND_S on a lock (their sessions' lock_wait_timeout
 *     and innodb_lock_wait_timeout: a longer wait fails the writer);
 *   - a second outbox-migrate applies nothing and changes nothing;
 *   - a migration killed (kill -9) half-way resumes; a table with
 *     triggers of its own is refused, and converted once they are gone.
 * The tests print what they measured (time per million rows, the longest
 * transaction of each writer); no assertion bounds a wall-clock time.
 */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backoff.h"
#include "buf.h"
#include "clock.h"
#include "harness.h"
#include "uid.h"

Suite *it_migrations_suite(void);

#define MT_DB "outbox-migtest"
#define MT_ROWS 40000
/* No writer may wait longer than this for one lock (seconds). */
#define MT_LOCK_BOUND_S 2
#define MT_ER_LOCK_WAIT_TIMEOUT 1205
#define MT_ER_LOCK_DEADLOCK 1213
#define MT_ER_NO_SUCH_TABLE 1146

static const char *
mt_env(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : def;
}

/* ---- the schema of the suite, and outbox-migrate ---- */

/* A folder of links to every migration but 009: a database migrated
 * before 009 existed, 010 included (outbox-migrate applies a lower
 * number late: it looks up each version, not the highest). */
static void
mt_dir_without_009(char *out, size_t outlen)
{
	char rel[512], src[PATH_MAX], from[PATH_MAX + 300], to[1400];
	struct dirent *de;
	DIR *d;

	snprintf(rel, sizeof(rel), "%s/migrations", mt_env("OUTBOX_ROOT",
	    "."));
	ck_assert_ptr_nonnull(realpath(rel, src));
	snprintf(out, outlen, "%s/migtest-without-009", mt_env(
	    "OUTBOX_TEST_LOGS", "/tmp"));
	mkdir(out, 0755);
	d = opendir(src);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (n < 8 || strcmp(de->d_name + n - 4, ".sql") != 0 ||
		    strncmp(de->d_name, "009_", 4) == 0)
			continue;
		snprintf(from, sizeof(from), "%s/%s", src, de->d_name);
		snprintf(to, sizeof(to), "%s/%s", out, de->d_name);
		unlink(to);
		ck_assert_int_eq(symlink(from, to), 0);
	}
	closedir(d);
}

/* Starts outbox-migrate on the suite's schema with the files of dir
 * (NULL: the repository's migrations/), its log named after test and
 * suffix; h_daemon_wait gives its exit status. */
static void
mt_migrate_start(struct h_daemon *d, const char *dir, const char *test,
    const char *suffix)
{
	static char db_env[64], dir_env[1100];
	const char *extra[] = { db_env, dir_env, NULL };

	snprintf(db_env, sizeof(db_env), "DB_NAME=%s", MT_DB);
	if (dir != NULL)
		snprintf(dir_env, sizeof(dir_env), "MIGRATIONS_DIR=%s", dir);
	else
		snprintf(dir_env, sizeof(dir_env), "MIGRATIONS_DIR=%s/migrations",
		    mt_env("OUTBOX_ROOT", "."));
	h_spawn(d, H_MIGRATE, test, suffix, extra);
}

/* outbox-migrate to the end; its exit status. */
static int
mt_migrate(struct h_daemon *d, const char *dir, const char *test,
    const char *suffix)
{
	mt_migrate_start(d, dir, test, suffix);
	return h_daemon_wait(d, 600000);
}
#define MT_MIGRATE(d, dir, suffix) mt_migrate((d), (dir), __func__, (suffix))

static int
mt_ll_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	long long *v = ud;

	if (ncols < 1 || cols[0].is_null)
		return -1;
	*v = strtoll(cols[0].s, NULL, 10);
	return 0;
}

/* The session of outbox-migrate, the one holding its lock (0: none), as
 * seen by connection ud (NULL: h_db). */
static long long
mt_migrate_session_on(db_conn *c)
{
	long long id = 0;

	ck_assert_int_eq(db_query(c != NULL ? c : h_db(), "SELECT "
	    "IFNULL(IS_USED_LOCK('outbox.migrate'), 0)", NULL, 0,
	    mt_ll_cb, &id, NULL), DB_OK);
	return id;
}

static int
mt_no_migration(void *ud)
{
	return mt_migrate_session_on(ud) == 0;
}

/* Checked fixture (each forked test): a fresh schema with every
 * migration but 009; this
 * process's connections (h_db, the writers) use it from then on. */
static void
mt_schema_up(void)
{
	struct db_params p;
	struct h_daemon d = { 0 };
	char dir[600], sql[64];
	db_conn *c;
	long long id;

	h_db_params(&p);
	/* No database: DB_NAME may name this schema, dropped (a test that
	 * makes it again). */
	p.name[0] = '\0';
	c = db_new(&p);
	ck_assert_ptr_nonnull(c);
	/* A migration that a failed test left running (outbox-migrate
	 * outlives the test's fork) ends with its session, before it can
	 * write to this test's schema. */
	if ((id = mt_migrate_session_on(c)) != 0) {
		snprintf(sql, sizeof(sql), "KILL %lld", id);
		(void)db_exec_sql(c, sql);
		ck_assert_msg(h_wait(60000, mt_no_migration, c), "the "
		    "migration left running goes on");
	}
	ck_assert_int_eq(db_exec_sql(c, "DROP DATABASE IF EXISTS `" MT_DB
	    "`"), DB_OK);
	ck_assert_int_eq(db_exec_sql(c, "CREATE DATABASE `" MT_DB "`"),
	    DB_OK);
	db_free(c);
	mt_dir_without_009(dir, sizeof(dir));
	ck_assert_int_eq(MT_MIGRATE(&d, dir, "without-009"), 0);
	setenv("DB_NAME", MT_DB, 1);
	/* h_db may be older than the schema (made again by a test). */
	h_sql("USE `" MT_DB "`");
	ck_assert_int_eq(h_count("SELECT DATABASE() = '" MT_DB "'", NULL, 0), 1);
}

/* Unchecked teardown: the schema goes (its roles' grants stay, by name,
 * harmless). */
static void
mt_schema_down(void)
{
	struct db_params p;
	db_conn *c;

	h_db_params(&p);
	if ((c = db_new(&p)) != NULL) {
		db_exec_sql(c, "DROP DATABASE IF EXISTS `" MT_DB "`");
		db_free(c);
	}
}

/* ---- queries ---- */

static int
mt_str_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	struct buf *b = ud;

	if (ncols > 0 && !cols[0].is_null)
		buf_append(b, cols[0].s, cols[0].len);
	return 0;
}

/* The first column of the first row (concatenated over rows), as a
 * malloc'd string. */
static char *
mt_str(const char *sql)
{
	struct buf b;
	char *s;
	int rc;

	buf_init(&b, 1 << 24);
	rc = db_query(h_db(), sql, NULL, 0, mt_str_cb, &b, NULL);
	ck_assert_msg(rc == DB_OK, "%s: %s", sql, db_error(h_db()));
	s = strndup(b.data != NULL ? b.data : "", b.len);
	ck_assert_ptr_nonnull(s);
	buf_free(&b);
	return s;
}

static long long
mt_count(const char *sql)
{
	return h_count(sql, NULL, 0);
}

/* ---- filling ---- */

struct mt_fill {
	long long rows;         /* per table (idempotency_keys: a quarter) */
	long long outbox_old;   /* published long ago (retention deletes) */
	long long outbox_unpub; /* not published yet */
	long long idem;         /* idempotency keys */
	long long idem_old;     /* of which old enough to be pruned */
	long long auto_inc;     /* outbox's AUTO_INCREMENT after filling */
};

/* n rows per table; ids from MD5, every 7th customer id and 11th message
 * id upper case, others with an upper-case part; a gap at the top of
 * outbox.seq (rows inserted and deleted). */
static void
mt_fill(long long n, struct mt_fill *f)
{
	char sql[2048];

	h_sql("CREATE OR REPLACE TEMPORARY TABLE mt_ids (n INT PRIMARY KEY, "
	    "cid VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, "
	    "mid VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL)");
	snprintf(sql, sizeof(sql), "INSERT INTO mt_ids SELECT n, "
	    "CASE WHEN n %% 7 = 0 THEN UPPER(c) WHEN n %% 13 = 0 THEN "
	    "CONCAT(UPPER(LEFT(c, 13)), SUBSTR(c, 14)) ELSE c END, "
	    "CASE WHEN n %% 11 = 0 THEN UPPER(m) WHEN n %% 17 = 0 THEN "
	    "CONCAT(LEFT(m, 24), UPPER(SUBSTR(m, 25))) ELSE m END "
	    "FROM (SELECT seq AS n, "
	    "CONCAT_WS('-', LEFT(h1, 8), SUBSTR(h1, 9, 4), "
	    "CONCAT('4', SUBSTR(h1, 14, 3)), CONCAT('8', SUBSTR(h1, 18, 3)), "
	    "SUBSTR(h1, 21, 12)) AS c, "
	    "CONCAT_WS('-', LEFT(h2, 8), SUBSTR(h2, 9, 4), "
	    "CONCAT('4', SUBSTR(h2, 14, 3)), CONCAT('9', SUBSTR(h2, 18, 3)), "
	    "SUBSTR(h2, 21, 12)) AS m "
	    "FROM (SELECT seq, MD5(CONCAT('c', seq)) AS h1, "
	    "MD5(CONCAT('m', seq)) AS h2 FROM seq_1_to_%lld) x) y", n);
	h_sql(sql);
	h_sql("INSERT INTO customers (id, email, name, created_at, "
	    "updated_at) SELECT cid, CONCAT('user', n, '@example.com'), "
	    "CONCAT('User ', n), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) "
	    "FROM mt_ids");
	h_sql("INSERT INTO outbox (message_id, event_name, payload, "
	    "traceparent, created_at, published_at) SELECT mid, "
	    "'CustomerCreated', JSON_OBJECT('id', cid, 'email', "
	    "CONCAT('user', n, '@example.com'), 'name', CONCAT('User ', n)), "
	    "CASE WHEN n % 10 = 0 THEN CONCAT('00-', UPPER(MD5(n)), '-', "
	    "LEFT(MD5(-n), 16), '-01') WHEN n % 2 = 0 THEN CONCAT('00-', "
	    "MD5(n), '-', LEFT(MD5(-n), 16), '-01') END, UTC_TIMESTAMP(6), "
	    "CASE n % 3 WHEN 0 THEN NULL WHEN 1 THEN '2020-01-01' "
	    "ELSE UTC_TIMESTAMP(6) END FROM mt_ids ORDER BY n");
	h_sql("INSERT INTO processed_messages (message_id, event_name, "
	    "processed_at) SELECT mid, 'CustomerCreated', UTC_TIMESTAMP(6) "
	    "FROM mt_ids");
	h_sql("INSERT INTO welcome_emails (customer_id, message_id, email, "
	    "name, created_at) SELECT cid, mid, CONCAT('user', n, "
	    "'@example.com'), CONCAT('User ', n), UTC_TIMESTAMP(6) "
	    "FROM mt_ids");
	h_sql("INSERT INTO idempotency_keys (idem_key, request_email, "
	    "request_name, status, customer_id, response_body, created_at) "
	    "SELECT CONCAT('key-', n), CONCAT('user', n, '@example.com'), "
	    "CONCAT('User ', n), 201, cid, '{}', IF(n % 8 = 0, '2020-01-01', "
	    "UTC_TIMESTAMP(6)) FROM mt_ids WHERE n % 4 = 0");
	/* seq values handed out and gone: the new table must not hand them
	 * out again. */
	h_sql("INSERT INTO outbox (message_id, event_name, payload, "
	    "created_at) SELECT CONCAT('gap-', seq), 'Gap', '{}', "
	    "UTC_TIMESTAMP(6) FROM seq_1_to_5");
	h_sql("DELETE FROM outbox WHERE event_name = 'Gap'");
	h_sql("DROP TEMPORARY TABLE mt_ids");

	f->rows = n;
	f->outbox_old = mt_count("SELECT COUNT(*) FROM outbox WHERE "
	    "published_at < '2021-01-01'");
	f->outbox_unpub = mt_count("SELECT COUNT(*) FROM outbox WHERE "
	    "published_at IS NULL");
	f->idem = mt_count("SELECT COUNT(*) FROM idempotency_keys");
	f->idem_old = mt_count("SELECT COUNT(*) FROM idempotency_keys WHERE "
	    "created_at < '2021-01-01'");
	f->auto_inc = mt_count("SELECT AUTO_INCREMENT FROM "
	    "information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND "
	    "TABLE_NAME = 'outbox'");
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM customers"), n);
	ck_assert_int_gt(mt_count("SELECT COUNT(*) FROM customers WHERE "
	    "id <> LOWER(id) COLLATE ascii_bin"), n / 10);
}

/* Copies of every id (and of what decides whether a writer may delete the
 * row) before the migration, in the target type. */
static void
mt_snapshot(void)
{
	h_sql("CREATE TABLE snap_customers (id VARCHAR(36) CHARACTER SET "
	    "ascii COLLATE ascii_bin NOT NULL PRIMARY KEY) SELECT id "
	    "FROM customers");
	h_sql("CREATE TABLE snap_outbox (seq BIGINT UNSIGNED NOT NULL "
	    "PRIMARY KEY, message_id VARCHAR(36) CHARACTER SET ascii COLLATE "
	    "ascii_bin NOT NULL, traceparent VARCHAR(55) CHARACTER SET ascii "
	    "COLLATE ascii_bin NULL, old INT NOT NULL) SELECT seq, "
	    "message_id, traceparent, IFNULL(published_at < '2021-01-01', 0) "
	    "AS old FROM outbox");
	h_sql("CREATE TABLE snap_processed (message_id VARCHAR(36) CHARACTER "
	    "SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY) SELECT "
	    "message_id FROM processed_messages");
	h_sql("CREATE TABLE snap_welcome (customer_id VARCHAR(36) CHARACTER "
	    "SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, message_id "
	    "VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL) "
	    "SELECT customer_id, message_id FROM welcome_emails");
	h_sql("CREATE TABLE snap_idem (idem_key VARBINARY(255) NOT NULL "
	    "PRIMARY KEY, customer_id VARCHAR(36) CHARACTER SET ascii COLLATE "
	    "ascii_bin NOT NULL, old INT NOT NULL) SELECT idem_key, "
	    "customer_id, created_at < '2021-01-01' AS old "
	    "FROM idempotency_keys");
}

/* The rows of the snapshot are all there, byte for byte, except the old
 * ones writers deleted (outbox_deleted, idem_deleted). */
static void
mt_check_snapshot(long long outbox_deleted, long long idem_deleted)
{
#define MT_OUTBOX_SAME "JOIN outbox o ON o.seq = s.seq AND CAST(o.message_id " \
	"AS BINARY) = CAST(s.message_id AS BINARY) AND CAST(o.traceparent "    \
	"AS BINARY) <=> CAST(s.traceparent AS BINARY) "
	/* Rows of the snapshot; those of them found, unchanged. */
	const struct {
		const char *rows, *found;
		long long gone;
	} checks[] = {
		{ "SELECT COUNT(*) FROM snap_customers",
		    "SELECT COUNT(*) FROM snap_customers s JOIN customers c ON "
		    "c.id = s.id AND CAST(c.id AS BINARY) = CAST(s.id AS "
		    "BINARY)", 0 },
		{ "SELECT COUNT(*) FROM snap_outbox WHERE old = 0",
		    "SELECT COUNT(*) FROM snap_outbox s " MT_OUTBOX_SAME
		    "WHERE s.old = 0", 0 },
		{ "SELECT COUNT(*) FROM snap_outbox WHERE old = 1",
		    "SELECT COUNT(*) FROM snap_outbox s " MT_OUTBOX_SAME
		    "WHERE s.old = 1", outbox_deleted },
		{ "SELECT COUNT(*) FROM snap_processed",
		    "SELECT COUNT(*) FROM snap_processed s JOIN "
		    "processed_messages p ON p.message_id = s.message_id AND "
		    "CAST(p.message_id AS BINARY) = CAST(s.message_id AS "
		    "BINARY)", 0 },
		{ "SELECT COUNT(*) FROM snap_welcome",
		    "SELECT COUNT(*) FROM snap_welcome s JOIN welcome_emails w "
		    "ON w.customer_id = s.customer_id AND CAST(w.customer_id AS "
		    "BINARY) = CAST(s.customer_id AS BINARY) AND "
		    "CAST(w.message_id AS BINARY) = CAST(s.message_id AS "
		    "BINARY)", 0 },
		{ "SELECT COUNT(*) FROM snap_idem",
		    "SELECT COUNT(*) FROM snap_idem s JOIN idempotency_keys k "
		    "ON k.idem_key = s.idem_key AND CAST(k.customer_id AS "
		    "BINARY) = CAST(s.customer_id AS BINARY)", idem_deleted },
	};
#undef MT_OUTBOX_SAME
	size_t i;

	for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
		ck_assert_msg(mt_count(checks[i].found) ==
		    mt_count(checks[i].rows) - checks[i].gone,
		    "rows lost or changed: %s", checks[i].found);
}

/* Indexes, and every column but the id columns: unchanged by 009. */
static char *
mt_shape(void)
{
	return mt_str("SELECT CONCAT_WS(' | ', "
	    "(SELECT GROUP_CONCAT(CONCAT_WS(':', TABLE_NAME, INDEX_NAME, "
	    "NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME) ORDER BY TABLE_NAME, "
	    "INDEX_NAME, SEQ_IN_INDEX SEPARATOR ' ') FROM "
	    "information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
	    "AND TABLE_NAME NOT LIKE 'snap%'), "
	    "(SELECT GROUP_CONCAT(CONCAT_WS(':', TABLE_NAME, COLUMN_NAME, "
	    "ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, "
	    "IFNULL(COLLATION_NAME, '-'), IFNULL(COLUMN_DEFAULT, '-'), "
	    "IFNULL(GENERATION_EXPRESSION, '-'), EXTRA) ORDER BY TABLE_NAME, "
	    "ORDINAL_POSITION SEPARATOR ' ') FROM information_schema.COLUMNS "
	    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT LIKE 'snap%' "
	    "AND CONCAT(TABLE_NAME, '.', COLUMN_NAME) NOT IN ('customers.id', "
	    "'outbox.message_id', 'outbox.traceparent', "
	    "'processed_messages.message_id', 'welcome_emails.customer_id', "
	    "'welcome_emails.message_id', 'idempotency_keys.customer_id')), "
	    "(SELECT GROUP_CONCAT(CONCAT_WS(':', User, Table_name, Table_priv) "
	    "ORDER BY User, Table_name SEPARATOR ' ') FROM mysql.tables_priv "
	    "WHERE Db = DATABASE()))");
}

static const struct {
	const char *table, *column;
	int len;
	const char *nullable;
} mt_id_columns[] = {
	{ "customers", "id", 36, "NO" },
	{ "outbox", "message_id", 36, "NO" },
	{ "outbox", "traceparent", 55, "YES" },
	{ "processed_messages", "message_id", 36, "NO" },
	{ "welcome_emails", "customer_id", 36, "NO" },
	{ "welcome_emails", "message_id", 36, "NO" },
	{ "idempotency_keys", "customer_id", 36, "NO" },
};
#define MT_NID (sizeof(mt_id_columns) / sizeof(mt_id_columns[0]))

/* The target types, and nothing of the migration left behind. */
static void
mt_check_target(void)
{
	struct db_val a[4];
	size_t i;

	for (i = 0; i < MT_NID; i++) {
		a[0] = DB_STR(mt_id_columns[i].table);
		a[1] = DB_STR(mt_id_columns[i].column);
		a[2] = DB_INT(mt_id_columns[i].len);
		a[3] = DB_STR(mt_id_columns[i].nullable);
		ck_assert_msg(h_count("SELECT COUNT(*) FROM "
		    "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
		    "AND TABLE_NAME = ? AND COLUMN_NAME = ? AND DATA_TYPE = "
		    "'varchar' AND CHARACTER_MAXIMUM_LENGTH = ? AND "
		    "CHARACTER_SET_NAME = 'ascii' AND COLLATION_NAME = "
		    "'ascii_bin' AND IS_NULLABLE = ?", a, 4) == 1,
		    "%s.%s is not VARCHAR(%d) ascii_bin", mt_id_columns[i].table,
		    mt_id_columns[i].column, mt_id_columns[i].len);
	}
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM information_schema."
	    "COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND DATA_TYPE = 'char'"),
	    0);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM information_schema."
	    "TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE "
	    "'\\_mig009%'"), 0);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM information_schema."
	    "TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"), 0);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM information_schema."
	    "ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()"), 0);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM schema_migrations "
	    "WHERE version = 9"), 1);
}

static double
mt_rows_total(void)
{
	return (double)mt_count("SELECT (SELECT COUNT(*) FROM customers) + "
	    "(SELECT COUNT(*) FROM outbox) + (SELECT COUNT(*) FROM "
	    "processed_messages) + (SELECT COUNT(*) FROM welcome_emails) + "
	    "(SELECT COUNT(*) FROM idempotency_keys)");
}

/* Issue 14, item 8: processed_messages.message_id compared ids without
 * case (CHAR(36) ascii_general_ci) where the worker compares bytes, so
 * the upper-case twin of a processed id was refused as a duplicate key
 * and the worker retried it forever.  After 009 the twin is another key,
 * and a lookup of either finds only itself. */
START_TEST(an_upper_case_twin_of_a_processed_id_is_another_key)
{
	static const char lower[] = "0b9e6a1c-5f3d-4e2a-9c7b-1d2e3f4a5b6c";
	static const char upper[] = "0B9E6A1C-5F3D-4E2A-9C7B-1D2E3F4A5B6C";
	struct h_daemon d = { 0 };
	struct db_val a[2];
	int rc;

	/* Processed before the migration. */
	a[0] = DB_STR(lower);
	ck_assert_int_eq(db_exec(h_db(), "INSERT INTO processed_messages "
	    "(message_id, event_name, processed_at) VALUES (?, "
	    "'CustomerCreated', UTC_TIMESTAMP(6))", a, 1, NULL), DB_OK);
	ck_assert_int_eq(MT_MIGRATE(&d, NULL, "009"), 0);

	a[0] = DB_STR(upper);
	rc = db_exec(h_db(), "INSERT INTO processed_messages (message_id, "
	    "event_name, processed_at) VALUES (?, 'CustomerCreated', "
	    "UTC_TIMESTAMP(6))", a, 1, NULL);
	ck_assert_msg(rc == DB_OK, "the upper-case twin was refused: %s",
	    db_error(h_db()));
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM processed_messages"),
	    2);
	/* The worker's lookup: each id finds itself only, byte for byte. */
	a[0] = DB_STR(lower);
	a[1] = DB_STR(upper);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM processed_messages "
	    "WHERE message_id = ?", a, 1), 1);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM processed_messages "
	    "WHERE message_id = ?", a + 1, 1), 1);
}
END_TEST

START_TEST(every_id_survives_byte_for_byte)
{
	struct mt_fill f;
	struct h_daemon d = { 0 };
	char *before, *after;
	double t0, secs, rows;

	mt_fill(MT_ROWS, &f);
	mt_snapshot();
	before = mt_shape();
	rows = mt_rows_total();

	t0 = clock_s();
	ck_assert_int_eq(MT_MIGRATE(&d, NULL, "009"), 0);
	secs = clock_s() - t0;
	printf("migrations: 009 on %.0f rows: %.2f s, %.1f s per million "
	    "rows\n", rows, secs, secs * 1e6 / rows);

	mt_check_target();
	mt_check_snapshot(0, 0);
	after = mt_shape();
	ck_assert_str_eq(after, before);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM customers"), f.rows);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM outbox"), f.rows);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM processed_messages"),
	    f.rows);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM welcome_emails"),
	    f.rows);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM idempotency_keys"),
	    f.idem);
	ck_assert_int_ge(mt_count("SELECT AUTO_INCREMENT FROM "
	    "information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND "
	    "TABLE_NAME = 'outbox'"), f.auto_inc);

	/* Ids now compare byte-wise, as the daemons compare them: the
	 * lower-case twin of an upper-case id is another id. */
	h_sql("INSERT INTO processed_messages (message_id, event_name, "
	    "processed_at) SELECT LOWER(message_id), 'Twin', "
	    "UTC_TIMESTAMP(6) FROM processed_messages WHERE message_id = "
	    "UPPER(message_id) AND message_id <> LOWER(message_id) LIMIT 1");
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM processed_messages "
	    "WHERE event_name = 'Twin'"), 1);
	/* The generated email key still makes emails unique. */
	ck_assert_int_ne(db_exec_sql(h_db(), "INSERT INTO customers (id, "
	    "email, name, created_at, updated_at) VALUES ('x', "
	    "'USER1@example.com', 'X', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"),
	    DB_OK);
	/* A new outbox row takes a seq never handed out before. */
	h_sql("INSERT INTO outbox (message_id, event_name, payload, "
	    "created_at) VALUES ('after-009', 'After', '{}', "
	    "UTC_TIMESTAMP(6))");
	ck_assert_int_ge(mt_count("SELECT seq FROM outbox WHERE message_id "
	    "= 'after-009'"), f.auto_inc);
	free(before);
	free(after);
}
END_TEST

/* ---- writers: the daemons' statements, concurrently ---- */

/* Ids, one or two per entry (a customer and its message). */
struct mt_ids {
	char (*id)[2][UID_LEN + 1];
	size_t n, cap;
};

static void
mt_ids_add(struct mt_ids *v, const char *a, const char *b)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 1024;
		v->id = realloc(v->id, v->cap * sizeof(*v->id));
		if (v->id == NULL)
			abort();
	}
	memcpy(v->id[v->n][0], a, UID_LEN + 1);
	memcpy(v->id[v->n][1], b != NULL ? b : a, UID_LEN + 1);
	v->n++;
}

enum mt_phase { MT_BEFORE, MT_DURING, MT_AFTER };

struct mt_writer {
	const char *name, *role;
	void (*step)(struct mt_writer *w);
	db_conn *c;
	pthread_t thread;
	const _Atomic int *phase; /* enum mt_phase, set by the test */
	_Atomic long commits_after;
	long commits, commits_during, deadlocks, swap_errors;
	long long inserted, updated, deleted, idem, pruned;
	double max_ms;
	long long last_seq;     /* app: the seq of its last outbox row */
	struct mt_ids ids;      /* ids this writer committed */
	const struct mt_ids *targets; /* rows it updates (worker) */
	size_t next_target;
	unsigned long iter;
	char err[512];
};

/* Runs one transaction of body with retries on deadlock (the daemons'
 * DB_ERETRY) and on a shadow gone at a swap; 0 when committed, -1 on any
 * other failure (w->err). */
static int
mt_txn(struct mt_writer *w, int (*body)(struct mt_writer *w, void *ud),
    void *ud)
{
	double t0 = clock_s(), ms;
	int rc;

	for (;;) {
		rc = db_begin(w->c);
		if (rc == DB_OK)
			rc = body(w, ud);
		if (rc == DB_OK)
			rc = db_commit(w->c);
		if (rc == DB_OK)
			break;
		if (db_errno(w->c) == MT_ER_LOCK_DEADLOCK) {
			db_rollback(w->c);
			w->deadlocks++;
			continue;
		}
		/* A statement caught at a swap, rarely: the trigger of the
		 * table just renamed names a shadow that is gone (README,
		 * "Database"); the daemons retry it as any failed write. */
		if (db_errno(w->c) == MT_ER_NO_SUCH_TABLE &&
		    strstr(db_error(w->c), "._mig009_") != NULL) {
			db_rollback(w->c);
			w->swap_errors++;
			continue;
		}
		if (w->err[0] == '\0')
			snprintf(w->err, sizeof(w->err), "%s: error %u: %s%s",
			    w->name, db_errno(w->c), db_error(w->c),
			    db_errno(w->c) ==
			    MT_ER_LOCK_WAIT_TIMEOUT ? " (waited longer than "
			    "the bound for a lock)" : "");
		db_rollback(w->c);
		return -1;
	}
	ms = (clock_s() - t0) * 1000;
	if (ms > w->max_ms)
		w->max_ms = ms;
	w->commits++;
	if (*w->phase == MT_DURING)
		w->commits_during++;
	else if (*w->phase == MT_AFTER)
		w->commits_after++;
	return 0;
}

/* app: a customer and its outbox row in one transaction, every 4th with
 * an idempotency key; now and then, pruning old keys.  Every 5th id in
 * upper case. */
struct mt_app_ud {
	char cid[UID_LEN + 1], mid[UID_LEN + 1], key[64];
	uint64_t pruned;
	long long seq; /* its outbox row's */
};


static int
mt_app_body(struct mt_writer *w, void *ud)
{
	struct mt_app_ud *u = ud;
	char payload[256], now[] = "2030-01-01 00:00:00";
	struct db_val a[6];
	int rc;

	snprintf(payload, sizeof(payload), "{\"id\": \"%s\"}", u->cid);
	a[0] = DB_STR(u->cid);
	a[1] = DB_STR(u->key);
	a[2] = DB_STR("Writer");
	a[3] = DB_STR(now);
	a[4] = DB_STR(now);
	if ((rc = db_exec(w->c, "INSERT INTO customers (id, email, name, "
	    "created_at, updated_at) VALUES (?, ?, ?, ?, ?)", a, 5, NULL)) !=
	    DB_OK)
		return rc;
	a[0] = DB_STR(u->mid);
	a[1] = DB_STR("CustomerCreated");
	a[2] = DB_STR(payload);
	a[3] = DB_STR("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	a[4] = DB_STR(now);
	if ((rc = db_exec(w->c, "INSERT INTO outbox (message_id, event_name, "
	    "payload, traceparent, created_at) VALUES (?, ?, ?, ?, ?)", a, 5,
	    NULL)) != DB_OK)
		return rc;
	u->seq = 0;
	if ((rc = db_query(w->c, "SELECT LAST_INSERT_ID()", NULL, 0, mt_ll_cb,
	    &u->seq, NULL)) != DB_OK)
		return rc;
	if (w->iter % 4 == 0) {
		a[0] = DB_STR(u->key);
		a[1] = DB_STR(u->key);
		a[2] = DB_STR("Writer");
		a[3] = DB_STR(u->cid);
		a[4] = DB_STR("{}");
		a[5] = DB_STR(now);
		if ((rc = db_exec(w->c, "INSERT INTO idempotency_keys "
		    "(idem_key, request_email, request_name, status, "
		    "customer_id, response_body, created_at) VALUES (?, ?, ?, "
		    "201, ?, ?, ?)", a, 6, NULL)) != DB_OK)
			return rc;
	}
	u->pruned = 0;
	if (w->iter % 25 == 0) {
		a[0] = DB_STR("2021-01-01 00:00:00");
		if ((rc = db_exec(w->c, "DELETE FROM idempotency_keys WHERE "
		    "created_at < ? LIMIT 50", a, 1, &u->pruned)) != DB_OK)
			return rc;
	}
	return DB_OK;
}

static void
mt_upper(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'a' && *s <= 'f')
			*s = (char)(*s - 'a' + 'A');
}

static void
mt_app_step(struct mt_writer *w)
{
	struct mt_app_ud u;

	uid_new(u.cid);
	uid_new(u.mid);
	if (w->iter % 5 == 0) {
		mt_upper(u.cid);
		mt_upper(u.mid);
	}
	snprintf(u.key, sizeof(u.key), "%s@writer.example", u.cid);
	if (mt_txn(w, mt_app_body, &u) == 0) {
		if (u.seq <= w->last_seq && w->err[0] == '\0')
			snprintf(w->err, sizeof(w->err), "%s: outbox.seq went "
			    "back: %lld after %lld", w->name, u.seq,
			    w->last_seq);
		w->last_seq = u.seq;
		mt_ids_add(&w->ids, u.cid, u.mid);
		w->inserted++;
		w->idem += w->iter % 4 == 0;
		w->pruned += (long long)u.pruned;
	}
}

/* sql = head, n copies of item separated by ", ", tail: a statement of
 * n rows or n placeholders. */
static void
mt_sql_list(char *sql, size_t size, const char *head, const char *item,
    size_t n, const char *tail)
{
	size_t i, len = (size_t)snprintf(sql, size, "%s", head);

	for (i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(sql + len, size - len, "%s%s",
		    i > 0 ? ", " : "", item);
	if (len < size)
		snprintf(sql + len, size - len, "%s", tail);
}

/* relay: lock due rows (its poll statement), mark them published; now
 * and then, its retention delete. */
#define MT_RELAY_BATCH 50

struct mt_relay_ud {
	long long seq[MT_RELAY_BATCH];
	size_t n;
	uint64_t marked, deleted;
};

static int
mt_relay_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct mt_relay_ud *u = ud;

	if (ncols < 6 || cols[1].is_null || cols[1].len == 0 ||
	    u->n == MT_RELAY_BATCH)
		return -1;
	u->seq[u->n++] = strtoll(cols[0].s, NULL, 10);
	return 0;
}

static int
mt_relay_body(struct mt_writer *w, void *ud)
{
	struct mt_relay_ud *u = ud;
	struct db_val a[MT_RELAY_BATCH];
	char sql[1024];
	size_t i;
	int rc;

	u->n = 0;
	u->marked = 0;
	a[0] = DB_INT(MT_RELAY_BATCH);
	if ((rc = db_query(w->c, "SELECT seq, message_id, event_name, "
	    "payload, attempts, traceparent, created_at FROM outbox WHERE "
	    "published_at IS NULL AND (next_attempt_at IS NULL OR "
	    "next_attempt_at <= UTC_TIMESTAMP(6)) ORDER BY seq LIMIT ? FOR "
	    "UPDATE SKIP LOCKED", a, 1, mt_relay_row, u, NULL)) != DB_OK)
		return rc;
	if (u->n > 0) {
		mt_sql_list(sql, sizeof(sql), "UPDATE outbox SET published_at "
		    "= UTC_TIMESTAMP(6) WHERE seq IN (", "?", MT_RELAY_BATCH,
		    ")");
		for (i = 0; i < MT_RELAY_BATCH; i++)
			a[i] = DB_INT(u->seq[i < u->n ? i : 0]);
		if ((rc = db_exec(w->c, sql, a, MT_RELAY_BATCH, &u->marked)) !=
		    DB_OK)
			return rc;
	}
	return DB_OK;
}

/* Its retention: a statement of its own. */
static int
mt_retention_body(struct mt_writer *w, void *ud)
{
	struct mt_relay_ud *u = ud;
	struct db_val a = DB_INT(24);

	return db_exec(w->c, "DELETE FROM outbox WHERE published_at < "
	    "UTC_TIMESTAMP(6) - INTERVAL ? HOUR LIMIT 500", &a, 1,
	    &u->deleted);
}

static void
mt_relay_step(struct mt_writer *w)
{
	struct mt_relay_ud u = { .deleted = 0 };

	if (mt_txn(w, mt_relay_body, &u) == 0)
		w->updated += (long long)u.marked;
	if (w->iter % 4 == 0 && mt_txn(w, mt_retention_body, &u) == 0)
		w->deleted += (long long)u.deleted;
}

/* worker: ten processed ids and their effects in one transaction (its
 * statements), and an update of an effect written before. */
#define MT_WORKER_BATCH 10

struct mt_worker_ud {
	char mid[MT_WORKER_BATCH][UID_LEN + 1];
	char cid[MT_WORKER_BATCH][UID_LEN + 1];
	const char *target;
	uint64_t updated;
};

static int
mt_worker_seen(void *ud, const struct db_col *cols, size_t ncols)
{
	(void)ud;
	(void)cols;
	(void)ncols;
	return -1; /* a fresh id seen as processed: a bug */
}

static int
mt_worker_body(struct mt_writer *w, void *ud)
{
	struct mt_worker_ud *u = ud;
	struct db_val a[4 * MT_WORKER_BATCH];
	char sql[2048];
	size_t i;
	int rc;

	mt_sql_list(sql, sizeof(sql), "SELECT message_id FROM "
	    "processed_messages WHERE message_id IN (", "?", MT_WORKER_BATCH,
	    ")");
	for (i = 0; i < MT_WORKER_BATCH; i++)
		a[i] = DB_STR(u->mid[i]);
	if ((rc = db_query(w->c, sql, a, MT_WORKER_BATCH, mt_worker_seen,
	    NULL, NULL)) != DB_OK)
		return rc;
	mt_sql_list(sql, sizeof(sql), "INSERT INTO processed_messages "
	    "(message_id, event_name, processed_at) VALUES ",
	    "(?, ?, UTC_TIMESTAMP(6))", MT_WORKER_BATCH, "");
	for (i = 0; i < MT_WORKER_BATCH; i++) {
		a[2 * i] = DB_STR(u->mid[i]);
		a[2 * i + 1] = DB_STR("CustomerCreated");
	}
	if ((rc = db_exec(w->c, sql, a, 2 * MT_WORKER_BATCH, NULL)) != DB_OK)
		return rc;
	mt_sql_list(sql, sizeof(sql), "INSERT INTO welcome_emails "
	    "(customer_id, message_id, email, name, created_at) VALUES ",
	    "(?, ?, ?, ?, UTC_TIMESTAMP(6))", MT_WORKER_BATCH,
	    " ON DUPLICATE KEY UPDATE customer_id = customer_id");
	for (i = 0; i < MT_WORKER_BATCH; i++) {
		a[4 * i] = DB_STR(u->cid[i]);
		a[4 * i + 1] = DB_STR(u->mid[i]);
		a[4 * i + 2] = DB_STR("w@writer.example");
		a[4 * i + 3] = DB_STR("Writer");
	}
	if ((rc = db_exec(w->c, sql, a, 4 * MT_WORKER_BATCH, NULL)) != DB_OK)
		return rc;
	u->updated = 0;
	if (u->target != NULL) {
		a[0] = DB_STR(u->target);
		if ((rc = db_exec(w->c, "UPDATE welcome_emails SET sent_at = "
		    "UTC_TIMESTAMP(6) WHERE customer_id = ? AND sent_at IS NULL",
		    a, 1, &u->updated)) != DB_OK)
			return rc;
	}
	return DB_OK;
}

static void
mt_worker_step(struct mt_writer *w)
{
	struct mt_worker_ud u = { 0 };
	size_t i;

	for (i = 0; i < MT_WORKER_BATCH; i++) {
		uid_new(u.mid[i]);
		uid_new(u.cid[i]);
		if ((w->iter + i) % 7 == 0) {
			mt_upper(u.mid[i]);
			mt_upper(u.cid[i]);
		}
	}
	u.target = w->next_target < w->targets->n ?
	    w->targets->id[w->next_target][0] : NULL;
	if (mt_txn(w, mt_worker_body, &u) == 0) {
		for (i = 0; i < MT_WORKER_BATCH; i++)
			mt_ids_add(&w->ids, u.cid[i], u.mid[i]);
		w->inserted += MT_WORKER_BATCH;
		w->updated += (long long)u.updated;
		w->next_target++;
	}
}

static _Atomic int mt_stop;

static void *
mt_writer_run(void *arg)
{
	struct mt_writer *w = arg;
	struct db_params p;
	char sql[160];

	h_role_db_params(w->role, &p);
	snprintf(p.name, sizeof(p.name), "%s", MT_DB);
	if ((w->c = db_new(&p)) == NULL || db_connect(w->c) != DB_OK) {
		snprintf(w->err, sizeof(w->err), "%s: connect: %s", w->name,
		    w->c ? db_error(w->c) : "out of memory");
		return NULL;
	}
	/* The bound: a longer wait for a row or metadata lock fails the
	 * statement (ER_LOCK_WAIT_TIMEOUT), and the test. */
	snprintf(sql, sizeof(sql), "SET SESSION innodb_lock_wait_timeout = "
	    "%d, lock_wait_timeout = %d", MT_LOCK_BOUND_S, MT_LOCK_BOUND_S);
	if (db_exec_sql(w->c, sql) != DB_OK) {
		snprintf(w->err, sizeof(w->err), "%s: %s", w->name,
		    db_error(w->c));
		return NULL;
	}
	while (!mt_stop && w->err[0] == '\0') {
		w->step(w);
		w->iter++;
		backoff_sleep(2, NULL);
	}
	return NULL;
}

static int
mt_writers_after(void *ud)
{
	struct mt_writer *ws = ud;
	size_t i;

	for (i = 0; i < 3; i++)
		if (ws[i].commits_after < 50 && ws[i].err[0] == '\0')
			return 0;
	return 1;
}

/* Loads pairs of ids (cid, mid) into a temporary table of the test's
 * connection. */
static void
mt_load_ids(const char *table, const struct mt_ids *v)
{
	struct db_val a[200];
	char sql[256], stmt[1600];
	size_t i, j, len, n;

	snprintf(sql, sizeof(sql), "CREATE TEMPORARY TABLE %s (cid "
	    "VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL "
	    "PRIMARY KEY, mid VARCHAR(36) CHARACTER SET ascii COLLATE "
	    "ascii_bin NOT NULL)", table);
	h_sql(sql);
	for (i = 0; i < v->n; i += n) {
		n = v->n - i < 100 ? v->n - i : 100;
		len = (size_t)snprintf(stmt, sizeof(stmt), "INSERT INTO %s "
		    "VALUES (?, ?)", table);
		for (j = 1; j < n; j++)
			len += (size_t)snprintf(stmt + len, sizeof(stmt) - len,
			    ", (?, ?)");
		for (j = 0; j < n; j++) {
			a[2 * j] = DB_STR(v->id[i + j][0]);
			a[2 * j + 1] = DB_STR(v->id[i + j][1]);
		}
		ck_assert_msg(db_exec(h_db(), stmt, a, 2 * n, NULL) == DB_OK,
		    "%s", db_error(h_db()));
	}
}

START_TEST(writers_lose_nothing_and_wait_little)
{
	static _Atomic int phase = MT_BEFORE;
	struct mt_writer ws[3] = {
		{ .name = "app", .role = "APP", .step = mt_app_step },
		{ .name = "relay", .role = "RELAY", .step = mt_relay_step },
		{ .name = "worker", .role = "WORKER", .step = mt_worker_step },
	};
	struct mt_ids targets = { 0 };
	struct mt_fill f;
	struct h_daemon d = { 0 };
	long long n_cust, n_outbox, n_proc, n_wel, unpub, sent;
	double t0, secs, rows;
	char *row;
	size_t i;
	int st;

	mt_fill(MT_ROWS, &f);
	mt_snapshot();
	rows = mt_rows_total();
	/* The worker's updates: effects written before, in key order
	 * (hence copied early and late). */
	row = mt_str("SELECT GROUP_CONCAT(customer_id ORDER BY customer_id "
	    "SEPARATOR '') FROM (SELECT customer_id FROM welcome_emails "
	    "ORDER BY customer_id LIMIT 100000) x WHERE RAND() < 0.1");
	for (i = 0; (i + 1) * UID_LEN <= strlen(row); i++) {
		char id[UID_LEN + 1];

		memcpy(id, row + i * UID_LEN, UID_LEN);
		id[UID_LEN] = '\0';
		mt_ids_add(&targets, id, NULL);
	}
	free(row);

	mt_stop = 0;
	for (i = 0; i < 3; i++) {
		ws[i].phase = &phase;
		ws[i].targets = &targets;
		ck_assert_int_eq(pthread_create(&ws[i].thread, NULL,
		    mt_writer_run, &ws[i]), 0);
	}
	/* Some load first, then the migration under it. */
	while (ws[0].commits < 50 && ws[0].err[0] == '\0')
		backoff_sleep(10, NULL);
	phase = MT_DURING;
	t0 = clock_s();
	st = MT_MIGRATE(&d, NULL, "009-load");
	secs = clock_s() - t0;
	phase = MT_AFTER;
	/* The writers go on, on the new tables. */
	h_wait(120000, mt_writers_after, ws);
	mt_stop = 1;
	for (i = 0; i < 3; i++) {
		pthread_join(ws[i].thread, NULL);
		db_free(ws[i].c);
	}

	printf("migrations: 009 under load on %.0f rows: %.2f s (%.1f s per "
	    "million rows)\n", rows, secs, secs * 1e6 / rows);
	for (i = 0; i < 3; i++)
		printf("migrations:   %-6s %5ld transactions (%ld during the "
		    "migration), %ld deadlocks and %ld swap errors retried, "
		    "longest %.0f ms\n",
		    ws[i].name, ws[i].commits, ws[i].commits_during,
		    ws[i].deadlocks, ws[i].swap_errors, ws[i].max_ms);
	ck_assert_int_eq(st, 0);
	for (i = 0; i < 3; i++) {
		ck_assert_msg(ws[i].err[0] == '\0', "%s", ws[i].err);
		ck_assert_msg(ws[i].commits_during > 0, "%s wrote nothing "
		    "during the migration", ws[i].name);
		ck_assert_int_ge(ws[i].commits_after, 50);
	}
	mt_check_target();

	/* Nothing lost, nothing doubled: the counts... */
	n_cust = mt_count("SELECT COUNT(*) FROM customers");
	n_outbox = mt_count("SELECT COUNT(*) FROM outbox");
	n_proc = mt_count("SELECT COUNT(*) FROM processed_messages");
	n_wel = mt_count("SELECT COUNT(*) FROM welcome_emails");
	unpub = mt_count("SELECT COUNT(*) FROM outbox WHERE published_at IS "
	    "NULL");
	sent = mt_count("SELECT COUNT(*) FROM welcome_emails WHERE sent_at IS "
	    "NOT NULL");
	ck_assert_int_eq(n_cust, f.rows + ws[0].inserted);
	ck_assert_int_eq(n_outbox, f.rows + ws[0].inserted - ws[1].deleted);
	ck_assert_int_eq(unpub, f.outbox_unpub + ws[0].inserted -
	    ws[1].updated);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM outbox WHERE "
	    "published_at < '2021-01-01'"), f.outbox_old - ws[1].deleted);
	ck_assert_int_eq(n_proc, f.rows + ws[2].inserted);
	ck_assert_int_eq(n_wel, f.rows + ws[2].inserted);
	ck_assert_int_eq(sent, ws[2].updated);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM idempotency_keys"),
	    f.idem + ws[0].idem - ws[0].pruned);
	ck_assert_int_gt(ws[1].deleted, 0);
	ck_assert_int_gt(ws[1].updated, 0);
	ck_assert_int_gt(ws[2].updated, 0);
	/* outbox.seq went on increasing (the app's rows, committed one
	 * after another, checked as they came) and past what was handed
	 * out before. */
	ck_assert_int_ge(ws[0].last_seq, f.auto_inc);
	/* ...every row written before, and every id the writers committed,
	 * byte for byte, with its outbox row and its effect. */
	mt_check_snapshot(ws[1].deleted, ws[0].pruned);
	mt_load_ids("mt_app_ids", &ws[0].ids);
	mt_load_ids("mt_worker_ids", &ws[2].ids);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM mt_app_ids a JOIN "
	    "customers c ON c.id = a.cid AND CAST(c.id AS BINARY) = "
	    "CAST(a.cid AS BINARY) JOIN outbox o ON o.message_id = a.mid AND "
	    "CAST(o.message_id AS BINARY) = CAST(a.mid AS BINARY) AND "
	    "o.payload = CONCAT('{\"id\": \"', a.cid, '\"}')"),
	    (long long)ws[0].ids.n);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM mt_worker_ids m JOIN "
	    "processed_messages p ON p.message_id = m.mid AND "
	    "CAST(p.message_id AS BINARY) = CAST(m.mid AS BINARY) JOIN "
	    "welcome_emails w ON w.customer_id = m.cid AND "
	    "CAST(w.customer_id AS BINARY) = CAST(m.cid AS BINARY) AND "
	    "CAST(w.message_id AS BINARY) = CAST(m.mid AS BINARY)"),
	    (long long)ws[2].ids.n);
	for (i = 0; i < 3; i++)
		free(ws[i].ids.id);
	free(targets.id);
}
END_TEST

START_TEST(a_second_run_applies_nothing_and_changes_nothing)
{
	static const char fingerprint[] = "SELECT CONCAT_WS(' | ', "
	    "(SELECT GROUP_CONCAT(CONCAT_WS(':', TABLE_NAME, TABLE_TYPE, "
	    "AUTO_INCREMENT, CREATE_TIME) ORDER BY TABLE_NAME SEPARATOR ' ') "
	    "FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()), "
	    "(SELECT GROUP_CONCAT(CONCAT_WS(':', TABLE_NAME, COLUMN_NAME, "
	    "COLUMN_TYPE, IS_NULLABLE, IFNULL(COLLATION_NAME, '-')) ORDER BY "
	    "TABLE_NAME, ORDINAL_POSITION SEPARATOR ' ') FROM "
	    "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()), "
	    "(SELECT GROUP_CONCAT(CONCAT_WS(':', version, name, applied_at) "
	    "ORDER BY version SEPARATOR ' ') FROM schema_migrations), "
	    "(SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE "
	    "TRIGGER_SCHEMA = DATABASE()), (SELECT COUNT(*) FROM "
	    "information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()), "
	    "(SELECT SUM(CRC32(CONCAT_WS(',', id, email, name))) FROM "
	    "customers), (SELECT SUM(CRC32(CONCAT_WS(',', seq, message_id, "
	    "traceparent, published_at))) FROM outbox), (SELECT "
	    "SUM(CRC32(message_id)) FROM processed_messages), (SELECT "
	    "SUM(CRC32(CONCAT_WS(',', customer_id, message_id))) FROM "
	    "welcome_emails), (SELECT SUM(CRC32(CONCAT_WS(',', idem_key, "
	    "customer_id))) FROM idempotency_keys))";
	struct mt_fill f;
	struct h_daemon d = { 0 };
	char *before, *after;

	mt_fill(MT_ROWS / 4, &f);
	ck_assert_int_eq(MT_MIGRATE(&d, NULL, "009-first"), 0);
	before = mt_str(fingerprint);
	ck_assert_int_eq(MT_MIGRATE(&d, NULL, "009-again"), 0);
	ck_assert(h_log_contains(&d, "0 applied"));
	ck_assert(!h_log_contains(&d, "applying"));
	after = mt_str(fingerprint);
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
}
END_TEST

/* The session of outbox-migrate (0: none). */
static long long
mt_migrate_session(void)
{
	return mt_migrate_session_on(NULL);
}

/* outbox-migrate runs, and has put its triggers on outbox. */
static int
mt_outbox_has_triggers(void *ud)
{
	(void)ud;
	return mt_migrate_session() != 0 && mt_count("SELECT COUNT(*) FROM "
	    "information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND "
	    "EVENT_OBJECT_TABLE = 'outbox'") == 3;
}

static int
mt_shadow_has_rows(void *ud)
{
	(void)ud;
	return mt_count("SELECT COUNT(*) FROM _mig009_outbox_new") > 0;
}

/* ---- the moments between its triggers ---- */

/* A session of this test that holds outbox's metadata lock (a
 * transaction that read it): a DDL statement on outbox waits for it. */
struct mt_holder {
	db_conn *c;
	pthread_t th;
	int rc;
};

static void *
mt_holder_main(void *arg)
{
	struct mt_holder *h = arg;

	h->rc = db_begin(h->c);
	if (h->rc == DB_OK)
		h->rc = db_query(h->c, "SELECT seq FROM outbox LIMIT 1", NULL,
		    0, NULL, NULL, NULL);
	return NULL;
}

/* Connects a holder and starts its transaction in a thread: the read
 * waits while a DDL statement on outbox is queued. */
static void
mt_holder_start(struct mt_holder *h)
{
	struct db_params p;

	h_db_params(&p);
	h->c = db_new(&p);
	ck_assert_ptr_nonnull(h->c);
	ck_assert_msg(db_connect(h->c) == DB_OK, "%s", db_error(h->c));
	ck_assert_int_eq(pthread_create(&h->th, NULL, mt_holder_main, h), 0);
}

/* Session id waits for a table's metadata lock. */
static int
mt_session_waits(void *ud)
{
	const unsigned long *id = ud;
	struct db_val a = DB_INT((long long)*id);

	return h_count("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
	    "WHERE ID = ? AND STATE = 'Waiting for table metadata lock'", &a,
	    1) == 1;
}

static int
mt_migration_waits(void *ud)
{
	unsigned long id = (unsigned long)mt_migrate_session();

	(void)ud;
	return id != 0 && mt_session_waits(&id);
}

static long long
mt_outbox_triggers(void)
{
	return mt_count("SELECT COUNT(*) FROM information_schema.TRIGGERS "
	    "WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = "
	    "'outbox'");
}

/* Lets outbox-migrate's DDL statements on outbox through one at a time
 * until n of its triggers exist, then holds the next: *h holds outbox's
 * metadata lock on entry and on return.  Each step queues a second
 * holder behind the waiting DDL statement before the first lets go, so
 * the statement runs and the next one finds outbox held again; except
 * when the second holder, finding the table changed by the statement,
 * gives its lock back to open it again: then the next statement may run
 * too.  The number of triggers there then (n, or more after such a
 * step). */
static long long
mt_step_to_triggers(struct mt_holder *h, long long n)
{
	struct mt_holder next;
	unsigned long id;
	int steps = 0;

	while (mt_outbox_triggers() < n) {
		ck_assert_msg(steps < 20, "%lld of %lld triggers after %d "
		    "steps", mt_outbox_triggers(), n, steps);
		steps++;
		ck_assert_msg(h_wait(120000, mt_migration_waits, NULL),
		    "outbox-migrate does not wait for outbox's lock");
		mt_holder_start(&next);
		id = db_session_id(next.c);
		ck_assert_msg(h_wait(30000, mt_session_waits, &id), "the "
		    "second holder is not queued behind the DDL statement");
		db_rollback(h->c);
		db_free(h->c);
		pthread_join(next.th, NULL);
		ck_assert_msg(next.rc == DB_OK, "%s", db_error(next.c));
		*h = next;
	}
	return mt_outbox_triggers();
}

/* Writes of the daemons while only some of the triggers exist: a row
 * inserted then marked published, one inserted then deleted, a row of
 * before marked published, one of before deleted (retention).  tag
 * names the moment; the rows of before are given by seq. */
static void
mt_window_writes(const char *tag, long long seq_upd, long long seq_del)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "INSERT INTO outbox (message_id, "
	    "event_name, payload, created_at) VALUES ('%s-upd', "
	    "'CustomerCreated', '{}', UTC_TIMESTAMP(6)), ('%s-del', "
	    "'CustomerCreated', '{}', UTC_TIMESTAMP(6))", tag, tag);
	h_sql(sql);
	snprintf(sql, sizeof(sql), "UPDATE outbox SET published_at = "
	    "UTC_TIMESTAMP(6) WHERE message_id = '%s-upd' OR seq = %lld",
	    tag, seq_upd);
	h_sql(sql);
	snprintf(sql, sizeof(sql), "DELETE FROM outbox WHERE message_id = "
	    "'%s-del' OR seq = %lld", tag, seq_del);
	h_sql(sql);
}

/* Inserts, updates and deletes made between the creation of one of
 * outbox's triggers and the next are all in the converted table: none
 * undone by the copy, no deleted row back. */
/* One try of the test below: 1 when both moments were caught (the
 * migration then ended), 0 when a step let two statements through (the
 * migration ended too, the schema to be made again). */
static int
mt_between_try(long long upd[2], long long del[2])
{
	struct h_daemon d = { 0 };
	struct mt_holder h;
	int caught;

	mt_holder_start(&h);
	pthread_join(h.th, NULL);
	ck_assert_msg(h.rc == DB_OK, "%s", db_error(h.c));
	mt_migrate_start(&d, NULL, "writes_between_the_triggers_are_kept",
	    "009-steps");
	caught = mt_step_to_triggers(&h, 1) == 1;
	if (caught) {
		mt_window_writes("one-trigger", upd[0], del[0]);
		caught = mt_step_to_triggers(&h, 2) == 2;
	}
	if (caught)
		mt_window_writes("two-triggers", upd[1], del[1]);
	db_rollback(h.c);
	db_free(h.c);
	ck_assert_int_eq(h_daemon_wait(&d, 600000), 0);
	return caught;
}

START_TEST(writes_between_the_triggers_are_kept)
{
	struct mt_fill f;
	long long total, upd[2], del[2];
	char sql[256];
	int i, tries;

	for (tries = 1;; tries++) {
		ck_assert_msg(tries <= 5, "no try caught both moments");
		if (tries > 1) {
			printf("migrations: a step let two of 009's "
			    "statements through: again, on a new schema\n");
			mt_schema_down();
			mt_schema_up();
		}
		mt_fill(MT_ROWS, &f);
		total = mt_count("SELECT COUNT(*) FROM outbox");
		/* Rows of before: two unpublished, two published long
		 * ago. */
		for (i = 0; i < 2; i++) {
			snprintf(sql, sizeof(sql), "SELECT seq FROM outbox "
			    "WHERE published_at IS NULL ORDER BY seq LIMIT 1 "
			    "OFFSET %d", i * 1000);
			upd[i] = mt_count(sql);
			snprintf(sql, sizeof(sql), "SELECT seq FROM outbox "
			    "WHERE published_at < '2021-01-01' ORDER BY seq "
			    "LIMIT 1 OFFSET %d", i * 1000);
			del[i] = mt_count(sql);
		}
		if (mt_between_try(upd, del))
			break;
	}

	/* Converted (the id columns' new type), with every write. */
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM information_schema."
	    "COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
	    "'outbox' AND COLUMN_NAME = 'message_id' AND COLLATION_NAME = "
	    "'ascii_bin'"), 1);
	ck_assert_int_eq(mt_outbox_triggers(), 0);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM outbox WHERE "
	    "message_id LIKE '%-upd' AND published_at IS NOT NULL"), 2);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM outbox WHERE "
	    "message_id LIKE '%-del'"), 0);
	for (i = 0; i < 2; i++) {
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM outbox WHERE "
		    "seq = %lld AND published_at IS NOT NULL", upd[i]);
		ck_assert_msg(mt_count(sql) == 1, "row %lld of before, "
		    "marked published, is not", upd[i]);
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM outbox WHERE "
		    "seq = %lld", del[i]);
		ck_assert_msg(mt_count(sql) == 0, "row %lld of before, "
		    "deleted, is back", del[i]);
	}
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM outbox"), total);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM outbox WHERE "
	    "published_at IS NULL"), f.outbox_unpub - 2);
}
END_TEST

START_TEST(a_migration_killed_half_way_resumes)
{
	struct mt_fill f;
	struct h_daemon d = { 0 };
	long long total, copied;
	struct db_params p;
	db_conn *locker;
	size_t locked = 0;
	double t0;

	/* outbox big enough to be caught while it is copied. */
	mt_fill(MT_ROWS, &f);
	h_sql("INSERT INTO outbox (message_id, event_name, payload, "
	    "created_at, published_at) SELECT CONCAT('more-', seq), "
	    "'CustomerCreated', '{}', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) "
	    "FROM seq_1_to_200000");
	total = mt_count("SELECT COUNT(*) FROM outbox");
	mt_snapshot();
	mt_migrate_start(&d, NULL, __func__, "killed");
	ck_assert_msg(h_wait(300000, mt_outbox_has_triggers, NULL),
	    "the migration never reached outbox");
	/* The last row locked (by a session of its own): the copy cannot
	 * finish, nor the swap happen, before the kill. */
	h_db_params(&p);
	locker = db_new(&p);
	ck_assert_ptr_nonnull(locker);
	ck_assert_int_eq(db_begin(locker), DB_OK);
	ck_assert_int_eq(db_query(locker, "SELECT seq FROM outbox ORDER BY "
	    "seq DESC LIMIT 1 FOR UPDATE", NULL, 0, NULL, NULL, &locked),
	    DB_OK);
	ck_assert_int_eq(locked, 1);
	ck_assert(h_wait(300000, mt_shadow_has_rows, NULL));
	/* The operator's kill -9: the server ends the session when it next
	 * writes to it (a progress row, at least once a second). */
	h_daemon_kill9(&d);
	t0 = clock_s();
	ck_assert_msg(h_wait(60000, mt_no_migration, NULL),
	    "the killed migration's session went on");
	printf("migrations: the killed migration's session ended %.1f s "
	    "after its client\n", clock_s() - t0);
	db_rollback(locker);
	db_free(locker);

	/* Left half-way: outbox's shadow, part copied, and its triggers;
	 * customers done; 009 not recorded. */
	copied = mt_count("SELECT COUNT(*) FROM _mig009_outbox_new");
	printf("migrations: killed with %lld of %lld outbox rows copied\n",
	    copied, total);
	ck_assert_int_gt(copied, 0);
	ck_assert_int_lt(copied, total);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM information_schema."
	    "TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND "
	    "EVENT_OBJECT_TABLE = 'outbox'"), 3);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM information_schema."
	    "COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
	    "'customers' AND COLUMN_NAME = 'id' AND COLLATION_NAME = "
	    "'ascii_bin'"), 1);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM schema_migrations "
	    "WHERE version = 9"), 0);
	/* Written meanwhile: the triggers keep the shadow current. */
	h_sql("UPDATE outbox SET published_at = NULL WHERE message_id IN "
	    "('more-1', 'more-199999')");
	h_sql("DELETE FROM outbox WHERE message_id IN ('more-2', "
	    "'more-199998')");
	h_sql("INSERT INTO outbox (message_id, event_name, payload, "
	    "created_at) VALUES ('more-new', 'CustomerCreated', '{}', "
	    "UTC_TIMESTAMP(6))");

	ck_assert_int_eq(MT_MIGRATE(&d, NULL, "009-resumed"), 0);
	mt_check_target();
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM outbox"), total - 1);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM outbox WHERE "
	    "message_id IN ('more-1', 'more-199999', 'more-new') AND "
	    "published_at IS NULL"), 3);
	h_sql("DELETE FROM snap_outbox WHERE message_id IN ('more-2', "
	    "'more-199998')");
	mt_check_snapshot(0, 0);
}
END_TEST

START_TEST(a_table_with_triggers_of_its_own_is_refused)
{
	struct mt_fill f;
	struct h_daemon d = { 0 };
	char *before, *after;

	mt_fill(MT_ROWS / 4, &f);
	mt_snapshot();
	before = mt_shape();
	h_sql("CREATE TRIGGER test_welcome_own BEFORE INSERT ON "
	    "welcome_emails FOR EACH ROW SET NEW.name = NEW.name");
	ck_assert_int_ne(MT_MIGRATE(&d, NULL, "009-refused"), 0);
	ck_assert(h_log_contains(&d, "welcome_emails has triggers of its "
	    "own"));
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM schema_migrations "
	    "WHERE version = 9"), 0);
	h_sql("DROP TRIGGER test_welcome_own");
	/* Run again: the tables done are only cleaned up, the rest done. */
	ck_assert_int_eq(MT_MIGRATE(&d, NULL, "009-after-refusal"),
	    0);
	mt_check_target();
	mt_check_snapshot(0, 0);
	after = mt_shape();
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
}
END_TEST

/* Migration 011 (the inbox retention's index, the worker's DELETE) run
 * again changes nothing, and run where the index is missing puts it back
 * (online: ALGORITHM = INPLACE, LOCK = NONE, which the server refuses
 * rather than block writes). */
START_TEST(migration_011_runs_again)
{
	static const char idx[] = "SELECT COUNT(*) FROM information_schema."
	    "STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
	    "'processed_messages' AND INDEX_NAME = 'ix_processed_at' AND "
	    "COLUMN_NAME = 'processed_at'";
	struct h_daemon d = { 0 };

	ck_assert_int_eq(mt_count(idx), 1);
	ck_assert_int_eq(MT_MIGRATE(&d, NULL, "all"), 0);
	h_sql("DELETE FROM schema_migrations WHERE version = 11");
	ck_assert_int_eq(MT_MIGRATE(&d, NULL, "011-again"), 0);
	ck_assert(h_log_contains(&d, "applied 011_processed_retention.sql"));
	ck_assert_int_eq(mt_count(idx), 1);
	h_sql("ALTER TABLE processed_messages DROP INDEX ix_processed_at");
	h_sql("DELETE FROM schema_migrations WHERE version = 11");
	ck_assert_int_eq(MT_MIGRATE(&d, NULL, "011-back"), 0);
	ck_assert_int_eq(mt_count(idx), 1);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM schema_migrations "
	    "WHERE version = 11"), 1);
}
END_TEST

/* Migration 014 (ix_outbox_due sorted published_at descending) on an
 * outbox with rows, its index as 010 built it: the index is descending
 * afterwards, same columns in the same order, every row unchanged; run
 * again, it is left as it is. */
START_TEST(migration_014_turns_the_due_index_around)
{
	static const char desc[] = "SELECT COUNT(*) FROM information_schema."
	    "STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
	    "'outbox' AND INDEX_NAME = 'ix_outbox_due' AND COLUMN_NAME = "
	    "'published_at' AND COLLATION = 'D'";
	static const char cols[] = "SELECT COUNT(*) FROM information_schema."
	    "STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
	    "'outbox' AND INDEX_NAME = 'ix_outbox_due' AND ((SEQ_IN_INDEX = 1 "
	    "AND COLUMN_NAME = 'published_at') OR (SEQ_IN_INDEX = 2 AND "
	    "COLUMN_NAME = 'next_attempt_at' AND COLLATION = 'A') OR "
	    "(SEQ_IN_INDEX = 3 AND COLUMN_NAME = 'seq' AND COLLATION = 'A'))";
	static const char sum[] = "SELECT SUM(CRC32(CONCAT_WS(',', seq, "
	    "message_id, published_at, next_attempt_at))) FROM outbox";
	struct h_daemon d = { 0 };
	long long before;

	ck_assert_int_eq(mt_count(desc), 1);
	h_sql("ALTER TABLE outbox DROP INDEX ix_outbox_due, ADD INDEX "
	    "ix_outbox_due (published_at, next_attempt_at, seq)");
	ck_assert_int_eq(mt_count(desc), 0);
	h_sql("INSERT INTO outbox (message_id, event_name, payload, "
	    "created_at, published_at, next_attempt_at) SELECT CONCAT("
	    "'00000000-0000-4000-8000-', LPAD(seq, 12, '0')), 'E', '{}', "
	    "UTC_TIMESTAMP(6), IF(seq % 3 = 0, NULL, UTC_TIMESTAMP(6) - "
	    "INTERVAL seq SECOND), IF(seq % 7 = 0, UTC_TIMESTAMP(6), NULL) "
	    "FROM seq_1_to_10000");
	before = mt_count(sum);
	h_sql("DELETE FROM schema_migrations WHERE version = 14");
	ck_assert_int_eq(MT_MIGRATE(&d, NULL, "014"), 0);
	ck_assert(h_log_contains(&d, "applied 014_outbox_due_desc.sql"));
	ck_assert_int_eq(mt_count(desc), 1);
	ck_assert_int_eq(mt_count(cols), 3);
	ck_assert_int_eq(mt_count(sum), before);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM outbox"), 10000);
	/* Run again: nothing to turn. */
	h_sql("DELETE FROM schema_migrations WHERE version = 14");
	ck_assert_int_eq(MT_MIGRATE(&d, NULL, "014-again"), 0);
	ck_assert(h_log_contains(&d, "applied 014_outbox_due_desc.sql"));
	ck_assert_int_eq(mt_count(desc), 1);
	ck_assert_int_eq(mt_count(cols), 3);
	ck_assert_int_eq(mt_count(sum), before);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM schema_migrations "
	    "WHERE version = 14"), 1);
	ck_assert_int_eq(mt_count("SELECT COUNT(*) FROM information_schema."
	    "ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME "
	    "LIKE '\\_mig014%'"), 0);
}
END_TEST

Suite *
it_migrations_suite(void)
{
	Suite *s = suite_create("migrations");
	TCase *twin = tcase_create("ids compare byte for byte");
	TCase *tc = tcase_create("009 id columns");
	TCase *ret = tcase_create("011 and 014 run again");

	tcase_add_checked_fixture(twin, mt_schema_up, NULL);
	tcase_add_unchecked_fixture(twin, NULL, mt_schema_down);
	tcase_add_test(twin, an_upper_case_twin_of_a_processed_id_is_another_key);
	suite_add_tcase(s, twin);

	tcase_set_timeout(ret, 120);
	tcase_add_checked_fixture(ret, mt_schema_up, NULL);
	tcase_add_unchecked_fixture(ret, NULL, mt_schema_down);
	tcase_add_test(ret, migration_011_runs_again);
	tcase_add_test(ret, migration_014_turns_the_due_index_around);
	suite_add_tcase(s, ret);

	tcase_set_timeout(tc, 900);
	tcase_add_checked_fixture(tc, mt_schema_up, NULL);
	tcase_add_unchecked_fixture(tc, NULL, mt_schema_down);
	tcase_add_test(tc, every_id_survives_byte_for_byte);
	tcase_add_test(tc, writers_lose_nothing_and_wait_little);
	tcase_add_test(tc, a_second_run_applies_nothing_and_changes_nothing);
	tcase_add_test(tc, a_migration_killed_half_way_resumes);
	tcase_add_test(tc, writes_between_the_triggers_are_kept);
	tcase_add_test(tc, a_table_with_triggers_of_its_own_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
