/*
 * it_admin.c - outbox-admin against the real MariaDB and RabbitMQ, as
 * its own login: dlq list and show leave the DLQ as it was (count and
 * ids) and read both reasons (the worker's x-dlq-reason, the broker's
 * x-death); a dead-lettered message replayed is handled once; a replay
 * of a message already handled is absorbed as a duplicate; a crash
 * between the replay's publish and the DLQ removal loses nothing; replay
 * refuses messages too old for the inbox retention and reports unknown
 * ids; purge refuses without a terminal and without --yes; parked list
 * and release (then published by the relay); the status figures against
 * known rows; bad input and servers that cannot be asked.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "harness_worker.h"
#include "msg.h"
#include "suites.h"
#include "testuid.h"
#include "trace.h"

Suite *it_admin_suite(void);

/* The messages of the running test. */
static struct h_msgs M;

static void
teardown(void)
{
	h_msgs_free(&M);
}

/* Runs outbox-admin with the words of args; its exit status. */
#define ADMIN(d, extra, ...)                                                \
	h_admin((d), __func__, (const char *const[]){ __VA_ARGS__, NULL },  \
	    (extra))

/* The admin's output as JSON (it ran with --json); fails the test
 * otherwise.  Free with json_decref. */
static json_t *
admin_json(const struct h_daemon *d)
{
	json_error_t e;
	json_t *j = json_load_file(d->log, 0, &e);

	ck_assert_msg(j != NULL, "%s: not JSON: %s (line %d)", d->log, e.text,
	    e.line);
	return j;
}

/* The message ids of doc's "messages", sorted by the caller's order of
 * the DLQ, joined by spaces into out. */
static void
admin_ids(const json_t *doc, char *out, size_t outlen)
{
	const json_t *list = json_object_get(doc, "messages"), *m;
	size_t i, at = 0;

	out[0] = '\0';
	json_array_foreach(list, i, m) {
		at += (size_t)snprintf(out + at, outlen - at, "%s%s",
		    i == 0 ? "" : " ", json_string_value(json_object_get(m,
		    "message_id")));
		ck_assert_uint_lt(at, outlen);
	}
}

/* Puts body straight into the DLQ, as the worker dead-letters a message:
 * x-dlq-reason reason, message id id, type CustomerCreated, sequence seq,
 * a traceparent, timestamp ts (0: now). */
static void
dlq_put_body(const char *body, const char *id, const char *reason,
    int64_t seq, uint64_t ts)
{
	struct mq_params p;
	struct mq_msg m;
	char tp[TRACE_LEN + 1];
	mq_conn *c;

	h_mq_params(&p);
	c = mq_new(&p);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(mq_connect(c, 1) == 0, "broker: %s", mq_error(c));
	trace_child(NULL, tp);
	memset(&m, 0, sizeof(m));
	m.body = body;
	m.len = strlen(body);
	m.message_id = id;
	m.type = MSG_EVENT_CUSTOMER_CREATED;
	m.seq = seq;
	m.reason = reason;
	m.traceparent = tp;
	m.timestamp = ts;
	ck_assert_msg(mq_publish_batch(c, "", MQ_DLQ, &m, 1, 30000) == 0,
	    "publish: %s", mq_error(c));
	ck_assert_int_eq(m.result, MQ_ACKED);
	mq_free(c);
}

/* Message i of M into the DLQ (dlq_put_body), sequence i + 1. */
static void
dlq_put(size_t i, const char *reason, uint64_t ts)
{
	dlq_put_body(M.bodies[i], M.id[i], reason, (int64_t)i + 1, ts);
}

/* Message i of M through queue outbox, then rejected without requeue by
 * a consumer: the broker dead-letters it (x-death: rejected, outbox). */
static void
dlq_by_broker(size_t i)
{
	struct mq_delivery d;
	mq_conn *c;
	long long before = h_mq_depth(MQ_DLQ);

	h_msgs_publish(&M, i, 1);
	c = h_mq_open();
	ck_assert_int_eq(mq_get(c, MQ_QUEUE, &d), 1);
	ck_assert_str_eq(d.message_id, M.id[i]);
	ck_assert_int_eq(mq_reject(c, d.tag, 0), 0);
	mq_delivery_free(&d);
	mq_free(c);
	h_mq_wait_depth(MQ_DLQ, before + 1);
}

/* ---- the dead-letter queue ---- */

