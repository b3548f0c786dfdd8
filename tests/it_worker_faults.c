/*
 * it_worker_faults.c - outbox-worker when things go wrong, against the
 * real MariaDB and RabbitMQ: kill -9 in the middle of a batch's
 * transaction, slow transactions (the consumer must not spin meanwhile),
 * SIGTERM with a batch in flight and when idle, the
 * database down (nothing acked meanwhile, SIGTERM all the same), a broker
 * restart and a connection closed mid-transaction, a dead-letter copy
 * during a broker alarm.  What it does when all
 * goes well is in it_worker_handling.c.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "harness_worker.h"
#include "suites.h"

Suite *it_worker_faults_suite(void);

/* The messages of the running test. */
static struct h_msgs M;

static void
teardown(void)
{
	h_msgs_free(&M);
	/* held_batches_leave_the_cpu_idle's, however it ended. */
	h_sql("DROP TRIGGER IF EXISTS test_welcome_slow");
}

/* ---- a batch stopped in the middle of its transaction ---- */

/* h_lock_customer holds the row of one message's effect: the batch with
 * that message waits for the lock, halfway through its transaction. */

START_TEST(kill9_mid_batch_then_restart)
{
	struct h_daemon w = { 0 }, w2 = { 0 };
	db_conn *lock;

	h_msgs_make(&M, 600, "kill", -1);
	lock = h_lock_customer(M.cid[450]);
	h_msgs_publish(&M, 0, M.n);
	H_START(&w, H_WORKER, NULL, NULL);
	ck_assert_msg(h_wait_count(h_lock_wait_sql, 1, 30000),
	    "the worker never reached the locked row");
	/* Some batches committed, the one holding message 450 is in the
	 * middle of its transaction. */
	ck_assert_int_lt(h_count("SELECT COUNT(*) FROM processed_messages",
	    NULL, 0), (long long)M.n);
	h_daemon_kill9(&w);
	ck_assert_int_eq(db_rollback(lock), DB_OK);
	db_free(lock);

	H_START(&w2, H_WORKER, "restarted", NULL);
	ck_assert_msg(h_wait_count("SELECT COUNT(*) FROM processed_messages",
	    (long long)M.n, 60000), "not all handled after the restart");
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	h_stop_clean(&w2);
}
END_TEST

START_TEST(sigterm_finishes_the_batch_in_flight)
{
	static const char *const env[] = { "WORKER_BATCH_MAX=50", NULL };
	struct h_daemon w = { 0 }, w2 = { 0 };
	long long done, ready, unacked;
	struct db_val a[1];
	db_conn *lock;

	h_msgs_make(&M, 400, "term", -1);
	lock = h_lock_customer(M.cid[120]);
	h_msgs_publish(&M, 0, M.n);
	H_START(&w, H_WORKER, NULL, env);
	ck_assert(h_wait_count(h_lock_wait_sql, 1, 30000));
	kill(w.pid, SIGTERM);
	/* The batch goes on once the lock is gone: it commits and is
	 * acked, then the worker exits without taking more. */
	ck_assert_int_eq(db_rollback(lock), DB_OK);
	db_free(lock);
	ck_assert_int_eq(h_daemon_wait(&w, H_STOP_MS), 0);
	ck_assert(h_log_contains(&w, "stopped"));
	ck_assert(!h_log_contains(&w, "AddressSanitizer"));
	a[0] = DB_STR(M.cid[120]);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM welcome_emails WHERE "
	    "customer_id = ? AND name = 'Worker Test'", a, 1), 1);
	done = h_count("SELECT COUNT(*) FROM processed_messages", NULL, 0);
	ck_assert_int_lt(done, (long long)M.n);
	/* The rest is back in the queue, none lost or acked unhandled. */
	ck_assert_int_eq(h_mq_counts(MQ_QUEUE, &ready, &unacked), 0);
	ck_assert_int_eq(unacked, 0);
	ck_assert_int_eq(ready, (long long)M.n - done);

	H_START(&w2, H_WORKER, "restarted", NULL);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM processed_messages",
	    (long long)M.n, 60000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	h_stop_clean(&w2);
}
END_TEST

/* The CPU time (user and system, in clock ticks) of process pid so
 * far. */
