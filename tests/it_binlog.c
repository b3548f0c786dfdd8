/*
 * it_binlog.c - the relay's binlog mode, against a MariaDB with the
 * binary log on (scripts/infra.sh with OUTBOX_DB_BINLOG=1), run by this
 * suite in a folder and on a port of its own (binlog_server_up); the test
 * servers keep the binary log off.
 *   - the server started so has every setting the mode needs, and the
 *     settings check (relay/binlog_check.c) accepts it on the binlog
 *     reader's login;
 *   - the check refuses, naming the setting, a server without the binary
 *     log, each dynamic setting changed, and a login without REPLICATION
 *     SLAVE;
 *   - the binlog reader's login (migration 013) streams the binary log
 *     from the current position and receives an outbox row committed by
 *     the app's login, decoded (ids are VARCHAR since migration 009);
 *     the relay's login cannot stream.
 *
 * Environment: OUTBOX_BINLOG_DB_PORT (23308), OUTBOX_BINLOG_VAR (the
 * server's folder, default $OUTBOX_TEST_LOGS/../var-binlog), besides the
 * harness's.
 */
#include <check.h>
#include <mysql.h>
#include <mariadb_rpl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "clock.h"
#include "harness.h"
#include "relay/binlog_check.h"
#include "suites.h"
#include "uid.h"

Suite *it_binlog_suite(void);

static char bl_var[512];
static char bl_port[16];
static char test_port[16]; /* the test servers' MariaDB */

/* Runs scripts/infra.sh cmd against the suite's own MariaDB; returns its
 * exit status. */
