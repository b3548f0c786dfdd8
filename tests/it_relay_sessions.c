/*
 * it_relay_sessions.c - the relay's database sessions over time, against
 * the real MariaDB and RabbitMQ:
 *   - connections the server closed while idle (wait_timeout) are opened
 *     again without a warning and without a readiness change;
 *   - the poll reads no row that waits for a later retry: its handler
 *     reads stay small with 100,000 such rows ahead of a due one (the
 *     relay's own poll_batch, run in a session of the test).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_relay.h"
#include "relay/outbatch.h"
#include "relay/poll.h"
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

Suite *
it_relay_sessions_suite(void)
{
	const TTest *const idle[] = {
	    idle_connections_closed_by_the_server_reopen_quietly, NULL };
	const TTest *const cost[] = { poll_reads_no_row_waiting_for_a_retry,
	    NULL };
	Suite *s = suite_create("relay");
	TCase *tc;

	tc = suites_case(s, "idle connections", 180, h_rows_reset, NULL,
	    idle);
	tcase_add_unchecked_fixture(tc, NULL, wait_timeout_default);
	suites_case(s, "poll cost", 180, h_rows_reset, NULL, cost);
	return s;
}