static long long
cpu_ticks(pid_t pid)
{
	char path[64];
	long long ut = -1, st = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	/* The command name (field 2) has no space here: outbox-worker. */
	ck_assert_int_eq(fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u "
	    "%*u %*u %*u %lld %lld", &ut, &st), 2);
	fclose(f);
	return ut + st;
}

/* While a committer holds a batch and nothing else has come, the
 * consumer waits for the broker and for the committer without spinning.
 * Each effect takes 20 ms (a trigger sleeps); the messages come one at a
 * time, each published once the one before it was handled: the worker
 * holds 30 batches of 20 ms or more with a committer free and nothing to
 * collect, and spends less than 30% of those 600 ms on the CPU (a
 * consumer that polls its committers in a busy loop spends most of
 * them). */
START_TEST(held_batches_leave_the_cpu_idle)
{
	enum { N = 30, SLOW_MS = 20 };
	static const char *const env[] = { "WORKER_BATCH_MAX=1",
	    "WORKER_DB_POOL=2", NULL };
	struct h_daemon w = { 0 };
	long long c0, c1, cpu_ms, hz = sysconf(_SC_CLK_TCK);
	size_t i;

	h_sql("DROP TRIGGER IF EXISTS test_welcome_slow");
	h_sql("CREATE TRIGGER test_welcome_slow BEFORE INSERT ON "
	    "welcome_emails FOR EACH ROW SET @test_slow = SLEEP(0.02)");
	h_msgs_make(&M, N, "idle", -1);
	H_START(&w, H_WORKER, NULL, env);
	c0 = cpu_ticks(w.pid);
	for (i = 0; i < N; i++) {
		h_msgs_publish(&M, i, 1);
		ck_assert(h_wait_count("SELECT COUNT(*) FROM "
		    "processed_messages", (long long)i + 1, 30000));
	}
	c1 = cpu_ticks(w.pid);
	h_sql("DROP TRIGGER IF EXISTS test_welcome_slow");
	cpu_ms = (c1 - c0) * 1000 / hz;
	fprintf(stderr, "worker: %lld ms of CPU while it held %d batches of "
	    "%d ms or more\n", cpu_ms, N, SLOW_MS);
	ck_assert_msg(cpu_ms * 10 < N * SLOW_MS * 3, "the worker spent %lld "
	    "ms of CPU while it held %d batches of %d ms or more", cpu_ms, N,
	    SLOW_MS);
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	h_stop_clean(&w);
}
END_TEST

/* ---- outages ---- */

static void
setup_outage(void)
{
	/* A failed outage test may have left the database stopped. */
	ck_assert_int_eq(h_infra("db-start"), 0);
	h_reset();
}

START_TEST(database_down_nothing_acked_then_all_once)
{
	static const char *const env[] = { "LOG_LEVEL=debug",
	    "WORKER_RETRY_MAX_MS=500", NULL };
	long long ready, unacked;
	struct h_daemon w = { 0 };
	pid_t pid;

	h_msgs_make(&M, 300, "dbdown", -1);
	H_START(&w, H_WORKER, NULL, env);
	pid = w.pid;
	ck_assert_int_eq(h_infra("db-stop"), 0);
	h_msgs_publish(&M, 0, M.n);
	ck_assert(h_wait_log(&w, "database unavailable", 1, 30000));
	/* Several retries later, still nothing acked: every message is
	 * either held by the worker or still ready. */
	ck_assert(h_wait_log(&w, "database still unavailable", 3, 30000));
	ck_assert_int_eq(h_mq_counts(MQ_QUEUE, &ready, &unacked), 0);
	ck_assert_int_eq(ready + unacked, (long long)M.n);
	ck_assert_int_gt(unacked, 0);
	ck_assert(h_wait_log(&w, "database still unavailable", 6, 30000));
	ck_assert_int_eq(h_mq_counts(MQ_QUEUE, &ready, &unacked), 0);
	ck_assert_int_eq(ready + unacked, (long long)M.n);
	/* One warning for the outage, not one per retry. */
	ck_assert_int_eq(h_log_count(&w, "WARN: database unavailable"), 1);

	ck_assert_int_eq(h_infra("db-start"), 0);
	ck_assert_msg(h_wait_count("SELECT COUNT(*) FROM processed_messages",
	    (long long)M.n, 60000), "not handled after the database came "
	    "back");
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	ck_assert_int_eq(w.pid, pid);
	ck_assert_int_eq(kill(pid, 0), 0);
	ck_assert(h_log_contains(&w, "database reachable again"));
	h_stop_clean(&w);
}
END_TEST

