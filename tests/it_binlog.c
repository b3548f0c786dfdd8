/*
 * it_binlog.c - the relay's binlog mode, against MariaDBs with the binary
 * log on (scripts/infra.sh with OUTBOX_DB_BINLOG=1) that this suite runs
 * in folders and on ports of their own (tests/harness_binlog.h); the
 * test servers keep the binary log off.
 *   - the server started so has every setting the mode needs, and the
 *     settings check (relay/binlog_check.c) accepts it on the binlog
 *     reader's login;
 *   - the check refuses, naming the setting, a server without the binary
 *     log, each dynamic setting changed, and a login without REPLICATION
 *     SLAVE;
 *   - common/binlog.c, on the binlog reader's login (migration 013): the
 *     outbox rows of committed transactions once each, in commit order
 *     (not seq order), as the table holds them, none of a rolled-back
 *     one, one of a transaction that also wrote customers; a restart
 *     from the stored GTID reads the next transaction; an unknown
 *     position is reported as gone; the relay's login cannot stream;
 *   - durability: with the binary log's fsync held (tests/fsync_hold.c,
 *     OUTBOX_HOLD_ONLY=binlog), a transaction written to the binary log
 *     is not streamed before its sync, and is once the sync is done;
 *   - crash: the poll mode's phantom-events test (it_durability.c) in
 *     binlog mode: the relay (RELAY_MODE=binlog) and the worker run while
 *     a customer's transaction is written to the binary log with its
 *     sync held; the server is killed (kill -9), its binary log cut back
 *     to the last synced size (what a power loss leaves: the shim records
 *     it), and restarted: recovery rolls the transaction back, and no
 *     event may have been published, nor effect applied, for it.
 *     OUTBOX_HOLD_ROUNDS (1) crashes; `make chaos RELAY_MODE=binlog` runs
 *     it long.
 *
 * Environment: OUTBOX_BINLOG_DB_PORT (23308), OUTBOX_BINLOG_HOLD_DB_PORT
 * (23309); the servers' folders are $OUTBOX_TEST_LOGS/../var-binlog and
 * ../var-binlog-hold; besides the harness's.
 */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binlog.h"
#include "buf.h"
#include "cfg.h"
#include "clock.h"
#include "harness.h"
#include "harness_binlog.h"
#include "harness_relay.h"
#include "msg.h"
#include "relay/binlog_check.h"
#include "relay/outbatch.h"
#include "relay/position.h"
#include "suites.h"
#include "timefmt.h"
#include "uid.h"

Suite *it_binlog_suite(void);

static struct h_binlog_server plain = { "OUTBOX_BINLOG_DB_PORT", "23308",
    "binlog", 0, "", "", "" };
static struct h_binlog_server held = { "OUTBOX_BINLOG_HOLD_DB_PORT", "23309",
    "binlog-hold", 1, "", "", "" };
static char test_port[16]; /* the test servers' MariaDB */

/* Unchecked fixture (parent process): sv started, migrated; the test
 * servers' port kept. */
static void
server_up(struct h_binlog_server *sv)
{
	snprintf(test_port, sizeof(test_port), "%s", h_env("DB_PORT",
	    "23306"));
	h_binlog_up(sv);
}

static void plain_up(void) { server_up(&plain); }
static void plain_down(void) { h_binlog_down(&plain); }
static void held_up(void) { server_up(&held); }
static void held_down(void) { h_binlog_down(&held); }

/* Checked fixtures (each forked test): the case's server. */
static void
use_plain(void)
{
	setenv("DB_PORT", plain.port, 1);
}

