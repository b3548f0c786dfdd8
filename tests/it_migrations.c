/*
 * it_migrations.c - the schema's migrations against the real MariaDB.
 *
 * Each test builds a schema of its own, `outbox-migtest` (dropped first,
 * then every migration but 009 through outbox-migrate: a database
 * migrated before 009 existed), and runs outbox-migrate on the full
 * folder.
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

/* Checked fixture (each forked test): a fresh schema with every
 * migration but 009; this
 * process's connections (h_db, the writers) use it from then on. */
static void
mt_schema_up(void)
{
	struct db_params p;
	struct h_daemon d;
	char dir[600];
	db_conn *c;

	h_db_params(&p);
	c = db_new(&p);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(db_exec_sql(c, "DROP DATABASE IF EXISTS `" MT_DB
	    "`"), DB_OK);
	ck_assert_int_eq(db_exec_sql(c, "CREATE DATABASE `" MT_DB "`"),
	    DB_OK);
	db_free(c);
	mt_dir_without_009(dir, sizeof(dir));
	ck_assert_int_eq(MT_MIGRATE(&d, dir, "without-009"), 0);
	setenv("DB_NAME", MT_DB, 1);
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

static long long
mt_count(const char *sql)
{
	return h_count(sql, NULL, 0);
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
	struct h_daemon d;
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

Suite *
it_migrations_suite(void)
{
	Suite *s = suite_create("migrations");
	TCase *twin = tcase_create("ids compare byte for byte");

	tcase_add_checked_fixture(twin, mt_schema_up, NULL);
	tcase_add_unchecked_fixture(twin, NULL, mt_schema_down);
	tcase_add_test(twin, an_upper_case_twin_of_a_processed_id_is_another_key);
	suite_add_tcase(s, twin);
	return s;
}