START_TEST(sigterm_while_database_down)
{
	static const char *const env[] = { "WORKER_RETRY_MAX_MS=500", NULL };
	long long ready, unacked, t0;
	struct h_daemon w = { 0 };

	h_msgs_make(&M, 50, "termdown", -1);
	H_START(&w, H_WORKER, NULL, env);
	ck_assert_int_eq(h_infra("db-stop"), 0);
	h_msgs_publish(&M, 0, M.n);
	ck_assert(h_wait_log(&w, "database unavailable", 1, 30000));
	/* Rolled back, left unacked, exit 0: without waiting for the
	 * database to come back (it does not, within the deadline). */
	t0 = clock_ms();
	ck_assert_int_eq(h_daemon_stop(&w, H_STOP_MS), 0);
	fprintf(stderr, "worker: SIGTERM with the database down: exit 0 "
	    "after %lld ms\n", clock_ms() - t0);
	ck_assert(h_log_contains(&w, "left unacknowledged (its transaction "
	    "rolled back)"));
	ck_assert(!h_log_contains(&w, "AddressSanitizer"));
	ck_assert_int_eq(h_infra("db-start"), 0);
	ck_assert_int_eq(h_mq_counts(MQ_QUEUE, &ready, &unacked), 0);
	ck_assert_int_eq(ready, (long long)M.n);
	ck_assert_int_eq(unacked, 0);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM processed_messages",
	    NULL, 0), 0);
}
END_TEST

START_TEST(broker_restart_reconnects_and_resumes)
{
	static const char *const env[] = { "WORKER_RETRY_MAX_MS=1000", NULL };
	struct h_daemon w = { 0 };
	pid_t pid;

	h_msgs_make(&M, 40, "mqdown", -1);
	H_START(&w, H_WORKER, NULL, env);
	pid = w.pid;
	h_msgs_publish(&M, 0, 20);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM processed_messages", 20,
	    30000));
	ck_assert_int_eq(h_infra("mq-stop"), 0);
	ck_assert(h_wait_log(&w, "broker connection lost", 1, 30000));
	ck_assert_int_eq(h_infra("mq-start"), 0);
	ck_assert(h_wait_log(&w, "broker reachable again", 1, 60000));
	/* The queue survived the restart (durable) and flows again. */
	h_msgs_publish(&M, 20, 20);
	ck_assert_msg(h_wait_count("SELECT COUNT(*) FROM processed_messages",
	    (long long)M.n, 60000), "not handled after the broker restart");
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	ck_assert_int_eq(w.pid, pid);
	ck_assert_int_eq(h_log_count(&w, "WARN: broker connection lost"), 1);
	h_stop_clean(&w);
}
END_TEST

static int
prefetch_full(void *ud)
{
	long long ready, unacked;

	(void)ud;
	return h_mq_counts(MQ_QUEUE, &ready, &unacked) == 0 &&
	    unacked >= 500;
}

/* The broker closes the worker's connection while one batch is in its
 * transaction and the next one waits: the transaction still ends, both
 * batches come back, and every effect happens once. */