static void
use_held(void)
{
	setenv("DB_PORT", held.port, 1);
	unlink(held.hold_file);
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
	{ "SET GLOBAL log_bin_compress = ON",
	    "SET GLOBAL log_bin_compress = OFF", "log_bin_compress=0" },
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

/* ---- common/binlog.c: rows, commits, positions ---- */

/* A reader as role's login (p.name: the outbox's database). */
static binlog *
reader_new(const char *role, unsigned server_id)
{
	struct db_params p;
	binlog *b;

	h_role_db_params(role, &p);
	b = binlog_new(&p, "outbox", server_id, 100);
	ck_assert_ptr_nonnull(b);
	return b;
}

/* Reads until a row or a commit (heartbeats skipped, at most 50: 5 s). */
static int
reader_next(binlog *b, struct binlog_row *row)
{
	int what, beats = 0;

	do
		what = binlog_next(b, row);
	while (what == BINLOG_HEARTBEAT && ++beats < 50);
	ck_assert_msg(what > 0, "binlog_next: %d %s", what, binlog_error(b));
	return what;
}

static void
outbox_in_txn(db_conn *c, const char *id)
{
	struct db_val v[] = { DB_STR(id) };

	ck_assert_msg(db_exec(c, "INSERT INTO outbox (message_id, event_name, "
	    "payload, created_at) VALUES (?, 'CustomerCreated', "
	    "'{\"k\": \"v\"}', UTC_TIMESTAMP(6))", v, 1, NULL) == DB_OK,
	    "insert: %s", db_error(c));
}

/* The next thing read is the row id, then its transaction's end. */
static void
expect_row_then_commit(binlog *b, const char *id)
{
	struct binlog_row r;

	ck_assert_int_eq(reader_next(b, &r), BINLOG_ROW);
	ck_assert_msg(r.idlen == strlen(id) && memcmp(r.id, id, r.idlen) ==
	    0, "want %s, got %.*s", id, (int)r.idlen, r.id);
	ck_assert_int_eq(reader_next(b, &r), BINLOG_COMMIT);
}

/* Three transactions: A inserts first and commits last; B inserts a
 * customer and an outbox row; C rolls back.  The reader gets B's row
 * once, then A's (commit order, not seq order), never C's; each row as
 * the table holds it; a reader started from the position after B reads
 * A's row first. */
START_TEST(binlog_reads_committed_rows_once_in_commit_order)
{
	db_conn *a = login("APP"), *bc = login("APP"), *cc = login("APP");
	binlog *b = reader_new("BINLOG", 4301), *again = reader_new("BINLOG", 4302);
	char ida[UID_LEN + 1], idb[UID_LEN + 1], idc[UID_LEN + 1],
	    cust[UID_LEN + 1], email[80], after_b[1024];
	struct db_val cv[2];
	struct binlog_row r;

	uid_new(ida);
	uid_new(idb);
	uid_new(idc);
	uid_new(cust);
	snprintf(email, sizeof(email), "binlog-%s@example.com", cust);
	ck_assert_msg(binlog_start(b, NULL) == 0, "%s", binlog_error(b));
	ck_assert_int_eq(db_begin(a), DB_OK);
	outbox_in_txn(a, ida);
	ck_assert_int_eq(db_begin(bc), DB_OK);
	cv[0] = DB_STR(cust);
	cv[1] = DB_STR(email);
	ck_assert_int_eq(db_exec(bc, "INSERT INTO customers (id, email, name, "
	    "created_at, updated_at) VALUES (?, ?, 'B', NOW(), NOW())", cv, 2,
	    NULL), DB_OK);
	outbox_in_txn(bc, idb);
	ck_assert_int_eq(db_commit(bc), DB_OK);
	ck_assert_int_eq(db_begin(cc), DB_OK);
	outbox_in_txn(cc, idc);
	ck_assert_int_eq(db_rollback(cc), DB_OK);
	ck_assert_int_eq(db_commit(a), DB_OK);

	expect_row_then_commit(b, idb);
	snprintf(after_b, sizeof(after_b), "%s", binlog_gtid(b));
	ck_assert_int_eq(reader_next(b, &r), BINLOG_ROW);
	ck_assert_msg(r.idlen == strlen(ida) && memcmp(r.id, ida, r.idlen) ==
	    0, "want %s, got %.*s", ida, (int)r.idlen, r.id);
	/* As the table holds it. */
	ck_assert_int_eq(r.seq, h_count("SELECT seq FROM outbox WHERE "
	    "message_id = ?", &DB_STR(ida), 1));
	ck_assert_uint_eq(r.attempts, 0);
	ck_assert_ptr_null(r.trace);
	ck_assert_msg(r.evlen == 15 && memcmp(r.event, "CustomerCreated",
	    15) == 0, "event %.*s", (int)r.evlen, r.event);
	ck_assert_msg(r.plen == 10 && memcmp(r.payload, "{\"k\": \"v\"}",
	    10) == 0, "payload %.*s", (int)r.plen, r.payload);
	ck_assert_int_eq(reader_next(b, &r), BINLOG_COMMIT);
	/* Nothing more: the rolled-back row never comes. */
	ck_assert_int_eq(binlog_next(b, &r), BINLOG_HEARTBEAT);

	ck_assert_msg(binlog_start(again, after_b) == 0, "%s",
	    binlog_error(again));
	expect_row_then_commit(again, ida);
	ck_assert_str_eq(binlog_gtid(again), binlog_gtid(b));
	binlog_free(again);
	binlog_free(b);
	db_free(cc);
	db_free(bc);
	db_free(a);
}
END_TEST

/* Reads until the row id came (1), or until beats heartbeats came first
 * (0; the server sends one only when it has nothing more to send); at
 * most 200 heartbeats (20 s). */
static int
reader_wait_row(binlog *b, const char *id, int beats)
{
	struct binlog_row r;
	int what, seen = 0;

	for (;;) {
		what = binlog_next(b, &r);
		ck_assert_msg(what > 0, "binlog_next: %d %s", what,
		    binlog_error(b));
		if (what == BINLOG_ROW && r.idlen == strlen(id) &&
		    memcmp(r.id, id, r.idlen) == 0)
			return 1;
		if (what == BINLOG_HEARTBEAT && (++seen == beats ||
		    seen == 200))
			return 0;
	}
}

static void
app_insert_outbox(const char *id)
{
	db_conn *c = login("APP");

	outbox_in_txn(c, id);
	db_free(c);
}

/* The relay's own login holds no REPLICATION SLAVE: the server refuses
 * its stream (1227) at the first read. */
START_TEST(relay_login_cannot_stream)
{
	binlog *ok = reader_new("BINLOG", 4304);
	binlog *b = reader_new("RELAY", 4305);
	struct binlog_row r;

	ck_assert_msg(binlog_start(ok, NULL) == 0, "%s", binlog_error(ok));
	ck_assert_msg(binlog_start(b, binlog_gtid(ok)) == 0, "%s",
	    binlog_error(b));
	ck_assert_int_eq(binlog_next(b, &r), BINLOG_EOTHER);
	ck_assert_msg(strstr(binlog_error(b), "(1227)") != NULL, "%s",
	    binlog_error(b));
	binlog_free(b);
	binlog_free(ok);
}
END_TEST

/* A compressed rows event of the outbox (log_bin_compress, which the
 * check refuses) stops the reader: never skipped, which would lose the
 * row. */
START_TEST(binlog_stops_at_compressed_rows)
{
	binlog *b = reader_new("BINLOG", 4308);
	db_conn *adm = login(NULL), *app = login("APP");
	char id[UID_LEN + 1], payload[1100];
	struct db_val v[2];
	struct binlog_row r;
	int what, n = 0;

	uid_new(id);
	memset(payload, 'x', sizeof(payload));
	memcpy(payload, "{\"k\": \"", 7);
	memcpy(payload + sizeof(payload) - 3, "\"}", 3);
	v[0] = DB_STR(id);
	v[1] = DB_STR(payload);
	ck_assert_msg(binlog_start(b, NULL) == 0, "%s", binlog_error(b));
	ck_assert_int_eq(db_exec_sql(adm, "SET GLOBAL log_bin_compress = ON"),
	    DB_OK);
	ck_assert_int_eq(db_exec(app, "INSERT INTO outbox (message_id, "
	    "event_name, payload, created_at) VALUES (?, 'CustomerCreated', "
	    "?, UTC_TIMESTAMP(6))", v, 2, NULL), DB_OK);
	ck_assert_int_eq(db_exec_sql(adm, "SET GLOBAL log_bin_compress = OFF"),
	    DB_OK);
	do /* at most 5 s of heartbeats */
		what = binlog_next(b, &r);
	while ((what == BINLOG_HEARTBEAT || what == BINLOG_COMMIT) &&
	    ++n < 50);
	ck_assert_int_eq(what, BINLOG_EOTHER);
	ck_assert_msg(strstr(binlog_error(b), "compressed") != NULL, "%s",
	    binlog_error(b));
	db_free(app);
	db_free(adm);
	binlog_free(b);
}
END_TEST

/* A position the server never had: BINLOG_EGONE at the first read. */
START_TEST(binlog_reports_a_position_the_server_lacks)
{
	binlog *b = reader_new("BINLOG", 4303);
	struct binlog_row r;

	ck_assert_msg(binlog_start(b, "0-1-999999999") == 0, "%s",
	    binlog_error(b));
	ck_assert_int_eq(binlog_next(b, &r), BINLOG_EGONE);
	binlog_free(b);
}
END_TEST

/* The row as poll mode reads it (relay/poll.c's columns) into b. */
static int
poll_row(void *ud, const struct db_col *c, size_t n)
{
	struct outbatch *b = ud;

	if (n != 6)
		return -1;
	return outbatch_add(b, strtoll(c[0].s, NULL, 10),
	    (unsigned)strtoul(c[4].s, NULL, 10), c[1].s, c[1].len, c[2].s,
	    c[2].len, c[3].s, c[3].len, c[5].is_null ? NULL : c[5].s,
	    c[5].len);
}

/* A row with a traceparent and a payload with UTF-8 and escapes: the
 * message built from the binary log's row is the poll mode's, byte for
 * byte (body, id, type, seq; the traceparent continues the same trace,
 * its span id is the relay's own each time). */
START_TEST(binlog_row_gives_the_poll_mode_message)
{
	static const char tp[] =
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	binlog *b = reader_new("BINLOG", 4307);
	db_conn *app = login("APP");
	struct outbatch fromlog, frompoll;
	struct binlog_row r;
	char id[UID_LEN + 1];
	struct db_val v[3];
	const struct mq_msg *x, *y;

	uid_new(id);
	v[0] = DB_STR(id);
	v[1] = DB_STR("{\"name\": \"Zo\\u00eb \\\"Q\\\" \xc3\xa9\", "
	    "\"n\": [1, 2.5e3]}");
	v[2] = DB_STR(tp);
	ck_assert_msg(binlog_start(b, NULL) == 0, "%s", binlog_error(b));
	ck_assert_int_eq(db_exec(app, "INSERT INTO outbox (message_id, "
	    "event_name, payload, traceparent, created_at) VALUES (?, "
	    "'CustomerCreated', ?, ?, UTC_TIMESTAMP(6))", v, 3, NULL), DB_OK);
	ck_assert_int_eq(outbatch_init(&fromlog, 4), 0);
	ck_assert_int_eq(outbatch_init(&frompoll, 4), 0);
	ck_assert_int_eq(reader_next(b, &r), BINLOG_ROW);
	ck_assert_int_eq(outbatch_add(&fromlog, r.seq, r.attempts, r.id,
	    r.idlen, r.event, r.evlen, r.payload, r.plen, r.trace,
	    r.tracelen), 0);
	ck_assert_int_eq(db_query(h_db(), "SELECT seq, message_id, "
	    "event_name, payload, attempts, traceparent FROM outbox WHERE "
	    "message_id = ?", v, 1, poll_row, &frompoll, NULL), DB_OK);
	outbatch_seal(&fromlog);
	outbatch_seal(&frompoll);
	ck_assert_uint_eq(fromlog.n, 1);
	ck_assert_uint_eq(frompoll.n, 1);
	x = &fromlog.msgs[0];
	y = &frompoll.msgs[0];
	ck_assert_uint_eq(x->len, y->len);
	ck_assert_msg(memcmp(x->body, y->body, x->len) == 0, "%.*s "
	    "vs %.*s", (int)x->len, x->body, (int)y->len, y->body);
	ck_assert_str_eq(x->message_id, y->message_id);
	ck_assert_str_eq(x->type, y->type);
	ck_assert_int_eq(x->seq, y->seq);
	ck_assert_uint_eq(x->timestamp, y->timestamp);
	ck_assert_ptr_nonnull(x->traceparent);
	ck_assert_ptr_nonnull(y->traceparent);
	/* version and trace id; flags */
	ck_assert_int_eq(strncmp(x->traceparent, tp, 36), 0);
	ck_assert_int_eq(strncmp(y->traceparent, tp, 36), 0);
	ck_assert_str_eq(x->traceparent + 52, y->traceparent + 52);
	outbatch_free(&fromlog);
	outbatch_free(&frompoll);
	db_free(app);
	binlog_free(b);
}
END_TEST

/* relay/position.c on the relay's login: none at first, then what was
 * stored last, in one row. */
START_TEST(position_is_one_row_stored_and_loaded)
{
	db_conn *c = login("RELAY");
	char gtid[1024];
	int64_t seq = 0;

	ck_assert_int_eq(db_exec_sql(h_db(), "DELETE FROM "
	    "outbox_relay_position"), DB_OK);
	ck_assert_int_eq(position_load(c, gtid, sizeof(gtid), &seq), 0);
	ck_assert_int_eq(position_store(c, "0-1-5", 7), DB_OK);
	ck_assert_int_eq(position_load(c, gtid, sizeof(gtid), &seq), 1);
	ck_assert_str_eq(gtid, "0-1-5");
	ck_assert_int_eq(seq, 7);
	ck_assert_int_eq(position_store(c, "0-1-6,1-2-3", -1), DB_OK);
	ck_assert_int_eq(position_load(c, gtid, sizeof(gtid), &seq), 1);
	ck_assert_str_eq(gtid, "0-1-6,1-2-3");
	ck_assert_int_eq(seq, -1);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox_relay_position",
	    NULL, 0), 1);
	db_free(c);
}
END_TEST