static int
binlog_infra(const char *cmd)
{
	char line[2048];
	int st;

	snprintf(line, sizeof(line), "OUTBOX_VAR='%s' OUTBOX_DB_PORT='%s' "
	    "OUTBOX_DB_BINLOG=1 bash '%s/scripts/infra.sh' %s "
	    ">>'%s/infra-binlog.log' 2>&1", bl_var, bl_port,
	    h_env("OUTBOX_ROOT", "."), cmd, h_env("OUTBOX_TEST_LOGS", "/tmp"));
	st = system(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Unchecked fixture (parent process): the server, migrated. */
static void
binlog_server_up(void)
{
	char line[2048];
	int st;

	snprintf(bl_port, sizeof(bl_port), "%s",
	    h_env("OUTBOX_BINLOG_DB_PORT", "23308"));
	snprintf(test_port, sizeof(test_port), "%s", h_env("DB_PORT",
	    "23306"));
	snprintf(bl_var, sizeof(bl_var), "%s", h_env("OUTBOX_BINLOG_VAR", ""));
	if (bl_var[0] == '\0')
		snprintf(bl_var, sizeof(bl_var), "%s/../var-binlog",
		    h_env("OUTBOX_TEST_LOGS", "/tmp"));
	mkdir(bl_var, 0755);
	if (binlog_infra("db-start") != 0) {
		fprintf(stderr, "binlog: cannot start the MariaDB of the suite "
		    "(see infra-binlog.log)\n");
		return;
	}
	snprintf(line, sizeof(line), "DB_PORT='%s' '%s/outbox-migrate' "
	    ">>'%s/infra-binlog.log' 2>&1", bl_port,
	    h_env("OUTBOX_BIN", "build/san/bin"),
	    h_env("OUTBOX_TEST_LOGS", "/tmp"));
	st = system(line);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "binlog: migrations failed (see "
		    "infra-binlog.log)\n");
}

static void
binlog_server_down(void)
{
	binlog_infra("db-stop");
}

/* Checked fixture (each forked test): the suite's server. */
static void
use_binlog_server(void)
{
	setenv("DB_PORT", bl_port, 1);
}

/* A connection as role's login (NULL: the administrator) to port;
 * BINLOG connects without a database (it has no table grant). */
static db_conn *
login(const char *role)
{
	struct db_params p;
	db_conn *c;

	if (role != NULL)
		h_role_db_params(role, &p);
	else
		h_db_params(&p);
	if (role != NULL && strcmp(role, "BINLOG") == 0)
		p.name[0] = '\0';
	c = db_new(&p);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(db_connect(c) == DB_OK, "%s login: %s",
	    role != NULL ? role : "admin", db_error(c));
	return c;
}

START_TEST(binlog_server_has_what_binlog_mode_needs)
{
	db_conn *c = login("BINLOG");
	char why[512];

	ck_assert_msg(binlog_check_settings(c, why, sizeof(why)) == 0,
	    "refused: %s", why);
	db_free(c);
}
END_TEST

/* The test servers (scripts/ports.env) run without the binary log. */
START_TEST(check_refuses_a_server_without_the_binary_log)
{
	db_conn *c;
	char why[512];

	setenv("DB_PORT", test_port, 1);
	c = login("BINLOG");
	ck_assert_int_eq(binlog_check_settings(c, why, sizeof(why)), -1);
	ck_assert_msg(strstr(why, "log_bin=1") != NULL, "why: %s", why);
	db_free(c);
}
END_TEST

START_TEST(check_refuses_a_login_without_replication_slave)
{
	db_conn *c = login("RELAY");
	char why[512];

	ck_assert_int_eq(binlog_check_settings(c, why, sizeof(why)), -1);
	ck_assert_msg(strstr(why, "REPLICATION SLAVE") != NULL, "why: %s",
	    why);
	db_free(c);
}
END_TEST

/* Each dynamic setting changed on the running server, the check run, the
 * setting put back. */
static const struct {
	const char *set, *reset, *named;
} changes[] = {
	{ "SET GLOBAL binlog_format = 'MIXED'",
	    "SET GLOBAL binlog_format = 'ROW'", "binlog_format=ROW" },
	{ "SET GLOBAL binlog_row_image = 'MINIMAL'",
	    "SET GLOBAL binlog_row_image = 'FULL'", "binlog_row_image=FULL" },
	{ "SET GLOBAL binlog_row_metadata = 'MINIMAL'",
	    "SET GLOBAL binlog_row_metadata = 'FULL'",
	    "binlog_row_metadata=FULL" },
	{ "SET GLOBAL sync_binlog = 0", "SET GLOBAL sync_binlog = 1",
	    "sync_binlog=1" },
	{ "SET GLOBAL innodb_flush_log_at_trx_commit = 2",
	    "SET GLOBAL innodb_flush_log_at_trx_commit = 1",
	    "innodb_flush_log_at_trx_commit=1" },
};

START_TEST(check_refuses_each_setting_naming_it)
{
	db_conn *adm = login(NULL), *c = login("BINLOG");
	char why[512];
	int rc;

	ck_assert_int_eq(db_exec_sql(adm, changes[_i].set), DB_OK);
	rc = binlog_check_settings(c, why, sizeof(why));
	ck_assert_int_eq(db_exec_sql(adm, changes[_i].reset), DB_OK);
	ck_assert_int_eq(rc, -1);
	ck_assert_msg(strstr(why, changes[_i].named) != NULL, "why: %s", why);
	db_free(c);
	db_free(adm);
}
END_TEST

/* ---- the replication stream, straight through Connector/C ---- */

static MYSQL *
rpl_login(const char *role)
{
	struct db_params p;
	unsigned timeout = 5;
	MYSQL *m = mysql_init(NULL);

	ck_assert_ptr_nonnull(m);
	h_role_db_params(role, &p);
	mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	/* Longer than the heartbeat period: a silent stream ends. */
	mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &timeout);
	ck_assert_msg(mysql_real_connect(m, p.host, p.user, p.pass, NULL,
	    (unsigned)p.port, NULL, 0) != NULL, "%s login: %s", role,
	    mysql_error(m));
	return m;
}

static void
rpl_query(MYSQL *m, const char *sql)
{
	ck_assert_msg(mysql_query(m, sql) == 0, "%s: %s", sql,
	    mysql_error(m));
}

/* The durable end of the binary log as a GTID list: SHOW MASTER STATUS
 * waits for the log's lock, unlike @@gtid_binlog_pos, which can name a
 * transaction not yet synced. */
static void
rpl_current_gtid(MYSQL *m, char *out, size_t len)
{
	char sql[512];
	MYSQL_RES *r;
	MYSQL_ROW row;

	rpl_query(m, "SHOW MASTER STATUS");
	r = mysql_store_result(m);
	ck_assert_ptr_nonnull(r);
	row = mysql_fetch_row(r);
	ck_assert_ptr_nonnull(row);
	snprintf(sql, sizeof(sql), "SELECT BINLOG_GTID_POS('%.200s', %.20s)",
	    row[0], row[1]);
	mysql_free_result(r);
	rpl_query(m, sql);
	r = mysql_store_result(m);
	ck_assert_ptr_nonnull(r);
	row = mysql_fetch_row(r);
	ck_assert_ptr_nonnull(row);
	snprintf(out, len, "%s", row[0] != NULL ? row[0] : "");
	mysql_free_result(r);
}

