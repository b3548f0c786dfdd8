/*
 * it_published.c - what "published" means to everything that reads it
 * besides the relay's publishing, in both modes, against the real
 * MariaDB and RabbitMQ (README, "What published means in binlog mode"):
 *   - the relay's backlog gauges (relay/backlog.c): poll mode counts
 *     published_at IS NULL; binlog mode the rows above the stored
 *     position's last_seq, the parked ones whatever their seq, and all
 *     unpublished rows while no position (or no last_seq) is stored;
 *   - the relay's retention (relay/retention.c): binlog mode deletes only
 *     old rows at or below last_seq, never parked ones, and keeps those
 *     created within RETENTION_TXN_MARGIN_S of the position (a long
 *     transaction may not be read yet), nor those released since; in
 *     chunks; poll mode as before;
 *   - outbox-audit with a stored position: rows at or below it are
 *     published, the others and the parked ones are not.
 * The position is written by hand with relay/position.c on the relay's
 * login: no binlog server is needed.  outbox-admin's side is in
 * it_admin.c.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "harness_relay.h"
#include "metrics.h"
#include "pruner.h"
#include "relay/backlog.h"
#include "relay/config.h"
#include "relay/position.h"
#include "relay/relay_metrics.h"
#include "relay/retention.h"
#include "suites.h"

Suite *it_published_suite(void);

/* Runs sql with one integer value; fails the test on error. */
static void
sql_int(const char *sql, long long v)
{
	struct db_val a = DB_INT(v);

	ck_assert_msg(db_exec(h_db(), sql, &a, 1, NULL) == DB_OK, "%s: %s",
	    sql, db_error(h_db()));
}

/* Rows first..last created hours ago (after h_rows_reset, seq = the
 * row's index). */
static void
created_hours_ago(long long first, long long last, int hours)
{
	struct db_val a[3] = { DB_INT(hours), DB_INT(first), DB_INT(last) };

	ck_assert(db_exec(h_db(), "UPDATE outbox SET created_at = "
	    "UTC_TIMESTAMP(6) - INTERVAL ? HOUR WHERE seq BETWEEN ? AND ?", a,
	    3, NULL) == DB_OK);
}

/* Parks row seq as the relay does (relay/publish.c). */
static void
park(long long seq)
{
	sql_int("UPDATE outbox SET attempts = 5, last_error = 'test: "
	    "refused', next_attempt_at = '9999-12-31 23:59:59', parked_at = "
	    "UTC_TIMESTAMP(6) WHERE seq = ?", seq);
}

/* ---- the backlog gauges ---- */

/* One sample in mode binlog: rows and the oldest's age in hours. */
static long long
sample(int binlog, double *hours)
{
	struct backlog b;
	long long rows = -1;
	double age = -1;
	db_conn *c = h_role_db("RELAY");

	backlog_init(&b, 0);
	backlog_binlog_mode(&b, binlog);
	ck_assert_int_eq(backlog_sample(&b, c, &rows, &age), DB_OK);
	db_free(c);
	*hours = age / 3600;
	return rows;
}

/* The age a sample gave, in hours, is about want (the test's own
 * minutes aside). */
#define ck_age(got, want)                                                   \
	ck_assert_msg((got) > (want) - 0.01 && (got) < (want) + 0.1,        \
	    "age %.3f h, want %d h", (got), (want))

