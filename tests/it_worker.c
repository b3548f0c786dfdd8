/*
 * it_worker.c - integration tests of outbox-worker against the real
 * MariaDB and RabbitMQ: effects and the original's log line, duplicates,
 * kill -9 in the middle of a batch, dead-lettering, a message the
 * database refuses, database and broker outages, shutdown, bad config.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "harness_worker.h"

Suite *it_worker_suite(void);

/* The messages of the running test. */
static struct h_msgs M;

static void
setup(void)
{
	h_reset_tables();
	h_mq_reset_queues();
}

static void
teardown(void)
{
	h_msgs_free(&M);
}

/* ---- handling ---- */

START_TEST(handles_and_logs_as_the_original)
{
	static const char *const env[] = { "WORKER_BATCH_MAX=7", NULL };
	struct db_val a[4];
	struct h_daemon w = { 0 };
	char line[8192];
	size_t i;

	h_msgs_make(&M, 50, "handle", -1);
	H_START(&w, H_WORKER, NULL, env);
	h_msgs_publish(&M, 0, M.n);
	ck_assert_msg(h_wait_count("SELECT COUNT(*) FROM welcome_emails",
	    (long long)M.n, 60000), "not handled in 60 s");
	h_msgs_assert_exactly_once(&M);
	/* The lines follow the commit. */
	ck_assert(h_wait_log(&w, "Handling [", (int)M.n, 30000));
	for (i = 0; i < M.n; i++) {
		a[0] = DB_STR(M.cid[i]);
		a[1] = DB_STR(M.email[i]);
		a[2] = DB_STR("Worker Test");
		a[3] = DB_STR(M.id[i]);
		ck_assert_int_eq(h_count("SELECT COUNT(*) FROM welcome_emails "
		    "WHERE customer_id = ? AND email = ? AND name = ? AND "
		    "message_id = ? AND sent_at IS NULL", a, 4), 1);
		/* The original's line, with the payload as it came. */
		snprintf(line, sizeof(line), "Handling [CustomerCreated] - "
		    "Payload: '%s'", M.payload[i].data);
		ck_assert_msg(h_log_count(&w, line) == 1, "no line: %s", line);
	}
	ck_assert_int_eq(h_log_count(&w, "Handling ["), (int)M.n);
	/* Every message acked. */
	h_mq_wait_drained(MQ_QUEUE, 30000);
	/* Startup logged the configuration without the passwords. */
	ck_assert(h_log_contains(&w, "WORKER_BATCH_MAX=7"));
	ck_assert(h_log_contains(&w, "RABBITMQ_PASS=***"));
	ck_assert(!h_log_contains(&w, "123456"));
	h_stop_clean(&w);
}
END_TEST

START_TEST(same_message_five_times_in_one_batch)
{
	const char *bodies[5], *ids[5];
	struct h_daemon w = { 0 };
	char dup[128];
	int i;

	h_msgs_make(&M, 1, "five", -1);
	for (i = 0; i < 5; i++) {
		bodies[i] = M.bodies[0];
		ids[i] = M.ids[0];
	}
	/* Published before the worker starts: one batch holds all five. */
	h_mq_publish(bodies, ids, 5);
	H_START(&w, H_WORKER, NULL, NULL);
	snprintf(dup, sizeof(dup), "Duplicate message %s", M.id[0]);
	ck_assert_msg(h_wait_log(&w, dup, 4, 30000), "4 duplicates not logged");
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	ck_assert_int_eq(h_log_count(&w, "Handling ["), 1);
	ck_assert_int_eq(h_log_count(&w, dup), 4);
	h_stop_clean(&w);
}
END_TEST

START_TEST(same_message_five_times_across_batches)
{
	struct h_daemon w = { 0 };
	char dup[128];
	int i;

	h_msgs_make(&M, 1, "fiveapart", -1);
	H_START(&w, H_WORKER, NULL, NULL);
	snprintf(dup, sizeof(dup), "Duplicate message %s [CustomerCreated]: "
	    "already processed", M.id[0]);
	for (i = 0; i < 5; i++) {
		/* Each copy after the previous one was handled: every
		 * repeat meets processed_messages, not the batch. */
		h_msgs_publish(&M, 0, 1);
		ck_assert_msg(h_wait_log(&w, i == 0 ? "Handling [" : dup,
		    i == 0 ? 1 : i, 30000), "copy %d not handled", i + 1);
	}
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	ck_assert_int_eq(h_log_count(&w, "Handling ["), 1);
	ck_assert_int_eq(h_log_count(&w, dup), 4);
	h_stop_clean(&w);
}
END_TEST

/* A batch committed but not acked (the worker died in between) comes
 * back: it must be a duplicate, with no second effect. */