START_TEST(list_and_show_leave_the_dlq_as_it_was)
{
	const char *const bound2[] = { "ADMIN_DLQ_MAX=2", NULL };
	struct h_daemon a = { 0 };
	char ids[512], again[512], want[512];
	json_t *doc, *m, *death;

	h_msgs_make(&M, 3, "adm-list", -1);
	dlq_put(0, "undecodable: test reason", 0);
	dlq_put(1, "no handler: test", 0);
	dlq_by_broker(2);
	snprintf(want, sizeof(want), "%s %s %s", M.id[0], M.id[1], M.id[2]);

	ck_assert_int_eq(ADMIN(&a, NULL, "--json", "dlq", "list"), 0);
	doc = admin_json(&a);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "count")), 3);
	admin_ids(doc, ids, sizeof(ids));
	ck_assert_str_eq(ids, want);
	m = json_array_get(json_object_get(doc, "messages"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(m, "reason")),
	    "undecodable: test reason");
	ck_assert_str_eq(json_string_value(json_object_get(m, "event")),
	    "CustomerCreated");
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(m,
	    "trace_id"))), 32);
	ck_assert_ptr_nonnull(json_string_value(json_object_get(m,
	    "timestamp")));
	json_decref(doc);
	/* All three back, in the same order. */
	h_mq_wait_depth(MQ_DLQ, 3);
	ck_assert_int_eq(ADMIN(&a, NULL, "dlq", "list", "--json"), 0);
	doc = admin_json(&a);
	admin_ids(doc, again, sizeof(again));
	ck_assert_str_eq(again, want);
	/* Given back: now flagged redelivered. */
	m = json_array_get(json_object_get(doc, "messages"), 0);
	ck_assert(json_is_true(json_object_get(m, "redelivered")));
	json_decref(doc);
	h_mq_wait_depth(MQ_DLQ, 3);

	/* Bounded: the first two, said so, and all three back. */
	ck_assert_int_eq(ADMIN(&a, bound2, "dlq", "list", "--json"), 0);
	doc = admin_json(&a);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "count")), 2);
	ck_assert(json_is_true(json_object_get(doc, "bounded")));
	json_decref(doc);
	h_mq_wait_depth(MQ_DLQ, 3);

	/* The broker's own dead-lettering, read from x-death. */
	ck_assert_int_eq(ADMIN(&a, NULL, "--json", "dlq", "show", M.id[2]), 0);
	doc = admin_json(&a);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "count")), 1);
	m = json_array_get(json_object_get(doc, "messages"), 0);
	death = json_object_get(m, "x_death");
	ck_assert_str_eq(json_string_value(json_object_get(death, "reason")),
	    "rejected");
	ck_assert_str_eq(json_string_value(json_object_get(death, "queue")),
	    MQ_QUEUE);
	ck_assert_int_eq(json_integer_value(json_object_get(death, "count")),
	    1);
	ck_assert_str_eq(json_string_value(json_object_get(m, "body")),
	    M.bodies[2]);
	json_decref(doc);
	/* Text too; an id in upper case is the same id. */
	for (size_t k = 0; k < UID_LEN; k++)
		want[k] = (char)(M.id[0][k] >= 'a' && M.id[0][k] <= 'f' ?
		    M.id[0][k] - 32 : M.id[0][k]);
	want[UID_LEN] = '\0';
	ck_assert_int_eq(ADMIN(&a, NULL, "dlq", "show", want), 0);
	ck_assert(h_log_contains(&a, "reason: undecodable: test reason"));
	ck_assert(h_log_contains(&a, M.bodies[0]));
	ck_assert_int_eq(ADMIN(&a, NULL, "dlq", "show",
	    "00000000-0000-4000-8000-000000000000"), 1);
	ck_assert(h_log_contains(&a, "not in outbox.dlq"));
	h_mq_wait_depth(MQ_DLQ, 3);
	ck_assert_int_eq(h_mq_depth(MQ_QUEUE), 0);
}
END_TEST

/* What a dead-lettered message carries comes from outside: shown, it
 * can neither break the report's lines nor drive the terminal, and the
 * JSON report stays valid JSON. */