START_TEST(backlog_follows_the_mode)
{
	db_conn *c = h_role_db("RELAY");
	double h;

	/* Row 1 parked 5 h ago, 2..6 created 3 h ago, 7..10 1 h ago. */
	h_rows_insert(1, 10);
	created_hours_ago(1, 1, 5);
	created_hours_ago(2, 6, 3);
	created_hours_ago(7, 10, 1);
	park(1);

	/* No position: both modes count every row with published_at
	 * NULL, the parked one included. */
	ck_assert_int_eq(sample(0, &h), 10);
	ck_age(h, 5);
	ck_assert_int_eq(sample(1, &h), 10);
	ck_age(h, 5);

	/* Published up to row 6: rows 7..10 are left, and the parked row
	 * whose seq is below. */
	ck_assert_int_eq(position_store(c, "0-1-100", 6), DB_OK);
	ck_assert_int_eq(sample(1, &h), 5);
	ck_age(h, 5);
	/* The poll mode reads published_at only. */
	ck_assert_int_eq(sample(0, &h), 10);

	/* Released (not parked any more, below the position): published
	 * as far as the table can tell. */
	h_sql("UPDATE outbox SET parked_at = NULL, next_attempt_at = NULL, "
	    "attempts = 0 WHERE seq = 1");
	ck_assert_int_eq(sample(1, &h), 4);
	ck_age(h, 1);
	/* A row a poll relay marked (before a switch of mode) is published
	 * whatever its seq. */
	h_sql("UPDATE outbox SET published_at = UTC_TIMESTAMP(6) WHERE seq = "
	    "10");
	ck_assert_int_eq(sample(1, &h), 3);

	/* A position without a last_seq (nothing published up to it yet):
	 * every row with published_at NULL. */
	ck_assert_int_eq(position_store(c, "0-1-101", -1), DB_OK);
	ck_assert_int_eq(sample(1, &h), 9);
	ck_age(h, 5);

	/* Everything published: 0 rows, age 0. */
	ck_assert_int_eq(position_store(c, "0-1-102", 10), DB_OK);
	ck_assert_int_eq(sample(1, &h), 0);
	ck_assert(h == 0);
	db_free(c);
}
END_TEST

/* backlog_step feeds the relay's gauges with binlog mode's figures. */
START_TEST(backlog_step_sets_the_gauges)
{
	db_conn *c = h_role_db("RELAY");
	struct backlog b;
	struct buf text;
	double age;

	h_rows_insert(1, 8);
	created_hours_ago(1, 8, 2);
	ck_assert_int_eq(position_store(c, "0-1-7", 5), DB_OK);
	relay_metrics_init();
	backlog_init(&b, 0);
	backlog_binlog_mode(&b, 1);
	ck_assert(backlog_due(&b, 0));
	ck_assert_int_eq(backlog_step(&b, c, 0), DB_OK);
	ck_assert(!backlog_due(&b, BACKLOG_INTERVAL_MS - 1));
	buf_init(&text, 1 << 20);
	ck_assert_int_eq(metrics_render(&text), 0);
	ck_assert_int_eq(buf_append(&text, "", 1), 0);
	ck_assert(h_series_value(text.data, "outbox_relay_backlog_rows") ==
	    3);
	age = h_series_value(text.data,
	    "outbox_relay_oldest_unpublished_seconds");
	ck_assert_msg(age > 7200 - 1 && age < 7200 + 600, "age %f", age);
	buf_free(&text);
	metrics_free_all();
	db_free(c);
}
END_TEST

/* The first column of the first row, an integer, into *ud. */
static int
first_int(void *ud, const struct db_col *cols, size_t ncols)
{
	long long *v = ud;

	if (ncols > 0 && !cols[0].is_null && *v == -1)
		*v = strtoll(cols[0].s, NULL, 10);
	return 0;
}

/* The rows a connection's statements read so far: the sum of its
 * Handler_read_* counters. */
static long long
rows_read_on(db_conn *c)
{
	long long n = -1;

	ck_assert_msg(db_query(c, "SELECT SUM(VARIABLE_VALUE) FROM "
	    "information_schema.SESSION_STATUS WHERE VARIABLE_NAME LIKE "
	    "'HANDLER\\_READ\\_%'", NULL, 0, first_int, &n, NULL) ==
	    DB_OK, "session status: %s", db_error(c));
	ck_assert(n >= 0);
	return n;
}

/* One sample in mode binlog on a connection of its own: rows, the
 * oldest's age in hours, and the rows the sample read (*read: the
 * growth of the connection's counters, less what reading them costs). */
static long long
sample_read(int binlog, double *hours, long long *read)
{
	struct backlog b;
	long long rows = -1, r0, r1, r2;
	double age = -1;
	db_conn *c = h_role_db("RELAY");

	backlog_init(&b, 0);
	backlog_binlog_mode(&b, binlog);
	r0 = rows_read_on(c);
	r1 = rows_read_on(c);
	ck_assert_int_eq(backlog_sample(&b, c, &rows, &age), DB_OK);
	r2 = rows_read_on(c);
	db_free(c);
	*read = (r2 - r1) - (r1 - r0);
	*hours = age / 3600;
	return rows;
}

