/*
 * it_worker_retention.c - the worker's inbox retention against the real
 * MariaDB and RabbitMQ (README, "Inbox retention"): processed ids past
 * WORKER_PROCESSED_RETENTION_HOURS are deleted, never one inside it, and
 * faster than a sustained stream of messages adds new ones; a database
 * that refuses writes during a sweep is one warning, then the sweep goes
 * on; a message older than the retention minus 1 h (by its version-7 id,
 * or by its AMQP timestamp) is dead-lettered with its reason and has no
 * effect, one just younger is applied; outbox-audit reads the same
 * setting.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "clock.h"
#include "harness_worker.h"
#include "suites.h"
#include "testuid.h"

Suite *it_worker_retention_suite(void);

#define HOUR_MS (3600 * 1000LL)

/* The messages of the running test. */
static struct h_msgs M;

static void
teardown(void)
{
	h_msgs_free(&M);
}

/* Unchecked teardown: a failed test may have left the server read-only. */
static void
writes_allowed(void)
{
	h_sql("SET GLOBAL read_only = 0");
}

/* n processed ids "<prefix>-<k>", processed_at `age` ago (an SQL
 * interval, e.g. "48 HOUR"). */
static void
seed_ids(const char *prefix, long n, const char *age)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "INSERT INTO processed_messages "
	    "(message_id, event_name, processed_at) SELECT CONCAT('%s-', "
	    "seq), 'CustomerCreated', UTC_TIMESTAMP(6) - INTERVAL %s FROM "
	    "seq_1_to_%ld", prefix, age, n);
	h_sql(sql);
}

static long long
ids_like(const char *prefix)
{
	char pat[64];
	struct db_val a[1];

	snprintf(pat, sizeof(pat), "%s-%%", prefix);
	a[0] = DB_STR(pat);
	return h_count("SELECT COUNT(*) FROM processed_messages WHERE "
	    "message_id LIKE ?", a, 1);
}

static int
old_gone(void *ud)
{
	return ids_like(ud) == 0;
}

/* A worker with a metrics listener on a free port (*port) and env. */
static void
start_worker(struct h_daemon *w, const char *test, int *port,
    const char *const *env)
{
	static char port_env[40];
	const char *all[16];
	int i, j = 0;

	*port = h_free_port();
	snprintf(port_env, sizeof(port_env), "WORKER_METRICS_PORT=%d", *port);
	all[j++] = port_env;
	all[j++] = "WORKER_METRICS_BIND=127.0.0.1";
	for (i = 0; env[i] != NULL && j < 15; i++)
		all[j++] = env[i];
	all[j] = NULL;
	h_start(w, H_WORKER, test, NULL, all);
}

/* ---- pruning ---- */

/* 1,700 ids well past 24 h (eighteen chunks: seventeen whole, one
 * short), two just past it by a minute; two just inside it by five
 * minutes, ten fresh: the first 1,702 go, exactly the other 12 stay. */
START_TEST(deletes_only_ids_past_the_retention)
{
	static const char *const env[] = {
	    "WORKER_PROCESSED_RETENTION_HOURS=24",
	    "WORKER_PROCESSED_RETENTION_INTERVAL=1", NULL };
	struct h_daemon w = { 0 };
	int port;

	seed_ids("old", 1700, "48 HOUR");
	seed_ids("out", 2, "1441 MINUTE");
	seed_ids("in", 2, "1435 MINUTE");
	seed_ids("new", 10, "0 SECOND");
	start_worker(&w, __func__, &port, env);
	ck_assert_msg(h_wait(60000, old_gone, "old"), "%lld old ids left",
	    ids_like("old"));
	ck_assert(h_wait(30000, old_gone, "out"));
	ck_assert(h_wait_log(&w, "pruned 1702 processed ids older than 24 h",
	    1, 30000));
	ck_assert_int_eq(ids_like("in"), 2);
	ck_assert_int_eq(ids_like("new"), 10);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM processed_messages",
	    NULL, 0), 12);
	ck_assert(h_metric(port, "outbox_worker_processed_pruned_total") ==
	    1702);
	h_stop_clean(&w);
	ck_assert_int_eq(h_log_count(&w, "WARN"), 0);
}
END_TEST

