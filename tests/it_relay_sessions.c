/*
 * it_relay_sessions.c - the relay's database sessions over time, against
 * the real MariaDB and RabbitMQ:
 *   - connections the server closed while idle (wait_timeout) are opened
 *     again without a warning and without a readiness change; a
 *     transaction after an idle second is not preceded by a ping, and
 *     one costs no statement of its own (no START TRANSACTION);
 *     statements between transactions commit at once;
 *   - the poll reads no row that waits for a later retry: its handler
 *     reads stay small with 100,000 such rows ahead of a due one (the
 *     relay's own poll_batch, run in a session of the test);
 *   - the poll and the retention stay out of each other's way: a poll's
 *     open transaction holds no lock the retention's next chunk needs,
 *     and a poll right after the retention deleted 20,000 rows (not yet
 *     purged) reads a few pages, not those rows' entries;
 *   - a relay frozen (SIGSTOP) while it holds rows: the server ends its
 *     session after idle_transaction_timeout, and another relay
 *     publishes those rows; the frozen one, woken, goes on without an
 *     error storm.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "harness_relay.h"
#include "relay/outbatch.h"
#include "relay/poll.h"
#include "relay/retention.h"
#include "relay/unmarked.h"
#include "suites.h"

Suite *it_relay_sessions_suite(void);

/* ---- idle connections ------------------------------------------------ */

static void
wait_timeout_default(void)
{
	h_sql("SET GLOBAL wait_timeout = 28800");
}

static int
relay_sessions(void)
{
	return (int)h_count("SELECT COUNT(*) FROM information_schema."
	    "PROCESSLIST WHERE USER = 'outbox_relay'", NULL, 0);
}

static int
idle_sessions_gone(void *ud)
{
	return relay_sessions() <= *(int *)ud;
}

/* The server closes the idle connections of a quiet relay (wait_timeout
 * 2 s); when work comes back, it goes on without a warning, a readiness
 * change or a reconnection counted. */
START_TEST(idle_connections_closed_by_the_server_reopen_quietly)
{
	static const char *const env[] = { "RELAY_BATCH_SIZE=100", NULL };
	struct h_daemon d = { 0 };
	int busy, fewer;

	h_sql("SET GLOBAL wait_timeout = 2");
	H_START(&d, H_RELAY, NULL, env);
	/* Every slot gets a connection. */
	h_rows_insert(1, 2000);
	h_rows_wait_all_published(60000);
	busy = relay_sessions();
	ck_assert_int_ge(busy, 2);
	fewer = busy - 2;
	ck_assert_msg(h_wait(30000, idle_sessions_gone, &fewer), "the server "
	    "kept the relay's idle connections (%d)", relay_sessions());
	h_rows_insert(2001, 2000);
	h_rows_wait_all_published(60000);
	ck_assert_msg(h_log_count(&d, "WARN") == 0, "a warning for idle "
	    "connections closed by the server (log %s)", d.log);
	ck_assert_int_eq(h_log_count(&d, "reachable again"), 0);
	h_stop_clean(&d);
}
END_TEST

/* A status counter of this session: COM_ADMIN_COMMANDS (its pings so
 * far: COM_PING counts as an admin command), QUESTIONS (the statements
 * it sent, prepared statements' executions included). */
static long long
session_status(db_conn *c, const char *name)
{
	struct db_val a = DB_STR(name);
	long long n = -1;

	ck_assert_int_eq(db_query(c, "SELECT VARIABLE_VALUE FROM "
	    "information_schema.SESSION_STATUS WHERE VARIABLE_NAME = ?", &a,
	    1, db_count_row, &n, NULL), DB_OK);
	return n;
}

static int
session_gone(void *ud)
{
	struct db_val a = DB_INT((long long)*(unsigned long *)ud);

	return h_count("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
	    "WHERE ID = ?", &a, 1) == 0;
}

/* Every daemon's transactions (db_begin): one after an idle second costs
 * no ping first (a round trip: before, each START TRANSACTION after a
 * quiet second paid one); one on a connection the server ended
 * meanwhile starts on a fresh connection, without an error. */
