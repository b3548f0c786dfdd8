/*
 * it_worker_handling.c - what outbox-worker does with the messages it
 * consumes, against the real MariaDB and RabbitMQ: each effect once and
 * the original's log line, the same message five times (in one batch and
 * across batches), a redelivery after a commit, and dead-lettering with
 * reasons (undecodable messages, an effect the database refuses).  Its
 * faults (kill -9, SIGTERM, outages) are in it_worker_faults.c.
 */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "harness_worker.h"
#include "suites.h"

Suite *it_worker_handling_suite(void);

/* The messages of the running test. */
static struct h_msgs M;

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

/* WORKER_BATCH_WAIT_MS lets a batch grow while the committer still holds
 * the one before; a lone message, with nothing else arriving and the
 * committer idle, is committed at once, not after the wait. */
START_TEST(lone_message_does_not_wait_for_a_batch)
{
	static const char *const env[] = { "WORKER_BATCH_WAIT_MS=10000",
		NULL };
	struct h_daemon w = { 0 };
	h_msgs_make(&M, 3, "lone", -1);
	H_START(&w, H_WORKER, NULL, env);
	h_msgs_publish(&M, 0, 1);
	ck_assert_msg(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 1,
	    5000), "a lone message waited out WORKER_BATCH_WAIT_MS");
	/* And again, once the worker has been idle. */
	h_msgs_publish(&M, 1, 2);
	ck_assert_msg(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 3,
	    5000), "the next ones waited out WORKER_BATCH_WAIT_MS");
	h_msgs_assert_exactly_once(&M);
	h_stop_clean(&w);
}
END_TEST

/* One batch's transaction waits on a row lock (a session of the test
 * holds the welcome mail of its message): the next batch commits
 * meanwhile, on the worker's second connection (WORKER_DB_POOL), and is
 * acked only after the one before it, in delivery order. */
START_TEST(batch_waiting_on_a_lock_does_not_hold_the_next)
{
	static const char *const env[] = { "WORKER_BATCH_WAIT_MS=500",
		NULL };
	struct h_daemon w = { 0 };
	long long ready, unacked;
	db_conn *lock;

	h_msgs_make(&M, 11, "pool", -1);
	lock = h_lock_customer(M.cid[0]);
	H_START(&w, H_WORKER, NULL, env);
	h_msgs_publish(&M, 0, 1);
	ck_assert_msg(h_wait_count(h_lock_wait_sql, 1, 30000),
	    "the worker never reached the locked row");
	h_msgs_publish(&M, 1, 10);
	ck_assert_msg(h_wait_count("SELECT COUNT(*) FROM processed_messages",
	    10, 10000), "the next batch waited for the locked one");
	/* Committed, but a multiple-ack would cover the first delivery. */
	ck_assert_int_eq(h_mq_counts(MQ_QUEUE, &ready, &unacked), 0);
	ck_assert_int_eq(ready, 0);
	ck_assert_int_eq(unacked, 11);
	ck_assert_int_eq(db_rollback(lock), DB_OK);
	db_free(lock);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM processed_messages", 11,
	    30000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	ck_assert_int_eq(h_log_count(&w, "Handling ["), 11);
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
	ck_assert_int_eq(h_msgs_welcomes(&M, 0), 0);
	ck_assert_int_eq(h_msgs_welcomes(&M, 1), 1);
	h_stop_clean(&w);
}
END_TEST

/* m's body i with its message id in upper case, in out (as text). */
static void
upper_twin(const struct h_msgs *m, size_t i, char *out, size_t outlen,
    char id[UID_LEN + 1])
{
	char *at;
	size_t k;

	for (k = 0; k <= UID_LEN; k++)
		id[k] = (char)toupper((unsigned char)m->id[i][k]);
	ck_assert_uint_lt(strlen(m->bodies[i]), outlen);
	snprintf(out, outlen, "%s", m->bodies[i]);
	at = strstr(out, m->id[i]);
	ck_assert_ptr_nonnull(at);
	memcpy(at, id, UID_LEN);
}