START_TEST(connection_closed_mid_transaction)
{
	static const char *const env[] = { "WORKER_RETRY_MAX_MS=500", NULL };
	struct h_daemon w = { 0 };
	db_conn *lock;
	pid_t pid;

	h_msgs_make(&M, 1000, "mqclose", -1);
	lock = h_lock_customer(M.cid[450]);
	h_msgs_publish(&M, 0, M.n);
	H_START(&w, H_WORKER, NULL, env);
	pid = w.pid;
	ck_assert(h_wait_count(h_lock_wait_sql, 1, 30000));
	/* The prefetch window is full: a batch at the committer, the next
	 * one collected and waiting for it. */
	ck_assert(h_wait(30000, prefetch_full, NULL));
	ck_assert_int_eq(h_mq_ctl("close_all_connections 'test: closed'",
	    NULL, 0), 0);
	ck_assert_int_eq(db_rollback(lock), DB_OK);
	db_free(lock);
	ck_assert(h_wait_log(&w, "broker connection lost", 1, 30000));
	ck_assert_msg(h_wait_count("SELECT COUNT(*) FROM processed_messages",
	    (long long)M.n, 60000), "not all handled after the reconnect");
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	ck_assert_int_eq(w.pid, pid);
	ck_assert(h_log_contains(&w, "broker reachable again"));
	h_stop_clean(&w);
}
END_TEST

/* ---- SIGTERM when idle ---- */

START_TEST(sigterm_when_idle_exits_0)
{
	struct h_daemon w = { 0 };
	long long t0;

	H_START(&w, H_WORKER, NULL, NULL);
	t0 = clock_ms();
	h_stop_clean(&w);
	fprintf(stderr, "worker: idle SIGTERM: exit 0 after %lld ms\n",
	    clock_ms() - t0);
}
END_TEST

/* ---- a broker alarm ---- */

static void
alarm_clear(void)
{
	(void)h_mq_ctl("set_disk_free_limit 50MB", NULL, 0);
}

/* The copy of a message the worker cannot handle goes to outbox.dlx, a
 * publish: under a disk alarm the broker stops reading it.  The worker
 * gives up on the copy within its deadline (the queue's own
 * dead-lettering takes the message), handles the messages behind it,
 * and stops on SIGTERM within 15 s.  The copy is 16 MiB, more than the
 * socket buffers hold, so that a write without a deadline would wait for
 * the alarm's end. */
START_TEST(dead_letter_copy_during_a_broker_alarm)
{
	enum { BIG = 16 << 20 };
	struct h_daemon w = { 0 };
	const char *bodies[1];
	char *big;
	long long t0;
	int st;

	big = malloc(BIG + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', BIG);
	big[0] = '{';
	big[BIG] = '\0';
	bodies[0] = big;
	h_msgs_make(&M, 10, "alarm", -1);
	h_mq_publish(bodies, NULL, 1);
	free(big);
	h_msgs_publish(&M, 0, M.n);
	h_mq_disk_alarm(1);
	H_START(&w, H_WORKER, NULL, NULL);
	ck_assert_msg(h_wait_count("SELECT COUNT(*) FROM welcome_emails",
	    (long long)M.n, 30000), "the messages behind the one to "
	    "dead-letter were not handled during the alarm (log %s)", w.log);
	h_msgs_assert_exactly_once(&M);
	t0 = clock_ms();
	st = h_daemon_stop(&w, 15000);
	ck_assert_msg(st == 0, "SIGTERM under a broker alarm: status %d after "
	    "%lld ms (log %s)", st, clock_ms() - t0, w.log);
	h_mq_disk_alarm(0);
	/* The queue dead-lettered it (no copy of the worker's). */
	h_mq_wait_drained(MQ_QUEUE, 30000);
	ck_assert_int_eq(h_mq_depth(MQ_DLQ), 1);
}
END_TEST

Suite *
it_worker_faults_suite(void)
{
	const TTest *const stop[] = { kill9_mid_batch_then_restart,
	    held_batches_leave_the_cpu_idle,
	    sigterm_finishes_the_batch_in_flight, sigterm_when_idle_exits_0,
	    NULL };
	const TTest *const outages[] = {
	    database_down_nothing_acked_then_all_once,
	    sigterm_while_database_down, connection_closed_mid_transaction,
	    broker_restart_reconnects_and_resumes, NULL };
	const TTest *const alarm[] = { dead_letter_copy_during_a_broker_alarm,
	    NULL };
	Suite *s = suite_create("worker");
	TCase *tc;

	suites_case(s, "kill and stop", 120, h_reset, teardown, stop);
	suites_case(s, "outages", 180, setup_outage, teardown, outages);
	tc = suites_case(s, "broker alarm", 120, h_reset, teardown, alarm);
	tcase_add_unchecked_fixture(tc, NULL, alarm_clear);
	return s;
}