/* A relay far behind samples its backlog as cheaply as one that is not:
 * the sample ran on the relay's loop, and counting a backlog of millions
 * row by row every 5 s took the time the relay needed to catch up (1
 * million rows: 0.2 s in poll mode, 0.35-0.47 s in binlog mode, every
 * page in memory).  Past BACKLOG_COUNT_MAX rows of a kind the count is
 * the span of their seq; the oldest row is still found. */
/* What a sample may read: its two kinds' limits, each row counted
 * again by the server's temporary tables (the union, the grouping), and
 * the few rows of the position and the highest seq.  A backlog ten times
 * the limit read whole is above it. */
#define BOUNDED_READS (4 * (BACKLOG_COUNT_MAX + 1) + 100)

START_TEST(backlog_sample_is_bounded_whatever_the_backlog)
{
	const long long n = 10 * BACKLOG_COUNT_MAX;
	db_conn *c = h_role_db("RELAY");
	long long read;
	double h;

	/* n fresh rows, 1..n; row 2 parked 9 h ago; rows n-5..n-3 waiting
	 * for a retry, n-4 of them created 7 h ago; rows n-2..n parked. */
	h_rows_insert(1, n);
	created_hours_ago(2, 2, 9);
	park(2);
	ck_assert(db_exec(h_db(), "UPDATE outbox SET attempts = 1, "
	    "next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR WHERE seq "
	    "BETWEEN ? AND ?", (struct db_val[]){ DB_INT(n - 5), DB_INT(n - 3) },
	    2, NULL) == DB_OK);
	created_hours_ago(n - 4, n - 4, 7);
	for (long long s = n - 2; s <= n; s++)
		park(s);
	/* Row 1001, the first above the position stored below, 4 h. */
	created_hours_ago(1001, 1001, 4);

	/* Poll mode: every row, the parked one 9 h old the oldest. */
	ck_assert_int_eq(sample_read(0, &h, &read), n);
	ck_age(h, 9);
	ck_assert_msg(read <= BOUNDED_READS,
	    "poll mode: the sample read %lld rows for a backlog of %lld",
	    read, n);

	/* Binlog mode, published up to row 1000: the rows above it and the
	 * parked row 2 below it; the oldest still row 2. */
	ck_assert_int_eq(position_store(c, "0-1-200", 1000), DB_OK);
	ck_assert_int_eq(sample_read(1, &h, &read), n - 1000 + 1);
	ck_age(h, 9);
	ck_assert_msg(read <= BOUNDED_READS,
	    "binlog mode: the sample read %lld rows for a backlog of %lld",
	    read, n - 1000 + 1);
	/* Row 2 released: the oldest is the first row above the position.
	 * (The retry 7 h old, past the limit, is not seen: a binlog relay
	 * keeps its retries in memory; a poll relay left this one.) */
	h_sql("UPDATE outbox SET parked_at = NULL, next_attempt_at = NULL, "
	    "attempts = 0 WHERE seq = 2");
	ck_assert_int_eq(sample_read(1, &h, &read), n - 1000);
	ck_age(h, 4);
	db_free(c);
}
END_TEST

/* ---- retention ---- */

/* Sweeps (chunks until one comes back short); the rows deleted. */
static long long
sweep(int binlog, int hours)
{
	db_conn *c = h_role_db("RELAY");
	uint64_t n, deleted = 0;
	int steps = 0;

	do {
		n = 0;
		ck_assert_msg(retention_chunk(binlog, c, hours, &n) == DB_OK,
		    "retention: %s", db_error(c));
		deleted += n;
		ck_assert_int_lt(++steps, 100);
	} while (n >= CHUNKDEL_ROWS);
	db_free(c);
	return (long long)deleted;
}

static long long
rows_left(const char *where)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM outbox WHERE %s",
	    where);
	return h_count(sql, NULL, 0);
}