/* ---- durability: nothing is streamed before the binary log's sync ---- */

struct held_insert {
	db_conn *c;
	char id[UID_LEN + 1];
	_Atomic int rc; /* 1 until the INSERT returns */
};

static void *
held_insert_run(void *arg)
{
	struct held_insert *h = arg;
	struct db_val v[] = { DB_STR(h->id) };

	h->rc = db_exec(h->c, "INSERT INTO outbox (message_id, event_name, "
	    "payload, created_at) VALUES (?, 'customer.created', '{}', "
	    "UTC_TIMESTAMP(6))", v, 1, NULL);
	return NULL;
}

static int
gtid_row(void *ud, const struct db_col *cols, size_t ncols)
{
	if (ncols != 1)
		return -1;
	snprintf(ud, 1024, "%s", cols[0].is_null ? "" : cols[0].s);
	return 0;
}

struct gtid_ud {
	db_conn *adm;
	const char *before;
};

/* @@gtid_binlog_pos moves when a transaction is written to the binary
 * log, before its sync: the held transaction is in the file. */
static int
gtid_moved(void *ud)
{
	struct gtid_ud *g = ud;
	char now[1024] = "";

	ck_assert_int_eq(db_query(g->adm, "SELECT @@GLOBAL.gtid_binlog_pos",
	    NULL, 0, gtid_row, now, NULL), DB_OK);
	return strcmp(now, g->before) != 0;
}