START_TEST(transaction_after_an_idle_second_needs_no_ping)
{
	struct db_params p;
	db_conn *c;
	long long before, until;
	unsigned long id;
	char kill[64];

	h_db_params(&p);
	c = db_new(&p);
	ck_assert_ptr_nonnull(c);
	before = session_status(c, "COM_ADMIN_COMMANDS");
	until = clock_ms() + 1500;
	ck_assert(h_wait(10000, h_clock_passed, &until));
	ck_assert_int_eq(db_begin(c), DB_OK);
	ck_assert_int_eq(db_rollback(c), DB_OK);
	/* The look itself (a query of its own) after no idle time. */
	ck_assert_int_eq(session_status(c, "COM_ADMIN_COMMANDS"), before);

	id = db_session_id(c);
	snprintf(kill, sizeof(kill), "KILL %lu", id);
	h_sql(kill);
	ck_assert(h_wait(10000, session_gone, &id));
	ck_assert_msg(db_begin(c) == DB_OK, "%s", db_error(c));
	/* The transaction's first statement, on the fresh connection. */
	ck_assert_msg(h_rows_insert_on(c, 1, 1) == 0, "%s", db_error(c));
	ck_assert_int_eq(db_commit(c), DB_OK);
	ck_assert(db_session_id(c) != id);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox", NULL, 0), 1);
	db_free(c);
}
END_TEST

/* A transaction costs the server no statement of its own: a START
 * TRANSACTION is a round trip before the first statement, in every
 * transaction of every daemon (the app's requests, the relay's batches,
 * the worker's).  Ten transactions of one insert each: ten inserts, ten
 * commits, and two statements more: the session's autocommit set off
 * before the first, and on again before the look that follows. */
START_TEST(transaction_costs_no_statement_of_its_own)
{
	struct db_params p;
	db_conn *c;
	long long q0, q1, i;

	h_db_params(&p);
	c = db_new(&p);
	ck_assert_ptr_nonnull(c);
	q0 = session_status(c, "QUESTIONS");
	for (i = 1; i <= 10; i++) {
		ck_assert_int_eq(db_begin(c), DB_OK);
		ck_assert_msg(h_rows_insert_on(c, i, 1) == 0, "%s",
		    db_error(c));
		ck_assert_int_eq(db_commit(c), DB_OK);
	}
	q1 = session_status(c, "QUESTIONS");
	/* The look itself counts once. */
	ck_assert_msg(q1 - q0 - 1 <= 22, "10 transactions of one insert "
	    "each: %lld statements", q1 - q0 - 1);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox", NULL, 0), 10);
	db_free(c);
}
END_TEST

/* Between transactions a statement commits at once, as outside of any
 * transaction; one that rolls back leaves nothing; a transaction with no
 * statement ends without one, whatever became of its connection. */
START_TEST(statements_between_transactions_commit_at_once)
{
	struct db_params p;
	db_conn *c;
	unsigned long id;
	char kill[64];

	h_db_params(&p);
	c = db_new(&p);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(db_begin(c), DB_OK);
	ck_assert_int_eq(h_rows_insert_on(c, 1, 1), 0);
	ck_assert_int_eq(db_commit(c), DB_OK);
	/* Outside a transaction: seen by another session at once. */
	ck_assert_int_eq(h_rows_insert_on(c, 2, 1), 0);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox", NULL, 0), 2);
	ck_assert_int_eq(db_begin(c), DB_OK);
	ck_assert_int_eq(h_rows_insert_on(c, 3, 1), 0);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox", NULL, 0), 2);
	ck_assert_int_eq(db_rollback(c), DB_OK);
	ck_assert_int_eq(h_rows_insert_on(c, 4, 1), 0);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE "
	    "message_id IN ('" H_ID_PREFIX "000000000002', '" H_ID_PREFIX
	    "000000000004')", NULL, 0), 2);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox", NULL, 0), 3);

	/* No statement: nothing to end, its connection gone or not. */
	id = db_session_id(c);
	ck_assert_int_eq(db_begin(c), DB_OK);
	snprintf(kill, sizeof(kill), "KILL %lu", id);
	h_sql(kill);
	ck_assert(h_wait(10000, session_gone, &id));
	ck_assert_int_eq(db_commit(c), DB_OK);
	ck_assert_int_eq(db_begin(c), DB_OK);
	ck_assert_int_eq(db_rollback(c), DB_OK);
	/* The next statement on a fresh connection, committed at once. */
	ck_assert_int_eq(h_rows_insert_on(c, 5, 1), 0);
	ck_assert(db_session_id(c) != id);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox", NULL, 0), 4);
	db_free(c);
}
END_TEST

