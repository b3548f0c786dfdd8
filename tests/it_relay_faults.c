/*
 * it_relay_faults.c - outbox-relay when things go wrong, against the real
 * MariaDB and RabbitMQ: the broker or the database stopped and started
 * again under a running relay, kill -9 in the middle of a drain (the
 * duplicates counted), and SIGTERM (the batches in flight finished,
 * and their marks made even when a lock held them back).
 * What it publishes when all goes well is in it_relay_publish.c.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>

#include "harness_relay.h"
#include "suites.h"

Suite *it_relay_faults_suite(void);

/* ---- outages ---- */

static const struct {
	const char *server;      /* as the relay's log lines name it */
	const char *stop, *start; /* scripts/infra.sh commands */
	const char *env;
	/* Rows inserted before the outage, while the server is down, and
	 * once it is back (none while the database is down: it cannot be
	 * written). */
	long long before, during, after;
} outages[] = {
	{ "broker", "mq-stop", "mq-start", "RELAY_RECONNECT_MAX_MS=1000", 10,
	    100, 0 },
	{ "database", "db-stop", "db-start", "RELAY_RECONNECT_MAX_MS=500", 5,
	    0, 20 },
};

/* A server stopped under a running relay: the rows wait, the same
 * process publishes them all once the server is back, and each reaches
 * the queue once (persistent messages in a durable queue survive a
 * restart of the broker). */
START_TEST(server_down_rows_wait_then_published)
{
	const char *env[2] = { outages[_i].env, NULL };
	long long before = outages[_i].before, during = outages[_i].during;
	long long after = outages[_i].after;
	struct h_daemon d = { 0 };
	char down[64], back[64];
	pid_t pid;

	snprintf(down, sizeof(down), "%s unavailable", outages[_i].server);
	snprintf(back, sizeof(back), "%s reachable again", outages[_i].server);
	H_START(&d, H_RELAY, outages[_i].server, env);
	pid = d.pid;
	h_rows_insert(1, before);
	h_rows_wait_published(before, 30000);
	ck_assert_int_eq(h_infra(outages[_i].stop), 0);
	if (during > 0)
		h_rows_insert(before + 1, during);
	ck_assert_msg(h_wait_log(&d, down, 1, 30000), "no \"%s\" (log %s)",
	    down, d.log);
	/* What was written while the server is down waits: nothing can be
	 * confirmed. */
	if (during > 0)
		ck_assert_int_eq(h_rows_unpublished(), during);
	ck_assert_int_eq(kill(pid, 0), 0);
	ck_assert_int_eq(h_infra(outages[_i].start), 0);
	if (after > 0)
		h_rows_insert(before + during + 1, after);
	h_rows_wait_all_published(60000);
	ck_assert_int_eq(d.pid, pid);
	ck_assert_int_eq(kill(pid, 0), 0);
	ck_assert_msg(h_wait_log(&d, back, 1, 30000), "no \"%s\" (log %s)",
	    back, d.log);
	ck_assert_int_eq(h_rows_check_queue(MQ_QUEUE, before + during + after),
	    0);
	h_stop_clean(&d);
}
END_TEST

/* After an outage test, whatever its outcome. */
static void
servers_up(void)
{
	h_infra("db-start");
	h_infra("mq-start");
}

/* ---- kill -9 ---- */

START_TEST(kill9_mid_drain_then_restart)
{
	static const char *const env[] = { "RELAY_BATCH_SIZE=1000",
	    "RELAY_INFLIGHT_BATCHES=3", NULL };
	enum { N = 20000 };
	struct h_daemon a = { 0 }, b = { 0 };
	long long dups, left;

	h_rows_insert(1, N);
	H_START(&a, H_RELAY, NULL, env);
	h_rows_wait_published(3000, 60000);
	h_daemon_kill9(&a);
	left = h_rows_unpublished();
	ck_assert_msg(left > 0, "drained before the kill: make N larger");
	H_START(&b, H_RELAY, "restarted", env);
	h_rows_wait_all_published(90000);
	h_stop_clean(&b);
	dups = h_rows_check_queue(MQ_QUEUE, N);
	fprintf(stderr, "kill -9 after %lld of %d rows published: %lld "
	    "duplicates reached the queue\n", N - left, N, dups);
	/* Only the batches in flight at the kill can come twice. */
	ck_assert_int_le(dups, 3 * 1000);
}
END_TEST

/* ---- SIGTERM ---- */