START_TEST(show_makes_outside_bytes_visible)
{
	static const char body[] = "\x1b[2J{\"id\": \xff}\nforged line";
	struct h_daemon a = { 0 };
	json_t *doc, *m;

	dlq_put_body(body, "bad-id", "undecodable: \x1b[31mred\n", 7, 0);
	ck_assert_int_eq(ADMIN(&a, NULL, "dlq", "show", "bad-id"), 0);
	ck_assert(h_log_contains(&a, "body: \\x1b[2J{\"id\": \\xff}\\x0a"
	    "forged line"));
	ck_assert(h_log_contains(&a, "reason: undecodable: \\x1b[31mred"
	    "\\x0a"));
	ck_assert(!h_log_contains(&a, "\x1b"));
	ck_assert_int_eq(ADMIN(&a, NULL, "--json", "dlq", "show", "bad-id"), 0);
	doc = admin_json(&a);
	m = json_array_get(json_object_get(doc, "messages"), 0);
	/* Not UTF-8: as the text shows it; valid UTF-8: as it is. */
	ck_assert_str_eq(json_string_value(json_object_get(m, "body")),
	    "\\x1b[2J{\"id\": \\xff}\\x0aforged line");
	ck_assert_str_eq(json_string_value(json_object_get(m, "dlq_reason")),
	    "undecodable: \x1b[31mred\n");
	ck_assert_int_eq(json_integer_value(json_object_get(m, "seq")), 7);
	json_decref(doc);
	h_mq_wait_depth(MQ_DLQ, 1);
}
END_TEST

/* What a replay published, as consumed from queue outbox. */
struct seen {
	int n;
	struct {
		char id[128], type[128], reason[256], death[32], tp[64];
		char ctype[64], body[1024];
		int64_t seq;
		int mode;
		uint64_t ts;
	} m[4];
};

static void
seen_collect(void *ud, const struct mq_delivery *d)
{
	struct seen *s = ud;

	if (s->n >= 4)
		return;
	snprintf(s->m[s->n].id, sizeof(s->m[0].id), "%s", d->message_id);
	snprintf(s->m[s->n].type, sizeof(s->m[0].type), "%s", d->type);
	snprintf(s->m[s->n].reason, sizeof(s->m[0].reason), "%s", d->reason);
	snprintf(s->m[s->n].death, sizeof(s->m[0].death), "%s",
	    d->death_reason);
	snprintf(s->m[s->n].tp, sizeof(s->m[0].tp), "%s", d->traceparent);
	snprintf(s->m[s->n].ctype, sizeof(s->m[0].ctype), "%s",
	    d->content_type);
	snprintf(s->m[s->n].body, sizeof(s->m[0].body), "%.*s", (int)d->len,
	    d->body);
	s->m[s->n].seq = d->seq;
	s->m[s->n].mode = d->delivery_mode;
	s->m[s->n].ts = d->timestamp;
	s->n++;
}

/* A replay publishes what the relay published (body, message id, type,
 * sequence, traceparent, timestamp, persistent, JSON), without the
 * reasons it was dead-lettered with: neither the worker's x-dlq-reason
 * nor the broker's x-death. */
START_TEST(replay_sends_what_the_relay_sent)
{
	struct h_daemon a = { 0 };
	struct seen s;
	char tp[64];
	json_t *doc;

	h_msgs_make(&M, 2, "adm-wire", -1);
	dlq_put(0, "test: wire", 1700000000);
	dlq_by_broker(1);
	ck_assert_int_eq(ADMIN(&a, NULL, "--json", "dlq", "show", M.id[0]), 0);
	doc = admin_json(&a);
	snprintf(tp, sizeof(tp), "%s", json_string_value(json_object_get(
	    json_array_get(json_object_get(doc, "messages"), 0),
	    "traceparent")));
	json_decref(doc);
	ck_assert_int_eq(ADMIN(&a, NULL, "dlq", "replay", "--all"), 0);
	memset(&s, 0, sizeof(s));
	ck_assert_uint_eq(h_mq_collect(MQ_QUEUE, 2, 30000, seen_collect, &s),
	    2);
	ck_assert_str_eq(s.m[0].id, M.id[0]);
	ck_assert_str_eq(s.m[0].body, M.bodies[0]);
	ck_assert_str_eq(s.m[0].type, MSG_EVENT_CUSTOMER_CREATED);
	ck_assert_int_eq(s.m[0].seq, 1);
	ck_assert_str_eq(s.m[0].tp, tp);
	ck_assert_uint_eq(s.m[0].ts, 1700000000);
	ck_assert_str_eq(s.m[1].id, M.id[1]);
	ck_assert_str_eq(s.m[1].body, M.bodies[1]);
	for (int i = 0; i < 2; i++) {
		ck_assert_str_eq(s.m[i].reason, "");
		ck_assert_str_eq(s.m[i].death, "");
		ck_assert_int_eq(s.m[i].mode, 2);
		ck_assert_str_eq(s.m[i].ctype, "application/json");
	}
	ck_assert_int_eq(h_mq_depth(MQ_DLQ), 0);
}
END_TEST

/* The worker dead-letters a message whose effect the database refuses;
 * once the cause is fixed, the replay is handled, once. */