/* Issue 18's question: does MariaDB send a binlog event to a replication
 * client before sync_binlog's fsync?  The server of this case holds the
 * binary log's fsync (tests/fsync_hold.c, OUTBOX_HOLD_ONLY=binlog); a
 * row inserted meanwhile is written to the binary log (the GTID moves)
 * and must not reach the reader, which gets heartbeats instead (sent only
 * when the server has nothing more for it); once the hold ends the row
 * arrives (else the stream proved nothing). */
START_TEST(binlog_sends_no_event_before_its_sync)
{
	binlog *b = reader_new("BINLOG", 4306);
	db_conn *adm = login(NULL);
	struct held_insert h;
	struct gtid_ud g;
	pthread_t th;
	char base[UID_LEN + 1], before[1024] = "";
	FILE *f;

	uid_new(base);
	ck_assert_msg(binlog_start(b, NULL) == 0, "%s", binlog_error(b));
	app_insert_outbox(base);
	ck_assert_msg(reader_wait_row(b, base, 0), "the stream is not live");

	ck_assert_int_eq(db_query(adm, "SELECT @@GLOBAL.gtid_binlog_pos",
	    NULL, 0, gtid_row, before, NULL), DB_OK);
	memset(&h, 0, sizeof(h));
	h.c = login("APP");
	uid_new(h.id);
	h.rc = 1;
	f = fopen(held.hold_file, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(pthread_create(&th, NULL, held_insert_run, &h), 0);
	g.adm = adm;
	g.before = before;
	ck_assert_msg(h_wait(30000, gtid_moved, &g), "the held transaction "
	    "never reached the binary log");
	/* Written, not synced: five heartbeats, and not the row. */
	ck_assert_msg(!reader_wait_row(b, h.id, 5), "the row was sent "
	    "before the binary log was synced");
	ck_assert_int_eq(h.rc, 1); /* its commit still waits */

	unlink(held.hold_file);
	ck_assert_msg(reader_wait_row(b, h.id, 0), "the row never came "
	    "after the sync");
	pthread_join(th, NULL);
	ck_assert_int_eq(h.rc, DB_OK);
	db_free(h.c);
	db_free(adm);
	binlog_free(b);
}
END_TEST

/* outbox-admin parked release in binlog mode: a parked row released (its
 * update: parked before, neither parked nor published after) comes back
 * as a row, marked released, with the row as it is after the release;
 * the park itself and other updates of the row give nothing. */
START_TEST(binlog_gives_a_released_row_again)
{
	db_conn *adm = login(NULL);
	binlog *b = reader_new("BINLOG", 4311);
	char id[UID_LEN + 1];
	struct db_val v = DB_NULL;
	struct binlog_row r;

	uid_new(id);
	v = DB_STR(id);
	ck_assert_msg(binlog_start(b, NULL) == 0, "%s", binlog_error(b));
	app_insert_outbox(id);
	expect_row_then_commit(b, id);
	ck_assert_int_eq(db_exec(adm, "UPDATE outbox SET attempts = 10, "
	    "last_error = 'unroutable', next_attempt_at = '9999-12-31 "
	    "23:59:59', parked_at = UTC_TIMESTAMP(6) WHERE message_id = ?",
	    &v, 1, NULL), DB_OK);
	ck_assert_int_eq(reader_next(b, &r), BINLOG_COMMIT);
	ck_assert_int_eq(db_exec(adm, "UPDATE outbox SET last_error = "
	    "'still parked' WHERE message_id = ?", &v, 1, NULL), DB_OK);
	ck_assert_int_eq(reader_next(b, &r), BINLOG_COMMIT);
	/* As outbox-admin parked release writes it (admin/parked.c). */
	ck_assert_int_eq(db_exec(adm, "UPDATE outbox SET parked_at = NULL, "
	    "attempts = 0, next_attempt_at = UTC_TIMESTAMP(6) WHERE "
	    "message_id = ?", &v, 1, NULL), DB_OK);
	ck_assert_int_eq(reader_next(b, &r), BINLOG_ROW);
	ck_assert_int_eq(r.released, 1);
	ck_assert_uint_eq(r.attempts, 0);
	ck_assert_msg(r.idlen == strlen(id) && memcmp(r.id, id, r.idlen) == 0,
	    "want %s, got %.*s", id, (int)r.idlen, r.id);
	ck_assert_int_eq(reader_next(b, &r), BINLOG_COMMIT);
	/* An insert is not a release. */
	uid_new(id);
	app_insert_outbox(id);
	ck_assert_int_eq(reader_next(b, &r), BINLOG_ROW);
	ck_assert_int_eq(r.released, 0);
	binlog_free(b);
	db_free(adm);
}
END_TEST

/* ---- what published means, with the relay in binlog mode ---- */

/* published_at stays NULL: the relay's retention deletes what its stored
 * position covers (never a parked row), its backlog gauges count the
 * rows above the position and the parked ones, and so does the audit
 * (README, "What published means in binlog mode"). */
START_TEST(binlog_relay_gauges_and_retention_read_the_position)
{
	char metrics[64], pass[300];
	const char *const env[] = { "RELAY_MODE=binlog",
	    "RELAY_RETENTION_HOURS=24", "RELAY_RETENTION_INTERVAL=1", metrics,
	    pass, NULL };
	struct h_daemon d = { 0 }, s = { 0 };
	struct db_params bp;
	int port = h_free_port();

	h_rows_reset();
	/* Rows 1..30 two days old, 1 parked; 31 new. */
	h_rows_insert(1, 31);
	h_sql("UPDATE outbox SET created_at = UTC_TIMESTAMP(6) - INTERVAL 48 "
	    "HOUR WHERE seq <= 30");
	h_sql("UPDATE outbox SET attempts = 5, last_error = 'test', "
	    "next_attempt_at = '9999-12-31 23:59:59', parked_at = "
	    "UTC_TIMESTAMP(6) WHERE seq = 1");
	h_role_db_params("BINLOG", &bp);
	snprintf(metrics, sizeof(metrics), "RELAY_METRICS_PORT=%d", port);
	snprintf(pass, sizeof(pass), "RELAY_BINLOG_PASSWORD=%s", bp.pass);

	/* The first start publishes 2..31 and stores the position. */
	H_START(&d, H_RELAY, NULL, env);
	h_mq_wait_depth(MQ_QUEUE, 30);
	ck_assert_msg(h_wait_log(&d, "pruned 29 published rows older than 24 h",
	    1, 60000), "see %s", d.log);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox", NULL, 0), 2);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE parked_at "
	    "IS NOT NULL", NULL, 0), 1);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE "
	    "published_at IS NOT NULL", NULL, 0), 0);
	/* Backlog: the parked row alone, two days old. */
	h_wait_metric_is(port, "outbox_relay_backlog_rows", 1, 30000);
	ck_assert(h_metric(port, "outbox_relay_oldest_unpublished_seconds") >
	    47 * 3600);
	/* The audit: the parked row is the one unpublished row. */
	ck_assert_int_eq(h_audit(&s, "binlog-relay", NULL), 1);
	ck_assert_msg(h_audit_says(&s, "FAIL", "outbox rows unpublished "
	    "longer than the grace", 1), "see %s", s.log);
	ck_assert(h_audit_says(&s, "FAIL", "outbox rows parked "
	    "(RELAY_MAX_ATTEMPTS refusals)", 1));
	memset(&s, 0, sizeof(s));
	/* A standby samples too: without a leader its gauges still tell. */
	port = h_free_port();
	snprintf(metrics, sizeof(metrics), "RELAY_METRICS_PORT=%d", port);
	H_START(&s, H_RELAY, "standby", env);
	ck_assert(h_wait_log(&s, "binlog mode: standby", 1, 30000));
	h_wait_metric_is(port, "outbox_relay_backlog_rows", 1, 30000);
	h_stop_clean(&s);
	h_stop_clean(&d);
}
END_TEST