START_TEST(retention_binlog_keeps_what_the_position_does_not_cover)
{
	db_conn *c = h_role_db("RELAY");

	/* 1..1200 48 h old (1 and 700 parked); 1201..1210 20 h old;
	 * 1211..1220 1 h old, and 1221..1230 48 h old again but above the
	 * position (a poll relay marked 1230 published). */
	h_rows_insert(1, 1230);
	created_hours_ago(1, 1200, 48);
	created_hours_ago(1201, 1210, 20);
	created_hours_ago(1211, 1220, 1);
	created_hours_ago(1221, 1230, 48);
	park(1);
	park(700);
	h_sql("UPDATE outbox SET published_at = UTC_TIMESTAMP(6) - INTERVAL "
	    "48 HOUR WHERE seq = 1230");

	/* Poll mode: only the row marked published long ago. */
	ck_assert_int_eq(sweep(0, 24), 1);
	ck_assert_int_eq(rows_left("seq = 1230"), 0);

	/* Binlog mode without a position: nothing is known published. */
	ck_assert_int_eq(sweep(1, 24), 0);
	ck_assert_int_eq(position_store(c, "0-1-9", -1), DB_OK);
	ck_assert_int_eq(sweep(1, 24), 0);

	/* Published up to row 1215 (created 1 h ago): the rows at or below
	 * it, older than 24 h, not parked: 1,198 of them, in twelve chunks
	 * (eleven of 100, one of 98); the parked ones, the younger ones and
	 * those above the position stay. */
	ck_assert_int_eq(position_store(c, "0-1-10", 1215), DB_OK);
	ck_assert_int_eq(sweep(1, 24), 1198);
	ck_assert_int_eq(rows_left("seq <= 1200"), 2);
	ck_assert_int_eq(rows_left("seq <= 1200 AND parked_at IS NOT NULL"),
	    2);
	ck_assert_int_eq(rows_left("seq > 1200"), 29);
	ck_assert_int_eq(sweep(1, 24), 0);
	db_free(c);
}
END_TEST

/* A row below last_seq may belong to a transaction that committed after
 * the position's: kept while it was created within the margin before the
 * row last_seq names, or before the position was stored. */
START_TEST(retention_binlog_keeps_a_margin_for_long_transactions)
{
	db_conn *c = h_role_db("RELAY");

	/* 1..10 created 5 h ago, 11..20 2 h ago, 21 (the position's row)
	 * 90 min ago; a retention of 1 h. */
	h_rows_insert(1, 21);
	created_hours_ago(1, 10, 5);
	created_hours_ago(11, 20, 2);
	h_sql("UPDATE outbox SET created_at = UTC_TIMESTAMP(6) - INTERVAL 90 "
	    "MINUTE WHERE seq = 21");
	ck_assert_int_eq(position_store(c, "0-1-21", 21), DB_OK);

	/* The position stored 6 h ago (the relay stopped since): nothing
	 * created after 7 h ago goes. */
	h_sql("UPDATE outbox_relay_position SET updated_at = "
	    "UTC_TIMESTAMP(6) - INTERVAL 6 HOUR");
	ck_assert_int_eq(sweep(1, 1), 0);
	/* Stored now: rows created more than 1 h before row 21 (5 h ago)
	 * go; those 2 h old are older than the retention, but within the
	 * margin of row 21: kept. */
	ck_assert_int_eq(position_store(c, "0-1-22", 21), DB_OK);
	ck_assert_int_eq(sweep(1, 1), 10);
	ck_assert_int_eq(rows_left("seq <= 10"), 0);
	ck_assert_int_eq(rows_left("seq > 10"), 11);
	/* Row 21 gone (not by the relay): nothing tells how old the
	 * position is, nothing goes. */
	h_sql("UPDATE outbox SET created_at = UTC_TIMESTAMP(6) - INTERVAL 9 "
	    "HOUR WHERE seq BETWEEN 11 AND 20");
	h_sql("DELETE FROM outbox WHERE seq = 21");
	ck_assert_int_eq(sweep(1, 1), 0);
	ck_assert_int_eq(rows_left("seq > 10"), 10);
	db_free(c);
}
END_TEST

/* outbox-admin parked release sets next_attempt_at to the release time:
 * a row released after the position is kept until the relay has read
 * the release (it may park the row again), as long as a row created then
 * would be. */