START_TEST(replayed_message_is_handled_once)
{
	struct h_daemon w = { 0 }, a = { 0 };

	h_poison_refused(1);
	h_msgs_make(&M, 3, "adm-replay", 1);
	h_msgs_publish(&M, 0, M.n);
	H_START(&w, H_WORKER, NULL, NULL);
	h_mq_wait_depth(MQ_DLQ, 1);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 2,
	    30000));
	ck_assert_int_eq(h_msgs_welcomes(&M, 1), 0);
	/* The fix. */
	h_poison_refused(0);
	ck_assert_int_eq(ADMIN(&a, NULL, "dlq", "replay", M.id[1]), 0);
	ck_assert(h_log_contains(&a, "replayed to outbox"));
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 3,
	    30000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	ck_assert_int_eq(h_mq_depth(MQ_DLQ), 0);
	h_msgs_assert_exactly_once(&M);
	h_stop_clean(&w);
}
END_TEST

START_TEST(replay_of_a_handled_message_is_a_duplicate)
{
	struct h_daemon w = { 0 }, a = { 0 };
	char dup[128];

	h_msgs_make(&M, 1, "adm-dup", -1);
	h_msgs_publish(&M, 0, 1);
	H_START(&w, H_WORKER, NULL, NULL);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 1,
	    30000));
	/* A copy of it in the DLQ (e.g. dead-lettered by an older worker
	 * after its commit), replayed with --all. */
	dlq_put(0, "test: a copy", 0);
	ck_assert_int_eq(ADMIN(&a, NULL, "--json", "dlq", "replay", "--all"),
	    0);
	snprintf(dup, sizeof(dup), "Duplicate message %s [CustomerCreated]: "
	    "already processed", M.id[0]);
	ck_assert(h_wait_log(&w, dup, 1, 30000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	ck_assert_int_eq(h_mq_depth(MQ_DLQ), 0);
	h_msgs_assert_exactly_once(&M);
	h_stop_clean(&w);
}
END_TEST

/* Killed after the broker confirmed the publish and before the DLQ copy
 * was acked: the message is in both queues; a second replay and the
 * worker absorb it. */
START_TEST(crash_between_publish_and_removal_loses_nothing)
{
	const char *const crash[] = { "OUTBOX_ADMIN_TEST_CRASH=before-ack",
	    NULL };
	struct h_daemon w = { 0 }, a = { 0 };
	char dup[128];

	h_msgs_make(&M, 2, "adm-crash", -1);
	dlq_put(0, "test: crash", 0);
	dlq_put(1, "test: crash", 0);
	ck_assert_int_eq(ADMIN(&a, crash, "dlq", "replay", M.id[0]), 128 + 9);
	ck_assert(h_log_contains(&a, "killed before the acks"));
	/* The copy is back in the DLQ once the broker saw the connection
	 * go, and the replay in outbox. */
	h_mq_wait_depth(MQ_DLQ, 2);
	h_mq_wait_depth(MQ_QUEUE, 1);
	ck_assert_int_eq(ADMIN(&a, NULL, "dlq", "replay", "--all"), 0);
	h_mq_wait_depth(MQ_DLQ, 0);
	h_mq_wait_depth(MQ_QUEUE, 3);
	H_START(&w, H_WORKER, NULL, NULL);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 2,
	    30000));
	/* In the same batch as the first copy, or after it. */
	snprintf(dup, sizeof(dup), "Duplicate message %s [CustomerCreated]",
	    M.id[0]);
	ck_assert(h_wait_log(&w, dup, 1, 30000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	h_stop_clean(&w);
}
END_TEST

/* The worker would not apply a message older than its inbox retention
 * minus 1 h: replay leaves it in the DLQ and says why. */
START_TEST(replay_refuses_messages_too_old)
{
	const char *const no_retention[] = {
	    "WORKER_PROCESSED_RETENTION_HOURS=0", NULL };
	struct h_daemon a = { 0 };
	char old[UID_LEN + 1];
	json_t *doc, *m;
	int64_t now_ms = (int64_t)time(NULL) * 1000;

	h_msgs_make(&M, 2, "adm-old", -1);
	/* 168 h retention (the default): 167 h 1 min is too old, 166 h is
	 * not. */
	testuid_v7_at(now_ms - (167LL * 3600 + 60) * 1000, old);
	h_msgs_reid(&M, 0, old);
	testuid_v7_at(now_ms - 166LL * 3600 * 1000, old);
	h_msgs_reid(&M, 1, old);
	dlq_put(0, "test: old", 0);
	dlq_put(1, "test: old", 0);
	ck_assert_int_eq(ADMIN(&a, NULL, "--json", "dlq", "replay", M.id[0],
	    M.id[1]), 1);
	doc = admin_json(&a);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "replayed")),
	    1);
	m = json_array_get(json_object_get(doc, "messages"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(m, "result")),
	    "too_old");
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(m,
	    "why")), "older than WORKER_PROCESSED_RETENTION_HOURS (168 h)"));
	json_decref(doc);
	h_mq_wait_depth(MQ_DLQ, 1);
	h_mq_wait_depth(MQ_QUEUE, 1);
	/* Text: says so, exit 1. */
	ck_assert_int_eq(ADMIN(&a, NULL, "dlq", "replay", M.id[0]), 1);
	ck_assert(h_log_contains(&a, "left in outbox.dlq: older than "
	    "WORKER_PROCESSED_RETENTION_HOURS"));
	/* Without a retention nothing is too old. */
	ck_assert_int_eq(ADMIN(&a, no_retention, "dlq", "replay", M.id[0]), 0);
	h_mq_wait_depth(MQ_DLQ, 0);
	h_mq_wait_depth(MQ_QUEUE, 2);
}
END_TEST