START_TEST(sigterm_finishes_batch_and_exits_zero)
{
	struct h_daemon d = { 0 };
	long long pub;

	h_rows_insert(1, 5000);
	H_START(&d, H_RELAY, NULL, NULL);
	ck_assert(h_wait_log(&d, "Published messages", 1, 60000));
	/* Exit 0 also means LeakSanitizer found nothing. */
	h_stop_clean(&d);
	/* The batches in flight were finished: every message in the queue
	 * is a row marked published, and the other way round. */
	pub = h_rows_published();
	ck_assert(pub > 0);
	ck_assert_int_eq(h_mq_depth(MQ_QUEUE), pub);
}
END_TEST

/* A mark that a lock holds back when SIGTERM comes: another session's
 * locking read in REPEATABLE READ (a report, an operator's SELECT ... FOR
 * UPDATE of the last published rows) holds the newest published entry of
 * ix_outbox_due and the gap before it, where every mark inserts its entry
 * (published_at descending, migration 014), so each mark waits out its
 * lock wait and fails.
 * The rows are confirmed: the relay marks them once the lock is gone,
 * within its stop budget, saying so; none is left to be published
 * again (_i 0).  A lock held past the budget (_i 1): the relay exits 0
 * all the same, saying how many rows the next start publishes again. */
START_TEST(sigterm_marks_confirmed_rows_a_lock_held_back)
{
	struct h_daemon d = { 0 };
	db_conn *holder;
	long long n = -1;

	/* A row published a minute ago (inside the retention), then the
	 * 2,000 to publish; the holder reads the newest published row, that
	 * one (its seq: 1). */
	h_sql("INSERT INTO outbox (message_id, event_name, payload, "
	    "created_at, published_at) VALUES ('" H_ID_PREFIX "000000002001', "
	    "'" H_EVENT "', '{}', UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE, "
	    "UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE)");
	h_rows_insert(1, 2000);
	holder = h_db_hold("SET SESSION tx_isolation = 'REPEATABLE-READ'",
	    "SELECT seq FROM outbox FORCE INDEX (ix_outbox_due) WHERE "
	    "published_at > '2000-01-01' ORDER BY published_at DESC LIMIT 1 "
	    "FOR UPDATE", &n);
	ck_assert_int_eq(n, 1);
	H_START(&d, H_RELAY, NULL, NULL);
	/* Every row published and confirmed, none marked, and the marks
	 * held back said. */
	h_mq_wait_depth(MQ_QUEUE, 2000);
	ck_assert_msg(h_wait_log(&d, "held back by locks", 1, 30000),
	    "no word of the marks held back (log %s)", d.log);
	ck_assert_int_eq(h_rows_published(), 1);
	kill(d.pid, SIGTERM);
	ck_assert_msg(h_wait_log(&d, "confirmed messages not marked "
	    "published yet", 1, 30000), "no word of the rows left unmarked "
	    "(log %s)", d.log);
	if (_i == 1) {
		ck_assert_msg(h_daemon_wait(&d, 30000) == 0, "no exit 0 "
		    "(log %s)", d.log);
		ck_assert(h_log_contains(&d, "stopped with 2000 confirmed "
		    "messages not marked published and 0 sent without a "
		    "confirm: the next start publishes them again"));
		ck_assert_int_eq(h_rows_published(), 1);
		db_rollback(holder);
		db_free(holder);
		return;
	}
	db_rollback(holder);
	db_free(holder);
	ck_assert_msg(h_daemon_wait(&d, 30000) == 0, "no exit 0 (log %s)",
	    d.log);
	ck_assert(h_log_contains(&d, "stopped"));
	ck_assert(!h_log_contains(&d, "stopped with"));
	ck_assert_int_eq(h_log_count(&d, "held back by locks"), 1);
	ck_assert_int_eq(h_rows_published(), 2001);
	ck_assert_int_eq(h_mq_depth(MQ_QUEUE), 2000);
}
END_TEST

Suite *
it_relay_faults_suite(void)
{
	const TTest *const crash[] = { kill9_mid_drain_then_restart, NULL };
	const TTest *const stop[] = { sigterm_finishes_batch_and_exits_zero,
	    NULL };
	Suite *s = suite_create("relay");
	TCase *out;

	out = suites_case(s, "outage", 180, h_rows_reset, NULL, NULL);
	tcase_add_unchecked_fixture(out, NULL, servers_up);
	tcase_add_loop_test(out, server_down_rows_wait_then_published, 0,
	    (int)(sizeof(outages) / sizeof(outages[0])));
	suites_case(s, "crash", 240, h_rows_reset, NULL, crash);
	out = suites_case(s, "shutdown", 120, h_rows_reset, NULL, stop);
	tcase_add_loop_test(out, sigterm_marks_confirmed_rows_a_lock_held_back,
	    0, 2);
	return s;
}