/* ---- crash: nothing published for a commit recovery rolls back ---- */

/* A customer and its outbox row, in one transaction of c (its commit
 * left to the caller). */
static int
customer_txn(db_conn *c, const char *cust, const char *msg, const char *tag)
{
	char email[64], ts[TIMEFMT_LEN];
	struct customer cu;
	struct timespec now;
	struct db_val a[4];
	struct buf body;
	int rc;

	snprintf(email, sizeof(email), "%s-%s@example.com", tag, cust);
	memset(&cu, 0, sizeof(cu));
	memcpy(cu.id, cust, sizeof(cu.id));
	cu.email = email;
	cu.name = "Binlog";
	timefmt_now(&now);
	timefmt_rfc3339(&now, cu.created_at, sizeof(cu.created_at));
	memcpy(cu.updated_at, cu.created_at, sizeof(cu.updated_at));
	timefmt_sql(&now, ts, sizeof(ts));
	buf_init(&body, 4096);
	if (msg_customer_json(&cu, &body) != 0) {
		buf_free(&body);
		return DB_EOTHER;
	}
	a[0] = DB_STR(cust);
	a[1] = DB_STR(email);
	a[2] = DB_STR(ts);
	a[3] = DB_STR(ts);
	rc = db_begin(c);
	if (rc == DB_OK)
		rc = db_exec(c, "INSERT INTO customers (id, email, name, "
		    "created_at, updated_at) VALUES (?, ?, 'Binlog', ?, ?)", a,
		    4, NULL);
	a[0] = DB_STR(msg);
	a[1] = DB_STRN(body.data, body.len);
	a[2] = DB_STR(ts);
	if (rc == DB_OK)
		rc = db_exec(c, "INSERT INTO outbox (message_id, event_name, "
		    "payload, created_at) VALUES (?, 'CustomerCreated', ?, ?)",
		    a, 3, NULL);
	buf_free(&body);
	return rc;
}