START_TEST(retention_binlog_keeps_a_row_released_after_the_position)
{
	db_conn *c = h_role_db("RELAY");

	/* 1..10 created 5 h ago: 3 released now, 4 released 4 h ago; 11
	 * (the position's row) 90 min ago; a retention of 1 h. */
	h_rows_insert(1, 11);
	created_hours_ago(1, 10, 5);
	h_sql("UPDATE outbox SET created_at = UTC_TIMESTAMP(6) - INTERVAL 90 "
	    "MINUTE WHERE seq = 11");
	h_sql("UPDATE outbox SET attempts = 0, last_error = 'test: refused', "
	    "next_attempt_at = UTC_TIMESTAMP(6) WHERE seq = 3");
	h_sql("UPDATE outbox SET attempts = 0, last_error = 'test: refused', "
	    "next_attempt_at = UTC_TIMESTAMP(6) - INTERVAL 4 HOUR WHERE seq = "
	    "4");
	ck_assert_int_eq(position_store(c, "0-1-11", 11), DB_OK);
	ck_assert_int_eq(sweep(1, 1), 9);
	ck_assert_int_eq(rows_left("seq <= 10"), 1);
	ck_assert_int_eq(rows_left("seq = 3"), 1);
	db_free(c);
}
END_TEST

/* 1 once the sweep's delete has run for half a second (a chunk of 20
 * rows takes milliseconds): it waits for the row the test holds. */
static int
sweep_waiting(void *ud)
{
	(void)ud;
	return h_count("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
	    "WHERE USER = 'outbox_relay' AND INFO LIKE 'DELETE FROM outbox%' "
	    "AND TIME_MS > 500", NULL, 0) > 0;
}

/* 1 once no row of the outbox is older than 48 h. */
static int
swept(void *ud)
{
	(void)ud;
	return rows_left("created_at < UTC_TIMESTAMP(6) - INTERVAL 48 HOUR") ==
	    0;
}

/* The relay's retention sweep (its own pruner session, started as the
 * daemon starts it) never holds back the app's inserts, in either mode:
 * held up in the middle of a chunk (another session has one of its rows
 * locked), its delete holds what it has locked so far, and a new outbox
 * row goes in at once.  At REPEATABLE READ the poll mode's delete read
 * ix_outbox_due's range of old published rows with next-key locks, the
 * first of which locks the gap where every new unpublished row goes (the
 * index sorts NULL first): each sweep chunk held every request's insert
 * (make bench, history: 346 lock waits, 850 ms, in a 30 s run). */
START_TEST(retention_sweep_never_holds_back_an_insert)
{
	int binlog = _i, failed = 0;
	struct relay_config cfg;
	struct pruner *p;
	db_conn *holder, *app = h_role_db("APP");
	long long n = 0;

	/* 1..20 created (and, in poll mode, published) 49 h ago, 21..300
	 * now: the binlog position covers them all, its margin the old
	 * ones.  Fewer old rows than a chunk: the poll mode's delete read
	 * them through ix_outbox_due then, as it does at the end of every
	 * sweep. */
	h_rows_insert(1, 300);
	created_hours_ago(1, 20, 49);
	if (binlog) {
		db_conn *c = h_role_db("RELAY");

		ck_assert_int_eq(position_store(c, "0-1-300", 300), DB_OK);
		db_free(c);
	} else {
		h_sql("UPDATE outbox SET published_at = created_at");
	}
	h_sql("ANALYZE TABLE outbox");
	holder = h_db_hold("SET SESSION innodb_lock_wait_timeout = 30",
	    "SELECT COUNT(*) FROM outbox WHERE seq = 10 FOR UPDATE", &n);
	ck_assert_int_eq(n, 1);

	memset(&cfg, 0, sizeof(cfg));
	h_role_db_params("RELAY", &cfg.db);
	cfg.retention_hours = 48;
	cfg.retention_interval_s = 60;
	cfg.reconnect_max_ms = 1000;
	ck_assert_ptr_nonnull(p = retention_start(&cfg, binlog, &failed));
	ck_assert_msg(h_wait(10000, sweep_waiting, NULL), "the sweep never "
	    "waited for row 10");

	ck_assert_int_eq(db_exec(app, "SET SESSION innodb_lock_wait_timeout "
	    "= 2", NULL, 0, NULL), DB_OK);
	ck_assert_msg(db_exec(app, "INSERT INTO outbox (message_id, "
	    "event_name, payload, created_at) VALUES ('" H_ID_PREFIX
	    "000000000301', '" H_EVENT "', '{}', UTC_TIMESTAMP(6))", NULL, 0,
	    NULL) == DB_OK, "an insert waited for the sweep: %s",
	    db_error(app));

	db_rollback(holder);
	db_free(holder);
	ck_assert_msg(h_wait(10000, swept, NULL), "the sweep did not finish");
	pruner_free(p);
	ck_assert_int_eq(rows_left("seq > 20"), 281);
	db_free(app);
}
END_TEST