/* ---- the poll's cost ------------------------------------------------- */

struct reads_ud {
	long long sum;
};

static int
reads_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct reads_ud *u = ud;

	if (ncols == 2 && !cols[1].is_null)
		u->sum += strtoll(cols[1].s, NULL, 10);
	return 0;
}

/* Handler reads of the session of c so far. */
static long long
handler_reads(db_conn *c)
{
	struct reads_ud u = { 0 };

	ck_assert_int_eq(db_query(c, "SHOW SESSION STATUS LIKE "
	    "'Handler_read%'", NULL, 0, reads_row, &u, NULL), DB_OK);
	return u.sum;
}

START_TEST(poll_reads_no_row_waiting_for_a_retry)
{
	struct h_daemon d = { 0 };
	struct db_params p;
	struct unmarked none;
	struct outbatch b;
	long long r0, r1, r2, cost;
	db_conn *c;

	h_rows_insert(1, 100000);
	h_sql("UPDATE outbox SET attempts = 1, last_error = 'test', "
	    "next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR");
	h_rows_insert(100001, 1);

	/* The relay's own poll, in a session of the relay's login. */
	h_role_db_params("RELAY", &p);
	ck_assert_ptr_nonnull(c = db_new(&p));
	poll_session(c, 30);
	ck_assert_int_eq(unmarked_init(&none, 16), 0);
	ck_assert_int_eq(outbatch_init(&b, 500), 0);
	r0 = handler_reads(c);
	r1 = handler_reads(c);
	ck_assert_int_eq(poll_batch(c, 500, &none, &b), DB_OK);
	r2 = handler_reads(c);
	db_rollback(c);
	/* What one SHOW costs, taken out. */
	cost = (r2 - r1) - (r1 - r0);
	fprintf(stderr, "poll with 100,000 rows waiting for a retry: %lld "
	    "handler reads, %zu row(s)\n", cost, b.n);
	ck_assert_int_eq(b.n, 1);
	ck_assert_str_eq(b.rows[0].id, H_ID_PREFIX "000000100001");
	ck_assert_msg(cost < 100, "the poll read %lld rows to find one due "
	    "row", cost);
	outbatch_free(&b);
	unmarked_free(&none);
	db_free(c);

	/* And the relay publishes it. */
	H_START(&d, H_RELAY, NULL, NULL);
	h_rows_wait_published(1, 30000);
	h_stop_clean(&d);
}
END_TEST

/* ---- the poll beside the retention ---------------------------------- */

/* count rows published hours ago (the oldest first), then one fresh row:
 * ix_outbox_due holds the fresh row's entry right before the published
 * ones, the oldest of them next to it when that index sorts NULL first.
 * Inserted published, not marked: a mark leaves a delete-marked entry
 * among the unpublished ones until the purge removes it, which the poll
 * would step over too. */
static void
rows_published_long_ago(long long count, int hours)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "INSERT INTO outbox (message_id, "
	    "event_name, payload, created_at, published_at) SELECT CONCAT('"
	    H_ID_PREFIX "', LPAD(seq, 12, '0')), '" H_EVENT "', '{}', "
	    "UTC_TIMESTAMP(6) - INTERVAL %d HOUR, UTC_TIMESTAMP(6) - INTERVAL "
	    "%d HOUR FROM seq_1_to_1000000 WHERE seq <= %lld", hours, hours,
	    count);
	h_sql(sql);
	h_rows_insert(count + 1, 1);
}

/* A session of the relay's login as its retention has it (pruner.c),
 * waiting 1 s at most for a row lock. */
static db_conn *
retention_session(void)
{
	db_conn *c = h_role_db("RELAY");

	ck_assert_int_eq(db_exec(c, "SET SESSION tx_isolation = "
	    "'READ-COMMITTED', SESSION innodb_lock_wait_timeout = 1", NULL, 0,
	    NULL), DB_OK);
	return c;
}