START_TEST(replay_reports_ids_not_found)
{
	struct h_daemon a = { 0 };
	json_t *doc;

	h_msgs_make(&M, 1, "adm-unknown", -1);
	dlq_put(0, "test: unknown", 0);
	ck_assert_int_eq(ADMIN(&a, NULL, "--json", "dlq", "replay",
	    "00000000-0000-4000-8000-000000000001"), 1);
	doc = admin_json(&a);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "replayed")),
	    0);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(doc,
	    "not_found"), 0)), "00000000-0000-4000-8000-000000000001");
	json_decref(doc);
	h_mq_wait_depth(MQ_DLQ, 1);
	ck_assert_int_eq(h_mq_depth(MQ_QUEUE), 0);
}
END_TEST

START_TEST(purge_asks_unless_yes)
{
	struct h_daemon a = { 0 };

	h_msgs_make(&M, 2, "adm-purge", -1);
	dlq_put(0, "test: purge", 0);
	dlq_put(1, "test: purge", 0);
	/* Standard input is /dev/null: no terminal to ask on. */
	ck_assert_int_eq(ADMIN(&a, NULL, "dlq", "purge"), 1);
	ck_assert(h_log_contains(&a, "confirm on a terminal, or pass --yes"));
	h_mq_wait_depth(MQ_DLQ, 2);
	ck_assert_int_eq(ADMIN(&a, NULL, "dlq", "purge", "--yes"), 0);
	ck_assert(h_log_contains(&a, "purged 2 messages from outbox.dlq"));
	h_mq_wait_depth(MQ_DLQ, 0);
}
END_TEST

/* ---- the outbox ---- */

/* Inserts an outbox row for a new id; extra: the values of published_at,
 * attempts, next_attempt_at, parked_at, created_at as SQL. */
static void
outbox_row(const char *published, int attempts, const char *next,
    const char *parked, const char *created)
{
	char sql[1024], id[UID_LEN + 1];

	uid_new(id);
	snprintf(sql, sizeof(sql), "INSERT INTO outbox (message_id, "
	    "event_name, payload, created_at, published_at, attempts, "
	    "last_error, next_attempt_at, parked_at) VALUES ('%s', "
	    "'CustomerCreated', '{}', %s, %s, %d, %s, %s, %s)", id, created,
	    published, attempts, attempts > 0 ? "'test: refused'" : "NULL",
	    next, parked);
	h_sql(sql);
}

static const char PARKED_AT[] = "'9999-12-31'";