/* A customer committed through the relay's path: its id in cust. */
static void
customer_committed(char *cust)
{
	char msg[UID_LEN + 1];

	uid_new(cust);
	uid_new(msg);
	ck_assert_int_eq(customer_txn(h_db(), cust, msg, "ok"), DB_OK);
	ck_assert_int_eq(db_commit(h_db()), DB_OK);
}

struct held_customer {
	char cust[UID_LEN + 1], msg[UID_LEN + 1];
	_Atomic int rc; /* 1 until the COMMIT returns (fails: the crash) */
};

static void *
held_customer_run(void *arg)
{
	struct held_customer *h = arg;
	db_conn *c = login("APP");
	int rc = customer_txn(c, h->cust, h->msg, "held");

	if (rc == DB_OK)
		rc = db_commit(c);
	else
		db_rollback(c);
	db_free(c);
	h->rc = rc;
	return NULL;
}

static long long
count_of(const char *sql, const char *id)
{
	struct db_val a = DB_STR(id);

	return h_count(sql, &a, 1);
}

struct seen_ud {
	const char *sql, *id;
};

static int
db_answers(void *ud)
{
	(void)ud;
	return db_ping(h_db()) == DB_OK;
}

static int
seen_once(void *ud)
{
	struct seen_ud *u = ud;

	return db_answers(NULL) && count_of(u->sql, u->id) >= 1;
}