/* The relay's poll in a session of its login, its transaction left
 * open; the one fresh row read. */
static db_conn *
poll_open(struct unmarked *none, struct outbatch *b)
{
	struct db_params p;
	db_conn *c;

	h_role_db_params("RELAY", &p);
	ck_assert_ptr_nonnull(c = db_new(&p));
	poll_session(c, 30);
	ck_assert_int_eq(unmarked_init(none, 16), 0);
	ck_assert_int_eq(outbatch_init(b, 500), 0);
	ck_assert_int_eq(poll_batch(c, 500, none, b), DB_OK);
	ck_assert_int_eq(b->n, 1);
	return c;
}

static void
poll_close(db_conn *c, struct unmarked *none, struct outbatch *b)
{
	db_rollback(c);
	outbatch_free(b);
	unmarked_free(none);
	db_free(c);
}

/* The retention's chunk while a poll's transaction is open (the relay
 * publishing its batch): the poll's scan of the unpublished rows ends at
 * the next entry of ix_outbox_due.  Sorted NULL first, that entry was
 * the oldest published row, which the poll kept locked until its commit,
 * and which is the retention's next row to delete: the chunk waited for
 * every batch (about 400 waits in a 30 s run of make bench with
 * history). */
START_TEST(retention_not_held_back_by_an_open_poll)
{
	struct unmarked none;
	struct outbatch b;
	db_conn *c, *r;
	uint64_t n = 0;
	long long t0;
	int rc;

	rows_published_long_ago(1000, 100);
	c = poll_open(&none, &b);
	r = retention_session();
	t0 = clock_ms();
	rc = retention_chunk(0, r, 24, &n);
	ck_assert_msg(rc == DB_OK, "the retention's chunk beside an open "
	    "poll failed after %lld ms: %s", clock_ms() - t0, db_error(r));
	ck_assert_int_eq(n, CHUNKDEL_ROWS);
	db_free(r);
	poll_close(c, &none, &b);
}
END_TEST

/* Pages the server has read in its buffer pool so far (every session). */
static long long
page_reads(void)
{
	return h_count("SELECT VARIABLE_VALUE FROM information_schema."
	    "GLOBAL_STATUS WHERE VARIABLE_NAME = "
	    "'INNODB_BUFFER_POOL_READ_REQUESTS'", NULL, 0);
}

/* A poll right after the retention deleted the oldest published rows,
 * before they are purged (a read view holds the purge back, as a busy
 * server's purge lags behind a sweep): a locking read steps over every
 * delete-marked entry on its way, a look into the primary key for each.
 * Sorted NULL first, those entries came right after the unpublished
 * ones, and every poll read them all (3,000 to 7,000 pages a poll in
 * make bench with history, against 2 without). */
START_TEST(poll_reads_few_pages_past_the_retentions_deletes)
{
	struct unmarked none;
	struct outbatch b;
	db_conn *hold, *c, *r;
	long long n = 0, p0, p1, p2, cost;
	uint64_t k, deleted = 0;

	rows_published_long_ago(20000, 100);
	hold = h_db_hold("SET SESSION tx_isolation = 'REPEATABLE-READ'",
	    "SELECT COUNT(*) FROM outbox", &n);
	ck_assert_int_eq(n, 20001);
	r = retention_session();
	do {
		k = 0;
		ck_assert_msg(retention_chunk(0, r, 24, &k) == DB_OK,
		    "retention: %s", db_error(r));
		deleted += k;
	} while (k >= CHUNKDEL_ROWS);
	db_free(r);
	ck_assert_int_eq(deleted, 20000);

	p0 = page_reads();
	p1 = page_reads();
	c = poll_open(&none, &b);
	p2 = page_reads();
	/* What one look at the counter costs, taken out. */
	cost = (p2 - p1) - (p1 - p0);
	fprintf(stderr, "poll past 20,000 deleted rows not purged yet: %lld "
	    "page reads\n", cost);
	ck_assert_msg(cost < 1000, "the poll read %lld pages past the "
	    "retention's 20,000 deleted rows", cost);
	poll_close(c, &none, &b);
	db_rollback(hold);
	db_free(hold);
}
END_TEST