/* 50,000 old ids while messages flow through the worker: every old id is
 * gone within the deadline, every new one is there, each effect once. */
START_TEST(keeps_up_with_a_sustained_rate)
{
	static const char *const env[] = {
	    "WORKER_PROCESSED_RETENTION_HOURS=24", NULL };
	struct h_daemon w = { 0 };
	long long t0, left;
	size_t sent = 0;
	int port;

	seed_ids("old", 50000, "25 HOUR");
	h_msgs_make(&M, H_MAXMSG, "rate", -1);
	t0 = clock_ms();
	start_worker(&w, __func__, &port, env);
	/* 100 messages every 50 ms (2,000/s offered) until the old ids
	 * are gone, at most all of them. */
	while (sent < M.n && ids_like("old") > 0) {
		h_msgs_publish(&M, sent, 100);
		sent += 100;
		backoff_sleep(50, NULL);
	}
	ck_assert_msg(h_wait(120000, old_gone, "old"), "%lld old ids left",
	    ids_like("old"));
	left = clock_ms() - t0;
	fprintf(stderr, "worker: 50,000 old processed ids deleted in %lld ms "
	    "while %zu messages went through\n", left, sent);
	ck_assert_uint_gt(sent, 0);
	/* Counted after the statement that deleted them. */
	h_wait_metric(port, "outbox_worker_processed_pruned_total", 50000,
	    30000);
	ck_assert(h_metric(port, "outbox_worker_processed_pruned_total") ==
	    50000);
	if (sent < M.n)
		h_msgs_publish(&M, sent, M.n - sent);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails",
	    (long long)M.n, 60000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	h_stop_clean(&w);
}
END_TEST

static int
some_deleted(void *ud)
{
	return ids_like("old") < *(long long *)ud;
}

/* The database refuses writes (read_only) in the middle of a sweep, and
 * then to the handling too: one warning for both (the worker's one
 * outage), retries at debug level, and once writes are allowed again the
 * sweep finishes by itself and the messages are handled, once. */
START_TEST(refused_writes_one_warning_then_resumes)
{
	static const char *const env[] = {
	    "WORKER_PROCESSED_RETENTION_HOURS=24",
	    "WORKER_PROCESSED_RETENTION_INTERVAL=1",
	    "WORKER_RETRY_MAX_MS=200", "LOG_LEVEL=debug", NULL };
	struct h_daemon w = { 0 };
	long long all = 30000;

	seed_ids("old", all, "48 HOUR");
	H_START(&w, H_WORKER, NULL, env);
	ck_assert(h_wait(60000, some_deleted, &all));
	h_sql("SET GLOBAL read_only = 1");
	/* Should the sweep have ended just before: the administrator
	 * (read_only does not bind it) gives it more. */
	seed_ids("late", 10, "48 HOUR");
	ck_assert(h_wait_log(&w, "WARN: database unavailable", 1, 30000));
	ck_assert(h_wait_log(&w, "database still unavailable (pruning "
	    "processed ids)", 3, 30000));
	ck_assert_int_eq(h_log_count(&w, "WARN"), 1);
	h_msgs_make(&M, 20, "readonly", -1);
	h_msgs_publish(&M, 0, M.n);
	ck_assert(h_wait_log(&w, "database still unavailable: ", 2, 30000));
	ck_assert_int_eq(h_log_count(&w, "WARN"), 1);
	ck_assert_int_gt(ids_like("old") + ids_like("late"), 0);
	h_sql("SET GLOBAL read_only = 0");
	ck_assert_msg(h_wait(60000, old_gone, "old"), "%lld old ids left "
	    "after writes came back", ids_like("old"));
	ck_assert(h_wait(30000, old_gone, "late"));
	ck_assert(h_wait_log(&w, "database reachable again", 1, 30000));
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails",
	    (long long)M.n, 60000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	ck_assert_int_eq(h_log_count(&w, "WARN"), 1);
	h_stop_clean(&w);
}
END_TEST