START_TEST(status_counts_known_rows)
{
	static const char *const ids[] = {
	    "00000000-0000-4000-8000-00000000000a",
	    "00000000-0000-4000-8000-00000000000b" };
	static const char *const bodies[] = { "{}", "{}" };
	struct h_daemon a = { 0 };
	json_t *doc, *q;
	long long age;

	/* Three waiting (the oldest an hour old, one refused before), one
	 * parked, two published. */
	outbox_row("NULL", 0, "NULL", "NULL", "UTC_TIMESTAMP(6) - INTERVAL 1 "
	    "HOUR");
	outbox_row("NULL", 0, "NULL", "NULL", "UTC_TIMESTAMP(6)");
	outbox_row("NULL", 2, "UTC_TIMESTAMP(6) + INTERVAL 1 HOUR", "NULL",
	    "UTC_TIMESTAMP(6)");
	outbox_row("NULL", 5, PARKED_AT, "UTC_TIMESTAMP(6)",
	    "UTC_TIMESTAMP(6)");
	outbox_row("'2026-01-02 03:04:05.123456'", 0, "NULL", "NULL",
	    "'2026-01-02 03:04:05'");
	outbox_row("'2026-01-01 00:00:00'", 0, "NULL", "NULL",
	    "'2026-01-01 00:00:00'");
	h_sql("INSERT INTO processed_messages (message_id, event_name, "
	    "processed_at) VALUES ('00000000-0000-4000-8000-000000000001', "
	    "'CustomerCreated', '2026-01-03 00:00:00')");
	h_mq_publish(bodies, ids, 2);

	ck_assert_int_eq(ADMIN(&a, NULL, "status", "--json"), 0);
	doc = admin_json(&a);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "backlog")),
	    3);
	ck_assert_int_eq(json_integer_value(json_object_get(doc,
	    "retry_waiting")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "parked")),
	    1);
	age = json_integer_value(json_object_get(doc,
	    "oldest_unpublished_age_ms"));
	ck_assert_msg(age >= 3600000 && age < 3600000 + 600000, "age %lld",
	    age);
	ck_assert_str_eq(json_string_value(json_object_get(doc,
	    "last_published_at")), "2026-01-02 03:04:05.123456");
	ck_assert_str_eq(json_string_value(json_object_get(doc,
	    "last_handled_at")), "2026-01-03 00:00:00.000000");
	q = json_object_get(json_object_get(doc, "queues"), MQ_QUEUE);
	ck_assert_int_eq(json_integer_value(json_object_get(q, "ready")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(q, "consumers")),
	    0);
	q = json_object_get(json_object_get(doc, "queues"), MQ_DLQ);
	ck_assert_int_eq(json_integer_value(json_object_get(q, "ready")), 0);
	json_decref(doc);
	/* The same in text. */
	ck_assert_int_eq(ADMIN(&a, NULL, "status"), 0);
	ck_assert(h_log_contains(&a, "parked (the relay gave up)             1"));
	ck_assert(h_log_contains(&a, "queue outbox                           2 "
	    "ready, 0 consumers"));
}
END_TEST

static long long
seq_of(int nth)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT seq FROM outbox ORDER BY seq "
	    "LIMIT 1 OFFSET %d", nth);
	return h_count(sql, NULL, 0);
}

START_TEST(parked_list_and_release)
{
	struct h_daemon a = { 0 }, r = { 0 };
	char s1[32], s2[32], s3[32], s4[32];
	json_t *doc, *rows;

	outbox_row("NULL", 5, PARKED_AT, "UTC_TIMESTAMP(6)",
	    "UTC_TIMESTAMP(6)");
	outbox_row("NULL", 5, PARKED_AT, "UTC_TIMESTAMP(6)",
	    "UTC_TIMESTAMP(6)");
	outbox_row("NULL", 5, PARKED_AT, "UTC_TIMESTAMP(6)",
	    "UTC_TIMESTAMP(6)");
	outbox_row("NULL", 1, "UTC_TIMESTAMP(6)", "NULL", "UTC_TIMESTAMP(6)");
	snprintf(s1, sizeof(s1), "%lld", seq_of(0));
	snprintf(s2, sizeof(s2), "%lld", seq_of(1));
	snprintf(s3, sizeof(s3), "%lld", seq_of(2));
	snprintf(s4, sizeof(s4), "%lld", seq_of(3));

	ck_assert_int_eq(ADMIN(&a, NULL, "--json", "parked", "list"), 0);
	doc = admin_json(&a);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "count")), 3);
	rows = json_object_get(doc, "rows");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(
	    rows, 0), "seq")), seq_of(0));
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
	    rows, 0), "last_error")), "test: refused");
	json_decref(doc);

	/* One parked row, one that is not parked: 1 (not all done). */
	ck_assert_int_eq(ADMIN(&a, NULL, "--json", "parked", "release", s1,
	    s4), 1);
	doc = admin_json(&a);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "released")),
	    1);
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(
	    doc, "not_parked"), 0)), seq_of(3));
	json_decref(doc);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE seq = "
	    "(SELECT MIN(seq) FROM outbox) AND parked_at IS NULL AND attempts "
	    "= 0 AND next_attempt_at <= UTC_TIMESTAMP(6)", NULL, 0), 1);
	/* The row that was not parked is untouched. */
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE attempts "
	    "= 1 AND next_attempt_at IS NOT NULL", NULL, 0), 1);

	/* A seq given twice is one row. */
	ck_assert_int_eq(ADMIN(&a, NULL, "parked", "release", s2, s3, s2), 0);
	ck_assert(h_log_contains(&a, "released 2 rows"));
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE parked_at "
	    "IS NOT NULL", NULL, 0), 0);
	/* Nothing left to release: 1. */
	ck_assert_int_eq(ADMIN(&a, NULL, "parked", "release", "--all"), 1);
	ck_assert(h_log_contains(&a, "released 0 rows"));
	ck_assert_int_eq(ADMIN(&a, NULL, "parked", "list"), 0);
	ck_assert(h_log_contains(&a, "0 parked rows"));
	/* The relay takes the released rows again. */
	H_START(&r, H_RELAY, NULL, NULL);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM outbox WHERE "
	    "published_at IS NOT NULL", 4, 30000));
	h_stop_clean(&r);
}
END_TEST