START_TEST(redelivery_after_commit_is_a_duplicate)
{
	struct db_val a[1];
	struct h_daemon w = { 0 };
	char dup[128];

	h_msgs_make(&M, 2, "redeliver", -1);
	a[0] = DB_STR(M.id[0]);
	ck_assert_int_eq(db_exec(h_db(), "INSERT INTO processed_messages "
	    "(message_id, event_name, processed_at) VALUES (?, "
	    "'CustomerCreated', UTC_TIMESTAMP(6))", a, 1, NULL), DB_OK);
	h_msgs_publish(&M, 0, 2);
	H_START(&w, H_WORKER, NULL, NULL);
	snprintf(dup, sizeof(dup), "Duplicate message %s [CustomerCreated]: "
	    "already processed", M.id[0]);
	ck_assert(h_wait_log(&w, dup, 1, 30000));
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 1,
	    30000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	a[0] = DB_STR(M.cid[0]);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM welcome_emails WHERE "
	    "customer_id = ?", a, 1), 0);
	a[0] = DB_STR(M.cid[1]);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM welcome_emails WHERE "
	    "customer_id = ?", a, 1), 1);
	h_stop_clean(&w);
}
END_TEST

/* ---- a batch blocked in the middle of its transaction ---- */

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

/* ---- dead-lettering ---- */

struct dlq_seen {
	int n;
	char body[8][512];
	char reason[8][256];
};

static void
dlq_collect(void *ud, const struct mq_delivery *d)
{
	struct dlq_seen *s = ud;

	if (s->n >= 8)
		return;
	snprintf(s->body[s->n], sizeof(s->body[0]), "%.*s", (int)d->len,
	    d->body);
	snprintf(s->reason[s->n], sizeof(s->reason[0]), "%s", d->reason);
	s->n++;
}

/* The reason of the dead-lettered copy of body (fails if missing). */
static const char *
dlq_reason(const struct dlq_seen *s, const char *body)
{
	int i;

	for (i = 0; i < s->n; i++) {
		if (strcmp(s->body[i], body) == 0)
			return s->reason[i];
	}
	ck_abort_msg("not dead-lettered: %s", body);
	return NULL;
}

START_TEST(undecodable_messages_are_dead_lettered)
{
	static const char malformed[] = "{\"id\": \"oops";
	static const char no_id[] = "{\"event_name\":\"CustomerCreated\","
	    "\"payload\":{\"id\":\"c0000000-0000-4000-8000-000000000001\","
	    "\"email\":\"a@b.io\",\"name\":\"N\"},\"is_processed\":false}";
	static const char unknown[] = "{\"id\":\"d0000000-0000-4000-8000-"
	    "000000000001\",\"event_name\":\"CustomerDeleted\",\"payload\":"
	    "{\"id\":\"c0000000-0000-4000-8000-000000000001\"},"
	    "\"is_processed\":false}";
	static const char no_email[] = "{\"id\":\"d0000000-0000-4000-8000-"
	    "000000000002\",\"event_name\":\"CustomerCreated\",\"payload\":"
	    "{\"id\":\"c0000000-0000-4000-8000-000000000001\",\"name\":\"N\"},"
	    "\"is_processed\":false}";
	const char *bad[4] = { malformed, no_id, unknown, no_email };
	struct dlq_seen s;
	struct h_daemon w = { 0 };

	h_msgs_make(&M, 20, "dlq", -1);
	H_START(&w, H_WORKER, NULL, NULL);
	/* The bad ones first: the good ones behind them must flow. */
	h_mq_publish(bad, NULL, 4);
	h_msgs_publish(&M, 0, M.n);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails",
	    (long long)M.n, 30000));
	h_msgs_assert_exactly_once(&M);
	h_mq_wait_drained(MQ_QUEUE, 30000);

	memset(&s, 0, sizeof(s));
	ck_assert_uint_eq(h_mq_collect(MQ_DLQ, 4, 30000, dlq_collect, &s), 4);
	ck_assert_ptr_nonnull(strstr(dlq_reason(&s, malformed),
	    "malformed JSON"));
	ck_assert_ptr_nonnull(strstr(dlq_reason(&s, no_id), "\"id\""));
	ck_assert_str_eq(dlq_reason(&s, unknown),
	    "no handler for event \"CustomerDeleted\"");
	ck_assert_ptr_nonnull(strstr(dlq_reason(&s, no_email), "\"email\""));
	/* Nothing else in the dead-letter queue. */
	ck_assert_int_eq(h_mq_depth(MQ_DLQ), 0);
	/* The original's two lines for each. */
	ck_assert_int_eq(h_log_count(&w, "Handle message error: "), 4);
	ck_assert_int_eq(h_log_count(&w, "ERR: "), 4);
	ck_assert(h_log_contains(&w, "Handle message error: {\"id\": "
	    "\"oops"));
	h_stop_clean(&w);
}
END_TEST