/* ---- the age rule ---- */

/* Message 0 of M was dead-lettered as too old, and alone; message 1 was
 * applied, once. */
static void
assert_old_dead_young_applied(const struct h_daemon *w, int port)
{
	struct db_val a[1];
	struct h_dlq_seen s;

	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 1,
	    30000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	memset(&s, 0, sizeof(s));
	ck_assert_uint_eq(h_mq_collect(MQ_DLQ, 1, 30000, h_dlq_collect, &s), 1);
	ck_assert_str_eq(s.body[0], M.bodies[0]);
	ck_assert_msg(strstr(s.reason[0], "older than "
	    "WORKER_PROCESSED_RETENTION_HOURS (24 h) minus 1 h") != NULL &&
	    strstr(s.reason[0], "cannot be told apart from a message already "
	    "handled") != NULL, "reason: %s", s.reason[0]);
	ck_assert_int_eq(h_mq_depth(MQ_DLQ), 0);
	/* No effect, no processed id for the old one. */
	a[0] = DB_STR(M.id[0]);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM processed_messages "
	    "WHERE message_id = ?", a, 1), 0);
	ck_assert_int_eq(h_msgs_welcomes(&M, 0), 0);
	ck_assert_int_eq(h_msgs_welcomes(&M, 1), 1);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM processed_messages",
	    NULL, 0), 1);
	/* Logged once at warn (the original's two lines of a message it
	 * cannot handle), counted. */
	ck_assert_int_eq(h_log_count(w, "WARN: ERR: older than "
	    "WORKER_PROCESSED_RETENTION_HOURS"), 1);
	ck_assert_int_eq(h_log_count(w, "Handling ["), 1);
	ck_assert(h_metric(port, "outbox_worker_messages_dead_lettered_total"
	    "{reason=\"too_old\"}") == 1);
}

/* Version-7 ids: 23 h 5 min old (past 24 h - 1 h) and 22 h 55 min old. */
START_TEST(v7_id_too_old_dead_lettered_just_inside_applied)
{
	static const char *const env[] = {
	    "WORKER_PROCESSED_RETENTION_HOURS=24", NULL };
	char id[UID_LEN + 1];
	struct h_daemon w = { 0 };
	long long now = (long long)(clock_wall_s() * 1000.0);
	int port;

	h_msgs_make(&M, 2, "v7age", -1);
	testuid_v7_at(now - 23 * HOUR_MS - 5 * 60000, id);
	h_msgs_reid(&M, 0, id);
	testuid_v7_at(now - 23 * HOUR_MS + 5 * 60000, id);
	h_msgs_reid(&M, 1, id);
	h_msgs_publish(&M, 0, 2);
	start_worker(&w, __func__, &port, env);
	assert_old_dead_young_applied(&w, port);
	h_stop_clean(&w);
}
END_TEST

/* Version-4 ids (no time in them): their AMQP timestamps say 23 h 5 min
 * and 22 h 55 min. */
START_TEST(v4_id_with_an_old_timestamp_dead_lettered)
{
	static const char *const env[] = {
	    "WORKER_PROCESSED_RETENTION_HOURS=24", NULL };
	char id[UID_LEN + 1];
	struct h_daemon w = { 0 };
	uint64_t now = (uint64_t)time(NULL);
	int port;

	h_msgs_make(&M, 2, "v4age", -1);
	testuid_v4(id);
	h_msgs_reid(&M, 0, id);
	testuid_v4(id);
	h_msgs_reid(&M, 1, id);
	h_mq_publish_at(M.bodies, M.ids, 1, now - 23 * 3600 - 300);
	h_mq_publish_at(M.bodies + 1, M.ids + 1, 1, now - 23 * 3600 + 300);
	start_worker(&w, __func__, &port, env);
	assert_old_dead_young_applied(&w, port);
	h_stop_clean(&w);
}
END_TEST