/* The binlog relay's position (written as it does, by hand): at seq. */
static void
binlog_position_at(long long seq)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "INSERT INTO outbox_relay_position (id, "
	    "gtid, last_seq, updated_at) VALUES (1, '0-1-42', %lld, "
	    "UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE last_seq = %lld", seq,
	    seq);
	h_sql(sql);
}

/* In binlog mode published_at stays NULL: the rows at or below the
 * position's last_seq are published, parked ones aside (README, "What
 * published means in binlog mode"). */
START_TEST(status_reads_the_binlog_position)
{
	static const char two_h[] = "UTC_TIMESTAMP(6) - INTERVAL 2 HOUR";
	struct h_daemon a = { 0 };
	json_t *doc, *pos;
	long long age;

	/* Five rows the binlog relay published (one of them parked, the
	 * oldest), then one fresh and one refused before. */
	outbox_row("NULL", 0, "NULL", "NULL", two_h);
	outbox_row("NULL", 0, "NULL", "NULL", two_h);
	outbox_row("NULL", 5, PARKED_AT, "UTC_TIMESTAMP(6)",
	    "UTC_TIMESTAMP(6) - INTERVAL 3 HOUR");
	outbox_row("NULL", 0, "NULL", "NULL", two_h);
	outbox_row("NULL", 0, "NULL", "NULL", two_h);
	outbox_row("NULL", 0, "NULL", "NULL", "UTC_TIMESTAMP(6) - INTERVAL "
	    "30 MINUTE");
	outbox_row("NULL", 2, "UTC_TIMESTAMP(6) + INTERVAL 1 HOUR", "NULL",
	    "UTC_TIMESTAMP(6)");
	binlog_position_at(seq_of(4));

	ck_assert_int_eq(ADMIN(&a, NULL, "status", "--json"), 0);
	doc = admin_json(&a);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "backlog")),
	    2);
	ck_assert_int_eq(json_integer_value(json_object_get(doc,
	    "retry_waiting")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "parked")),
	    1);
	/* The parked row, below the position, is the oldest stuck one. */
	age = json_integer_value(json_object_get(doc,
	    "oldest_unpublished_age_ms"));
	ck_assert_msg(age >= 3 * 3600000 && age < 3 * 3600000 + 600000,
	    "age %lld", age);
	pos = json_object_get(doc, "binlog_position");
	ck_assert_int_eq(json_integer_value(json_object_get(pos, "last_seq")),
	    seq_of(4));
	ck_assert(json_is_string(json_object_get(pos, "updated_at")));
	ck_assert(json_is_null(json_object_get(doc, "last_published_at")));
	json_decref(doc);
	ck_assert_int_eq(ADMIN(&a, NULL, "status"), 0);
	ck_assert(h_log_contains(&a, "backlog (unpublished, not parked)      "
	    "2\n"));
	ck_assert(h_log_contains(&a, "binlog position, last seq"));

	/* Without a position, the poll mode's meaning: every row with
	 * published_at NULL. */
	h_sql("DELETE FROM outbox_relay_position");
	ck_assert_int_eq(ADMIN(&a, NULL, "status", "--json"), 0);
	doc = admin_json(&a);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "backlog")),
	    6);
	ck_assert(json_is_null(json_object_get(doc, "binlog_position")));
	json_decref(doc);
}
END_TEST

/* Rows the server has read so far (every session's Handler_read_*). */
static long long
rows_read(void)
{
	return h_count("SELECT SUM(VARIABLE_VALUE) FROM information_schema."
	    "GLOBAL_STATUS WHERE VARIABLE_NAME LIKE 'HANDLER\\_READ\\_%'",
	    NULL, 0);
}

/* status never reads the history: 100,000 published rows and processed
 * ids, and it reads a handful of rows (the last times through the first
 * entry of their indexes; ix_outbox_due sorts published_at descending
 * since migration 014, where MAX(published_at) read the whole index). */