/* 1 when a binary log file of the held server holds the bytes of ud (a
 * string): a transaction written there, synced or not. */
static int
binlog_has(void *ud)
{
	const char *needle = ud;
	char dir[700], path[1000];
	struct dirent *e;
	size_t nlen = strlen(needle);
	int found = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/mariadb/data", held.var);
	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while (!found && (e = readdir(d)) != NULL) {
		struct buf b;
		FILE *f;
		char chunk[65536];
		size_t n;

		if (strncmp(e->d_name, "mariadb-bin.0", 13) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "rb");
		if (f == NULL)
			continue;
		buf_init(&b, (size_t)256 << 20);
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			ck_assert_int_eq(buf_append(&b, chunk, n), 0);
		fclose(f);
		found = b.len >= nlen && memmem(b.data, b.len, needle, nlen)
		    != NULL;
		buf_free(&b);
	}
	closedir(d);
	return found;
}

static int
handled_within(const char *cust, int ms)
{
	struct seen_ud u = { "SELECT COUNT(*) FROM welcome_emails WHERE "
	    "customer_id = ?", cust };

	return h_wait(ms, seen_once, &u);
}

/* After the kill -9: the binary log cut back to the size its last
 * completed sync left (the shim's "<size> <path>" record): what a power
 * loss leaves of a file whose sync never came.  Returns the bytes cut. */
static long long
binlog_cut_to_synced(void)
{
	char name[700], path[1024];
	long long size = -1;
	struct stat st;
	FILE *f;

	snprintf(name, sizeof(name), "%s.synced", held.hold_file);
	f = fopen(name, "r");
	ck_assert_msg(f != NULL, "no record of the binary log's last sync "
	    "(%s): no sync was held", name);
	ck_assert_int_eq(fscanf(f, "%lld %1023s", &size, path), 2);
	fclose(f);
	unlink(name);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg(st.st_size >= size, "%s: %lld bytes, below its synced "
	    "%lld", path, (long long)st.st_size, size);
	ck_assert_int_eq(truncate(path, size), 0);
	return (long long)st.st_size - size;
}

/* One crash: a customer's transaction committed with the binary log's
 * sync held, the server killed, the file cut back to its last synced
 * size, the server restarted; the transaction must be gone.  Returns 1
 * when it was in the binary log's file before the kill (what the crash
 * is about), 0 when it never got there; *published counts the rounds
 * whose message the worker saw before the crash. */