/* Opens the stream after gtid; the server id is the reader's own. */
static MARIADB_RPL *
rpl_start(MYSQL *m, const char *gtid)
{
	char sql[1200];
	MARIADB_RPL *rpl;

	rpl_query(m, "SET @mariadb_slave_capability = 4");
	rpl_query(m, "SET @master_binlog_checksum = @@global.binlog_checksum");
	rpl_query(m, "SET @master_heartbeat_period = 1000000000");
	snprintf(sql, sizeof(sql), "SET @slave_connect_state = '%.1000s'",
	    gtid);
	rpl_query(m, sql);
	rpl = mariadb_rpl_init(m);
	ck_assert_ptr_nonnull(rpl);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, "", (size_t)0);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, 4UL);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID, 4242u);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_FLAGS, 0u);
	ck_assert_msg(mariadb_rpl_open(rpl) == 0, "open: %s", mysql_error(m));
	return rpl;
}

static void
app_insert_outbox(const char *id)
{
	db_conn *c = login("APP");
	struct db_val v[] = { DB_STR(id) };

	ck_assert_msg(db_exec(c, "INSERT INTO outbox (message_id, event_name, "
	    "payload, created_at) VALUES (?, 'customer.created', '{}', "
	    "UTC_TIMESTAMP(6))", v, 1, NULL) == DB_OK, "insert: %s",
	    db_error(c));
	db_free(c);
}

START_TEST(binlog_login_streams_an_outbox_row)
{
	MYSQL *m = rpl_login("BINLOG");
	MARIADB_RPL *rpl;
	MARIADB_RPL_EVENT *ev, *tmap = NULL;
	char gtid[1024], id[UID_LEN + 1];
	long long deadline = clock_ms() + 20000;
	int found = 0;

	uid_new(id);
	rpl_current_gtid(m, gtid, sizeof(gtid));
	rpl = rpl_start(m, gtid);
	app_insert_outbox(id);
	while (!found && clock_ms() < deadline) {
		ev = mariadb_rpl_fetch(rpl, NULL);
		ck_assert_msg(ev != NULL, "fetch: %u %s", mysql_errno(m),
		    mysql_error(m));
		if (ev->event_type == TABLE_MAP_EVENT) {
			/* Kept aside: the rows event is decoded with it. */
			mariadb_free_rpl_event(tmap);
			tmap = ev;
			continue;
		}
		if (ev->event_type == WRITE_ROWS_EVENT_V1 && tmap != NULL &&
		    strncmp(tmap->event.table_map.table.str, "outbox",
		    tmap->event.table_map.table.length) == 0 &&
		    tmap->event.table_map.table.length == 6) {
			MARIADB_RPL_ROW *row = mariadb_rpl_extract_rows(rpl,
			    tmap, ev);

			ck_assert_msg(row != NULL, "extract: %s",
			    mysql_error(m));
			ck_assert_uint_ge(row->column_count, 2);
			found = row->columns[1].val.str.length == strlen(id) &&
			    memcmp(row->columns[1].val.str.str, id,
			    strlen(id)) == 0;
		}
		mariadb_free_rpl_event(ev);
	}
	mariadb_free_rpl_event(tmap);
	mariadb_rpl_close(rpl);
	mysql_close(m);
	ck_assert_msg(found, "the row %s was not streamed", id);
}
END_TEST

/* The relay's own login holds no REPLICATION SLAVE: the server refuses
 * the stream (1227), at the first fetch. */
START_TEST(relay_login_cannot_stream)
{
	MYSQL *m = rpl_login("RELAY");
	MARIADB_RPL *rpl = rpl_start(m, "");
	MARIADB_RPL_EVENT *ev = mariadb_rpl_fetch(rpl, NULL);

	ck_assert_ptr_null(ev);
	ck_assert_msg(mysql_errno(m) == 1227, "want 1227, got %u %s",
	    mysql_errno(m), mysql_error(m));
	mariadb_rpl_close(rpl);
	mysql_close(m);
}
END_TEST

Suite *
it_binlog_suite(void)
{
	const TTest *const tests[] = {
	    binlog_server_has_what_binlog_mode_needs,
	    check_refuses_a_server_without_the_binary_log,
	    check_refuses_a_login_without_replication_slave,
	    binlog_login_streams_an_outbox_row, relay_login_cannot_stream,
	    NULL };
	Suite *s = suite_create("binlog");
	TCase *tc = suites_case(s, "settings and logins", 120,
	    use_binlog_server, NULL, tests);

	tcase_add_loop_test(tc, check_refuses_each_setting_naming_it, 0,
	    (int)(sizeof(changes) / sizeof(changes[0])));
	tcase_add_unchecked_fixture(tc, binlog_server_up, binlog_server_down);
	return s;
}