START_TEST(status_reads_no_history)
{
	struct h_daemon a = { 0 };
	long long r0, r1, r2, cost;
	json_t *doc;

	h_sql("INSERT INTO outbox (message_id, event_name, payload, "
	    "created_at, published_at) SELECT CONCAT('00000000-0000-4000-"
	    "8000-', LPAD(seq, 12, '0')), 'CustomerCreated', '{}', "
	    "'2026-01-01 00:00:00', '2026-01-01 00:00:00' + INTERVAL seq "
	    "SECOND FROM seq_1_to_100000");
	h_sql("INSERT INTO processed_messages (message_id, event_name, "
	    "processed_at) SELECT CONCAT('00000000-0000-4000-8000-', "
	    "LPAD(seq, 12, '0')), 'CustomerCreated', '2026-01-01 00:00:00' "
	    "+ INTERVAL seq SECOND FROM seq_1_to_100000");
	outbox_row("NULL", 0, "NULL", "NULL", "UTC_TIMESTAMP(6)");
	r0 = rows_read();
	r1 = rows_read();
	ck_assert_int_eq(ADMIN(&a, NULL, "status", "--json"), 0);
	r2 = rows_read();
	/* What one look at the counters reads, taken out. */
	cost = (r2 - r1) - (r1 - r0);
	doc = admin_json(&a);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "backlog")),
	    1);
	ck_assert_str_eq(json_string_value(json_object_get(doc,
	    "last_published_at")), "2026-01-02 03:46:40.000000");
	ck_assert_str_eq(json_string_value(json_object_get(doc,
	    "last_handled_at")), "2026-01-02 03:46:40.000000");
	json_decref(doc);
	fprintf(stderr, "status beside 100,000 rows of history: %lld rows "
	    "read\n", cost);
	ck_assert_msg(cost < 1000, "status read %lld rows beside 100,000 "
	    "of history", cost);
}
END_TEST

/* Bad input: 1, before any server is asked. */
START_TEST(bad_input_is_refused)
{
	const char *const nowhere[] = { "DB_PORT=1", "RABBITMQ_PORT=1", NULL };
	const char *const one_hour[] = { "DB_PORT=1", "RABBITMQ_PORT=1",
	    "WORKER_PROCESSED_RETENTION_HOURS=1", NULL };
	struct h_daemon a = { 0 };

	ck_assert_int_eq(ADMIN(&a, nowhere, "dlq"), 1);
	ck_assert(h_log_contains(&a, "dlq: list, show, replay or purge?"));
	ck_assert_int_eq(ADMIN(&a, nowhere, "dlq", "replay"), 1);
	ck_assert_int_eq(ADMIN(&a, nowhere, "dlq", "replay", "x", "--all"), 1);
	ck_assert_int_eq(ADMIN(&a, nowhere, "parked", "release", "12a"), 1);
	ck_assert(h_log_contains(&a, "not a sequence number: 12a"));
	ck_assert_int_eq(ADMIN(&a, nowhere, "status", "--yes"), 1);
	ck_assert_int_eq(ADMIN(&a, nowhere, "status", "--help"), 0);
	ck_assert(h_log_contains(&a, "WORKER_PROCESSED_RETENTION_HOURS"));
	/* A setting the worker refuses too. */
	ck_assert_int_eq(ADMIN(&a, one_hour, "status"), 1);
	ck_assert(h_log_contains(&a, "WORKER_PROCESSED_RETENTION_HOURS: 1 "
	    "leaves no time"));
	/* A server that cannot be asked: 2. */
	ck_assert_int_eq(ADMIN(&a, nowhere, "status"), 2);
	ck_assert_int_eq(ADMIN(&a, nowhere, "dlq", "list"), 2);
}
END_TEST

Suite *
it_admin_suite(void)
{
	const TTest *const dlq[] = { list_and_show_leave_the_dlq_as_it_was,
	    show_makes_outside_bytes_visible, replay_sends_what_the_relay_sent,
	    replayed_message_is_handled_once,
	    replay_of_a_handled_message_is_a_duplicate,
	    crash_between_publish_and_removal_loses_nothing,
	    replay_refuses_messages_too_old, replay_reports_ids_not_found,
	    purge_asks_unless_yes, NULL };
	const TTest *const outbox[] = { status_counts_known_rows,
	    status_reads_the_binlog_position, status_reads_no_history,
	    parked_list_and_release, bad_input_is_refused, NULL };
	Suite *s = suite_create("admin");

	suites_case(s, "dlq", 120, h_reset, teardown, dlq);
	suites_case(s, "outbox", 120, h_reset, teardown, outbox);
	return s;
}