/* ---- the audit ---- */

/* A welcome email without its processed id counts only while the id
 * should still be there (younger than the inbox retention minus 1 h);
 * the ids past the inbox retention are counted for information; an
 * inbox retention shorter than the outbox's plus 1 h is a violation. */
START_TEST(audit_understands_the_inbox_retention)
{
	static const char *const short_inbox[] = {
	    "AUDIT_RETENTION_HOURS=24",
	    "WORKER_PROCESSED_RETENTION_HOURS=24", NULL };
	static const char *const long_inbox[] = {
	    "AUDIT_RETENTION_HOURS=24",
	    "WORKER_PROCESSED_RETENTION_HOURS=168", NULL };
	static const char *const no_inbox[] = {
	    "WORKER_PROCESSED_RETENTION_HOURS=0", NULL };
	static const char lost[] = "welcome emails without their processed "
	    "id";
	static const char past[] = "processed ids older than the inbox "
	    "retention (not pruned yet)";
	static const char shorter[] = "inbox retention shorter than the "
	    "outbox retention + 1 h";
	struct h_daemon a = { 0 };

	/* Two emails whose ids are gone, handled 10 h and 30 h ago. */
	h_sql("INSERT INTO welcome_emails (customer_id, message_id, email, "
	    "name, created_at) VALUES ('c-10h', 'm-10h', 'a@b.io', 'A', "
	    "UTC_TIMESTAMP(6) - INTERVAL 10 HOUR), ('c-30h', 'm-30h', "
	    "'b@b.io', 'B', UTC_TIMESTAMP(6) - INTERVAL 30 HOUR)");
	seed_ids("past", 3, "30 HOUR");
	seed_ids("kept", 2, "1 HOUR");

	ck_assert_int_eq(h_audit(&a, "audit-24h", short_inbox), 1);
	ck_assert_msg(h_audit_says(&a, "FAIL", lost, 1), "see %s", a.log);
	ck_assert(h_audit_says(&a, "info", past, 3));
	ck_assert(h_audit_says(&a, "FAIL", shorter, 1));

	ck_assert_int_eq(h_audit(&a, "audit-168h", long_inbox), 1);
	ck_assert_msg(h_audit_says(&a, "FAIL", lost, 2), "see %s", a.log);
	ck_assert(h_audit_says(&a, "info", past, 0));
	ck_assert(h_audit_says(&a, "ok", shorter, 0));

	ck_assert_int_eq(h_audit(&a, "audit-0h", no_inbox), 1);
	ck_assert(h_audit_says(&a, "FAIL", lost, 2));
	ck_assert(h_audit_says(&a, "info", past, 0));
	ck_assert(h_audit_says(&a, "ok", shorter, 0));
}
END_TEST

Suite *
it_worker_retention_suite(void)
{
	const TTest *const pruning[] = { deletes_only_ids_past_the_retention,
	    keeps_up_with_a_sustained_rate,
	    NULL };
	const TTest *const refused[] = {
	    refused_writes_one_warning_then_resumes, NULL };
	const TTest *const age[] = {
	    v7_id_too_old_dead_lettered_just_inside_applied,
	    v4_id_with_an_old_timestamp_dead_lettered, NULL };
	const TTest *const audit[] = { audit_understands_the_inbox_retention,
	    NULL };
	Suite *s = suite_create("worker");

	suites_case(s, "retention", 300, h_reset, teardown, pruning);
	tcase_add_unchecked_fixture(suites_case(s, "retention refused", 180,
	    h_reset, teardown, refused), NULL, writes_allowed);
	suites_case(s, "retention age", 120, h_reset, teardown, age);
	suites_case(s, "retention audit", 120, h_reset, NULL, audit);
	return s;
}