static int
held_crash(int *published)
{
	struct held_customer h;
	struct seen_ud seen;
	char email[64];
	long long cut;
	pthread_t th;
	int in_log;
	FILE *f;

	memset(&h, 0, sizeof(h));
	uid_new(h.cust);
	uid_new(h.msg);
	snprintf(email, sizeof(email), "held-%s@example.com", h.cust);
	h.rc = 1;
	f = fopen(held.hold_file, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(pthread_create(&th, NULL, held_customer_run, &h), 0);
	in_log = h_wait(5000, binlog_has, email);
	/* Written, not synced: the relay reads on meanwhile. */
	seen.sql = "SELECT COUNT(*) FROM processed_messages WHERE "
	    "message_id = ?";
	seen.id = h.msg;
	if (in_log)
		*published += h_wait(2000, seen_once, &seen);
	ck_assert_int_eq(h.rc, 1); /* its commit still waits */
	ck_assert_int_eq(h_binlog_infra(&held, "db-kill"), 0);
	cut = binlog_cut_to_synced();
	ck_assert_msg(!in_log || cut > 0, "nothing after the last sync: the "
	    "held transaction was not in the binary log");
	unlink(held.hold_file);
	ck_assert_int_eq(h_binlog_infra(&held, "db-start"), 0);
	ck_assert_msg(h_wait(30000, db_answers, NULL), "server not back");
	pthread_join(th, NULL);
	ck_assert_msg(h.rc != DB_OK, "the held commit returned: the binary "
	    "log's sync was not held");
	/* Recovery rolled it back: else nothing was proven. */
	ck_assert_msg(count_of("SELECT COUNT(*) FROM customers WHERE id = ?",
	    h.cust) + count_of("SELECT COUNT(*) FROM outbox WHERE "
	    "message_id = ?", h.msg) == 0, "the held transaction survived "
	    "the crash (%lld bytes cut): nothing was proven", cut);
	return in_log;
}

START_TEST(relay_publishes_nothing_a_binlog_crash_takes_back)
{
	struct h_daemon relay = { 0 }, worker = { 0 };
	struct db_params bp;
	char pass[300], warm[UID_LEN + 1], after[UID_LEN + 1];
	/* A heartbeat of 5 s: the relay, idle, stores its position (and
	 * writes the binary log) about once per heartbeat. */
	const char *extra[] = { "RELAY_MODE=binlog", pass,
	    "RELAY_BINLOG_HEARTBEAT_MS=5000", "RELAY_RECONNECT_MAX_MS=300",
	    "WORKER_RETRY_BASE_MS=50", "WORKER_RETRY_MAX_MS=300", NULL };
	int rounds, round, attempt, published = 0;

	if (cfg_parse_int(h_env("OUTBOX_HOLD_ROUNDS", "1"), 1, 1000,
	    &rounds) == -1)
		rounds = 1;
	h_role_db_params("BINLOG", &bp);
	snprintf(pass, sizeof(pass), "RELAY_BINLOG_PASSWORD=%s", bp.pass);
	h_reset();
	h_sql("DELETE FROM outbox_relay_position");
	H_START(&relay, H_RELAY, NULL, extra);
	H_START(&worker, H_WORKER, NULL, extra);
	customer_committed(warm);
	ck_assert_msg(handled_within(warm, 60000), "the warm-up customer "
	    "was not handled (logs %s, %s)", relay.log, worker.log);

	for (round = 0; round < rounds; round++) {
		/* Another transaction whose sync was held first (the
		 * relay's position, the worker's) keeps the customer's out
		 * of the file: that crash proves less, and is done again. */
		for (attempt = 1; !held_crash(&published); attempt++)
			ck_assert_msg(attempt < 3, "3 times the held transaction "
			    "did not reach the binary log within 5 s");
	}

	/* The system settles: a new customer goes all the way through,
	 * nothing is left in the queue. */
	customer_committed(after);
	ck_assert_msg(handled_within(after, 60000), "nothing handled after "
	    "the restarts (logs %s, %s)", relay.log, worker.log);
	h_assert_no_phantoms(published, rounds);
	ck_assert_int_eq(h_daemon_stop(&relay, H_STOP_MS), 0);
	ck_assert_int_eq(h_daemon_stop(&worker, H_STOP_MS), 0);
	if (rounds > 1)
		printf("binlog: %d crashes of the database with a commit in the "
		    "binary log before its sync, 0 events published for them\n",
		    rounds);
}
END_TEST

Suite *
it_binlog_suite(void)
{
	const TTest *const tests[] = {
	    binlog_server_has_what_binlog_mode_needs,
	    check_refuses_a_server_without_the_binary_log,
	    check_refuses_a_login_without_replication_slave,
	    relay_login_cannot_stream,
	    binlog_reads_committed_rows_once_in_commit_order,
	    binlog_reports_a_position_the_server_lacks,
	    position_is_one_row_stored_and_loaded,
	    binlog_row_gives_the_poll_mode_message,
	    binlog_stops_at_compressed_rows,
	    binlog_gives_a_released_row_again, NULL };
	const TTest *const durable[] = {
	    binlog_sends_no_event_before_its_sync, NULL };
	const TTest *const views[] = {
	    binlog_relay_gauges_and_retention_read_the_position, NULL };
	const TTest *const crash[] = {
	    relay_publishes_nothing_a_binlog_crash_takes_back, NULL };
	Suite *s = suite_create("binlog");
	TCase *tc = suites_case(s, "settings and logins", 120, use_plain,
	    NULL, tests);

	tcase_add_loop_test(tc, check_refuses_each_setting_naming_it, 0,
	    (int)(sizeof(changes) / sizeof(changes[0])));
	tcase_add_unchecked_fixture(tc, plain_up, plain_down);
	tcase_add_unchecked_fixture(suites_case(s, "durability", 120, use_held,
	    NULL, durable), held_up, held_down);
	tcase_add_unchecked_fixture(suites_case(s, "published", 120,
	    use_plain, NULL, views), plain_up, plain_down);
	/* OUTBOX_HOLD_ROUNDS crashes of its own server: up to 1000. */
	tcase_add_unchecked_fixture(suites_case(s, "crash", 1200, use_held,
	    NULL, crash), held_up, held_down);
	return s;
}