/* Message ids are UUIDs, which are the same in either case: an upper-case
 * twin of a processed message is a duplicate (it used to wedge the
 * worker: the table's case-insensitive key found it, the worker's
 * byte-wise comparison did not, and the insert failed for ever), and so
 * is a twin in the same batch. */
START_TEST(upper_case_twin_is_a_duplicate)
{
	struct h_daemon w = { 0 };
	char body[2][1024], id[2][UID_LEN + 1], dup[128];
	const char *bodies[2], *ids[2];

	h_msgs_make(&M, 4, "twin", -1);
	H_START(&w, H_WORKER, NULL, NULL);
	h_msgs_publish(&M, 0, 1);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 1,
	    30000));
	/* Its twin, then a normal message. */
	upper_twin(&M, 0, body[0], sizeof(body[0]), id[0]);
	bodies[0] = body[0];
	ids[0] = id[0];
	h_mq_publish(bodies, ids, 1);
	h_msgs_publish(&M, 1, 1);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 2,
	    30000));
	snprintf(dup, sizeof(dup), "Duplicate message %s [CustomerCreated]: "
	    "already processed", M.id[0]);
	ck_assert_msg(h_wait_log(&w, dup, 1, 30000), "the twin of %s is not "
	    "a duplicate (log %s)", M.id[0], w.log);
	h_mq_wait_drained(MQ_QUEUE, 30000);
	/* Both cases in one batch (published before the worker reads). */
	h_stop_clean(&w);
	upper_twin(&M, 2, body[1], sizeof(body[1]), id[1]);
	bodies[0] = M.bodies[2];
	ids[0] = M.ids[2];
	bodies[1] = body[1];
	ids[1] = id[1];
	h_mq_publish(bodies, ids, 2);
	h_msgs_publish(&M, 3, 1);
	H_START(&w, H_WORKER, NULL, NULL);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 4,
	    30000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM processed_messages "
	    "WHERE BINARY message_id <> LOWER(message_id)", NULL, 0), 0);
	h_stop_clean(&w);
}
END_TEST

/* ---- dead-lettering ---- */

/* The reason of the dead-lettered copy of body (fails if missing). */
static const char *
dlq_reason(const struct h_dlq_seen *s, const char *body)
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
	struct h_dlq_seen s;
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
	ck_assert_uint_eq(h_mq_collect(MQ_DLQ, 4, 30000, h_dlq_collect, &s), 4);
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
	struct h_dlq_seen s;
	struct h_daemon w = { 0 };

	/* A real refusal inside the batch's transaction, for one row. */
	h_poison_refused(1);
	h_msgs_make(&M, 30, "poison", 12);
	/* All 30 in one batch: published before the worker starts. */
	h_msgs_publish(&M, 0, M.n);
	H_START(&w, H_WORKER, NULL, NULL);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 29,
	    30000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_poison_refused(0);
	memset(&s, 0, sizeof(s));
	ck_assert_uint_eq(h_mq_collect(MQ_DLQ, 1, 30000, h_dlq_collect, &s), 1);
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

Suite *
it_worker_handling_suite(void)
{
	const TTest *const handling[] = { handles_and_logs_as_the_original,
	    same_message_five_times_in_one_batch,
	    same_message_five_times_across_batches,
	    redelivery_after_commit_is_a_duplicate,
	    upper_case_twin_is_a_duplicate,
	    lone_message_does_not_wait_for_a_batch,
	    batch_waiting_on_a_lock_does_not_hold_the_next, NULL };
	const TTest *const dlq[] = { undecodable_messages_are_dead_lettered,
	    refused_by_the_database_is_dead_lettered, NULL };
	Suite *s = suite_create("worker");

	suites_case(s, "handling", 120, h_reset, teardown, handling);
	suites_case(s, "dead-letters", 120, h_reset, teardown, dlq);
	return s;
}