/* ---- a frozen relay ------------------------------------------------- */

static int
relay_holds_rows(void *ud)
{
	(void)ud;
	return h_count("SELECT COUNT(*) FROM information_schema.INNODB_TRX t "
	    "JOIN information_schema.PROCESSLIST p ON p.ID = "
	    "t.trx_mysql_thread_id WHERE p.USER = 'outbox_relay' AND "
	    "t.trx_rows_locked > 0", NULL, 0) > 0;
}

/* Stops the relay at a moment it holds rows: after each batch it
 * publishes, SIGSTOP, then a look at the server's transactions (its view
 * of them is refreshed every 100 ms: up to 500 ms for it to show); when
 * none is open, SIGCONT and the next batch.  1 when frozen so. */
static int
freeze_holding_rows(struct h_daemon *d)
{
	int batch;

	for (batch = 1; batch <= 50; batch++) {
		if (!h_wait_log(d, "Published messages", batch, 30000))
			return 0;
		ck_assert_int_eq(kill(d->pid, SIGSTOP), 0);
		if (h_wait(500, relay_holds_rows, NULL))
			return 1;
		ck_assert_int_eq(kill(d->pid, SIGCONT), 0);
	}
	return 0;
}

/* A relay frozen while it holds rows keeps them locked until the server
 * ends its session (idle_transaction_timeout: RELAY_CONFIRM_TIMEOUT_MS +
 * DB_IO_TIMEOUT + 5 s, 10 s here); then the other relay publishes them.
 * Woken, the frozen one finds its sessions gone and goes on quietly. */
START_TEST(frozen_relay_rows_taken_over)
{
	static const char *const env[] = { "RELAY_CONFIRM_TIMEOUT_MS=2000",
	    "DB_IO_TIMEOUT=3", "RELAY_BATCH_SIZE=200",
	    "RELAY_RECONNECT_MAX_MS=500", NULL };
	enum { N = 30000 };
	struct h_daemon a = { 0 }, b = { 0 };
	long long t0, dups;

	h_rows_insert(1, N);
	H_START(&a, H_RELAY, "a", env);
	ck_assert_msg(freeze_holding_rows(&a), "relay a never held rows when "
	    "stopped");
	H_START(&b, H_RELAY, "b", env);
	t0 = clock_ms();
	h_rows_wait_all_published(60000);
	fprintf(stderr, "rows of a frozen relay published by the other "
	    "%lld ms after it started\n", clock_ms() - t0);
	ck_assert_int_eq(kill(a.pid, SIGCONT), 0);
	h_stop_clean(&b);
	h_stop_clean(&a);
	ck_assert_msg(h_log_count(&a, "WARN") <= 3, "relay a, woken, logged "
	    "%d warnings (log %s)", h_log_count(&a, "WARN"), a.log);
	dups = h_rows_check_queue(MQ_QUEUE, N);
	fprintf(stderr, "frozen relay: %lld duplicates reached the queue\n",
	    dups);
	/* At most the batches a had in flight. */
	ck_assert_int_le(dups, 4 * 200);
}
END_TEST

Suite *
it_relay_sessions_suite(void)
{
	const TTest *const idle[] = {
	    idle_connections_closed_by_the_server_reopen_quietly,
	    transaction_after_an_idle_second_needs_no_ping,
	    transaction_costs_no_statement_of_its_own,
	    statements_between_transactions_commit_at_once, NULL };
	const TTest *const cost[] = { poll_reads_no_row_waiting_for_a_retry,
	    retention_not_held_back_by_an_open_poll,
	    poll_reads_few_pages_past_the_retentions_deletes, NULL };
	const TTest *const frozen[] = { frozen_relay_rows_taken_over, NULL };
	Suite *s = suite_create("relay");
	TCase *tc;

	tc = suites_case(s, "idle connections", 180, h_rows_reset, NULL,
	    idle);
	tcase_add_unchecked_fixture(tc, NULL, wait_timeout_default);
	suites_case(s, "poll cost", 180, h_rows_reset, NULL, cost);
	suites_case(s, "frozen relay", 180, h_rows_reset, NULL, frozen);
	return s;
}