START_TEST(refused_by_the_database_is_dead_lettered)
{
	struct dlq_seen s;
	struct h_daemon w = { 0 };

	/* A real refusal inside the batch's transaction, for one row. */
	h_sql("DROP TRIGGER IF EXISTS test_welcome_poison");
	h_sql("CREATE TRIGGER test_welcome_poison BEFORE INSERT ON "
	    "welcome_emails FOR EACH ROW IF NEW.name = 'poison' THEN SIGNAL "
	    "SQLSTATE '45000' SET MESSAGE_TEXT = 'test: poison refused'; "
	    "END IF");
	h_msgs_make(&M, 30, "poison", 12);
	/* All 30 in one batch: published before the worker starts. */
	h_msgs_publish(&M, 0, M.n);
	H_START(&w, H_WORKER, NULL, NULL);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 29,
	    30000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_sql("DROP TRIGGER test_welcome_poison");
	memset(&s, 0, sizeof(s));
	ck_assert_uint_eq(h_mq_collect(MQ_DLQ, 1, 30000, dlq_collect, &s), 1);
	ck_assert_str_eq(s.body[0], M.bodies[12]);
	ck_assert_ptr_nonnull(strstr(s.reason[0], "database refused the "
	    "effect"));
	ck_assert_ptr_nonnull(strstr(s.reason[0], "poison refused"));
	/* The others: exactly once; the refused one: nothing at all. */
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM processed_messages",
	    NULL, 0), 29);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM welcome_emails WHERE "
	    "name = 'poison'", NULL, 0), 0);
	ck_assert(h_log_contains(&w, "one by one"));
	h_stop_clean(&w);
}
END_TEST

/* ---- outages ---- */

static void
setup_outage(void)
{
	/* A failed outage test may have left the database stopped. */
	ck_assert_int_eq(h_infra("db-start"), 0);
	setup();
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

/* ---- start and stop ---- */

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

struct bad_env {
	const char *env;
	const char *name;
};

static const struct bad_env bad_envs[] = {
	{ "WORKER_PREFETCH=lots", "WORKER_PREFETCH" },
	{ "WORKER_PREFETCH=0", "WORKER_PREFETCH" },
	{ "WORKER_BATCH_MAX=100000", "WORKER_BATCH_MAX" },
	{ "WORKER_BATCH_WAIT_MS=-5", "WORKER_BATCH_WAIT_MS" },
	{ "RABBITMQ_PORT=amqp", "RABBITMQ_PORT" },
	{ "DB_PORT=70000", "DB_PORT" },
	{ "LOG_LEVEL=chatty", "LOG_LEVEL" },
};

START_TEST(bad_config_refused)
{
	const struct bad_env *b = &bad_envs[_i];
	const char *env[2] = { b->env, NULL };
	struct h_daemon d = { 0 };
	char row[16];

	snprintf(row, sizeof(row), "%d", _i);
	h_spawn(&d, H_WORKER, __func__, row, env);
	ck_assert_int_eq(h_daemon_wait(&d, H_STOP_MS), 1);
	ck_assert_msg(h_log_contains(&d, b->name), "%s: the log does not name "
	    "it", b->env);
	ck_assert(!h_log_contains(&d, "consuming"));
}
END_TEST

Suite *
it_worker_suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("handling");
	TCase *out = tcase_create("outages");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, handles_and_logs_as_the_original);
	tcase_add_test(tc, same_message_five_times_in_one_batch);
	tcase_add_test(tc, same_message_five_times_across_batches);
	tcase_add_test(tc, redelivery_after_commit_is_a_duplicate);
	tcase_add_test(tc, kill9_mid_batch_then_restart);
	tcase_add_test(tc, sigterm_finishes_the_batch_in_flight);
	tcase_add_test(tc, undecodable_messages_are_dead_lettered);
	tcase_add_test(tc, refused_by_the_database_is_dead_lettered);
	tcase_add_test(tc, sigterm_when_idle_exits_0);
	tcase_add_loop_test(tc, bad_config_refused, 0,
	    (int)(sizeof(bad_envs) / sizeof(bad_envs[0])));
	suite_add_tcase(s, tc);

	tcase_set_timeout(out, 180);
	tcase_add_checked_fixture(out, setup_outage, teardown);
	tcase_add_test(out, database_down_nothing_acked_then_all_once);
	tcase_add_test(out, sigterm_while_database_down);
	tcase_add_test(out, connection_closed_mid_transaction);
	tcase_add_test(out, broker_restart_reconnects_and_resumes);
	suite_add_tcase(s, out);
	return s;
}