/* ---- the audit ---- */

/* The whole system empty, and seq from 1 again. */
static void
reset_all(void)
{
	h_reset();
	h_sql("TRUNCATE outbox");
}

START_TEST(audit_reads_the_binlog_position)
{
	static const char unpublished[] = "outbox rows unpublished";
	static const char late[] = "outbox rows unpublished longer than the "
	    "grace";
	static const char parked[] = "outbox rows parked (RELAY_MAX_ATTEMPTS "
	    "refusals)";
	db_conn *c = h_role_db("RELAY");
	struct h_daemon a = { 0 };

	/* 1..6 two hours old, published_at NULL as the binlog relay leaves
	 * it; 3 parked; the position at 5: 6 is not published. */
	h_rows_insert(1, 6);
	created_hours_ago(1, 6, 2);
	park(3);
	ck_assert_int_eq(position_store(c, "0-1-50", 5), DB_OK);
	db_free(c);

	ck_assert_int_eq(h_audit(&a, "audit-binlog", NULL), 1);
	ck_assert_msg(h_audit_says(&a, "info", unpublished, 2), "see %s",
	    a.log);
	ck_assert_msg(h_audit_says(&a, "FAIL", late, 2), "see %s", a.log);
	ck_assert(h_audit_says(&a, "FAIL", parked, 1));
	ck_assert(h_log_contains(&a, "binlog mode: position at seq 5, "
	    "stored "));

	/* Row 6 published (the position moved past it), 3 released: the
	 * audit passes. */
	h_sql("UPDATE outbox_relay_position SET last_seq = 6");
	h_sql("UPDATE outbox SET parked_at = NULL, next_attempt_at = NULL "
	    "WHERE seq = 3");
	ck_assert_int_eq(h_audit(&a, "audit-binlog-ok", NULL), 0);
	ck_assert_msg(h_audit_says(&a, "ok", late, 0), "see %s", a.log);
	ck_assert(h_audit_says(&a, "info", unpublished, 0));

	/* Without a position the same rows are the poll mode's:
	 * unpublished. */
	h_sql("DELETE FROM outbox_relay_position");
	ck_assert_int_eq(h_audit(&a, "audit-poll", NULL), 1);
	ck_assert(h_audit_says(&a, "FAIL", late, 6));
	ck_assert(!h_log_contains(&a, "binlog mode"));
}
END_TEST

Suite *
it_published_suite(void)
{
	const TTest *const backlog[] = { backlog_follows_the_mode,
	    backlog_step_sets_the_gauges,
	    backlog_sample_is_bounded_whatever_the_backlog, NULL };
	const TTest *const retention[] = {
	    retention_binlog_keeps_what_the_position_does_not_cover,
	    retention_binlog_keeps_a_margin_for_long_transactions,
	    retention_binlog_keeps_a_row_released_after_the_position, NULL };
	const TTest *const audit[] = { audit_reads_the_binlog_position,
	    NULL };
	Suite *s = suite_create("published");
	TCase *tc;

	suites_case(s, "backlog", 60, h_rows_reset, NULL, backlog);
	tc = suites_case(s, "retention", 60, h_rows_reset, NULL, retention);
	/* Both modes: 0 poll, 1 binlog. */
	tcase_add_loop_test(tc, retention_sweep_never_holds_back_an_insert, 0,
	    2);
	suites_case(s, "audit", 60, reset_all, NULL, audit);
	return s;
}
