/*
 * unit_common.c - unit tests of the shared library: config parsing,
 * backoff, buffers, timestamps, UUIDs, the message schema, log lines.
 */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "buf.h"
#include "cfg.h"
#include "clock.h"
#include "log.h"
#include "msg.h"
#include "mq.h"
#include "pruner.h"
#include "rows.h"
#include "suites.h"
#include "timefmt.h"
#include "trace.h"
#include "uid.h"

Suite *unit_common_suite(void);

/* ---- cfg ---- */

struct tcfg {
	char host[16];
	char pass[16];
	int port;
};

static const struct cfg_opt tcfg_opts[] = {
	CFG_ROW_STR("T_HOST", struct tcfg, host, "localhost", 1, "host"),
	CFG_ROW_SECRET("T_PASS", struct tcfg, pass, "", "password"),
	CFG_ROW_INT("T_PORT", struct tcfg, port, "3000", 1, 65535, "port"),
};
#define NT (sizeof(tcfg_opts) / sizeof(tcfg_opts[0]))

START_TEST(cfg_defaults)
{
	struct tcfg c;
	char err[128];

	unsetenv("T_HOST");
	unsetenv("T_PASS");
	unsetenv("T_PORT");
	ck_assert_int_eq(cfg_load(tcfg_opts, NT, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.host, "localhost");
	ck_assert_str_eq(c.pass, "");
	ck_assert_int_eq(c.port, 3000);
}
END_TEST

START_TEST(cfg_values)
{
	struct tcfg c;
	char err[128];

	setenv("T_HOST", "db", 1);
	setenv("T_PASS", "s3cret", 1);
	setenv("T_PORT", "33063", 1);
	ck_assert_int_eq(cfg_load(tcfg_opts, NT, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.host, "db");
	ck_assert_str_eq(c.pass, "s3cret");
	ck_assert_int_eq(c.port, 33063);
}
END_TEST

static const char *const bad_ports[] = {
	"", " 1", "1 ", "abc", "12abc", "0", "65536", "-1", "99999999999999999999",
	"0x10", "3.5",
};

START_TEST(cfg_bad_int)
{
	struct tcfg c;
	char err[128];

	unsetenv("T_HOST");
	setenv("T_PORT", bad_ports[_i], 1);
	ck_assert_int_eq(cfg_load(tcfg_opts, NT, &c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "T_PORT") != NULL, "error names the "
	    "variable: %s", err);
}
END_TEST

START_TEST(cfg_bad_str)
{
	struct tcfg c;
	char err[128];

	unsetenv("T_PORT");
	setenv("T_HOST", "a-host-name-longer-than-16", 1);
	ck_assert_int_eq(cfg_load(tcfg_opts, NT, &c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "T_HOST"));
	setenv("T_HOST", "", 1);
	ck_assert_int_eq(cfg_load(tcfg_opts, NT, &c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "T_HOST"));
}
END_TEST

START_TEST(cfg_parse_int_edges)
{
	int v = 7;

	ck_assert_int_eq(cfg_parse_int("42", 0, 100, &v), 0);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(cfg_parse_int("-5", -10, 10, &v), 0);
	ck_assert_int_eq(v, -5);
	ck_assert_int_eq(cfg_parse_int("101", 0, 100, &v), -1);
	ck_assert_int_eq(cfg_parse_int(NULL, 0, 100, &v), -1);
	ck_assert_int_eq(v, -5);
}
END_TEST

/* Strict: digits with an optional '-', nothing strtoll would skip or
 * take on top (a sign '+', leading white space of any kind). */
START_TEST(cfg_parse_int_strict)
{
	static const char *const bad[] = { "+3000", " 3000", "\t3000",
	    "\n3000", "\v3000", "\f3000", "\r3000", "3000 ", "3000\n", "",
	    "-", "+", "- 1", "--1", "-+1", "0x10", "1e3", "3,000" };
	size_t i;
	int v = 7;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cfg_parse_int(bad[i], -100000, 100000, &v) == -1,
		    "\"%s\" accepted as %d", bad[i], v);
	ck_assert_int_eq(v, 7);
	ck_assert_int_eq(cfg_parse_int("0", 0, 10, &v), 0);
	ck_assert_int_eq(cfg_parse_int("-0", -1, 10, &v), 0);
	ck_assert_int_eq(cfg_parse_int("007", 0, 10, &v), 0);
	ck_assert_int_eq(v, 7);
}
END_TEST

/* ---- backoff ---- */

START_TEST(backoff_grows_and_caps)
{
	struct backoff b;
	unsigned d, i, prev_max = 0;

	backoff_init(&b, 100, 2000);
	for (i = 0; i < 20; i++) {
		unsigned full = 100u << (i < 5 ? i : 5);

		if (full > 2000)
			full = 2000;
		d = backoff_next(&b);
		ck_assert_uint_ge(d, full / 2);
		ck_assert_uint_le(d, full);
		ck_assert_uint_le(d, 2000);
		prev_max = full;
	}
	ck_assert_uint_eq(prev_max, 2000);
	backoff_reset(&b);
	d = backoff_next(&b);
	ck_assert_uint_ge(d, 50);
	ck_assert_uint_le(d, 100);
}
END_TEST

START_TEST(backoff_jitter_varies)
{
	struct backoff b;
	unsigned seen[64], i, distinct = 0, j;

	for (i = 0; i < 64; i++) {
		backoff_init(&b, 1000, 1000);
		b.rng ^= (uint64_t)i * 0x9e3779b97f4a7c15ULL;
		seen[i] = backoff_next(&b);
	}
	for (i = 0; i < 64; i++) {
		for (j = 0; j < i && seen[j] != seen[i]; j++)
			;
		distinct += j == i;
	}
	ck_assert_uint_gt(distinct, 10);
}
END_TEST

/* ---- buf ---- */

START_TEST(buf_cap_enforced)
{
	struct buf b;

	buf_init(&b, 10);
	ck_assert_int_eq(buf_append(&b, "12345", 5), 0);
	ck_assert_int_eq(buf_append(&b, "67890", 5), 0);
	ck_assert_int_eq(buf_append(&b, "x", 1), -1);
	ck_assert_uint_eq(b.len, 10);
	ck_assert_str_eq(b.data, "1234567890");
	buf_reset(&b);
	ck_assert_int_eq(buf_appendf(&b, "%d-%s", 42, "ab"), 0);
	ck_assert_str_eq(b.data, "42-ab");
	ck_assert_int_eq(buf_appendf(&b, "%s", "too long!"), -1);
	ck_assert_str_eq(b.data, "42-ab");
	buf_free(&b);
	buf_free(&b);
}
END_TEST

/* ---- timefmt, uid ---- */

START_TEST(time_formats)
{
	struct timespec ts = { 1628069827, 305317000 }, back;
	char out[TIMEFMT_LEN];

	ck_assert_int_eq(timefmt_rfc3339(&ts, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "2021-08-04T09:37:07.305317Z");
	ck_assert_int_eq(timefmt_sql(&ts, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "2021-08-04 09:37:07.305317");
	ck_assert_int_eq(timefmt_parse_sql(out, &back), 0);
	ck_assert_int_eq(back.tv_sec, ts.tv_sec);
	ck_assert_int_eq(back.tv_nsec, ts.tv_nsec);
	ck_assert_int_eq(timefmt_parse_sql("2021-08-04 09:37:07", &back), 0);
	ck_assert_int_eq(back.tv_nsec, 0);
	ck_assert_int_eq(timefmt_parse_sql("2021-08-04 09:37:07.5", &back), 0);
	ck_assert_int_eq(back.tv_nsec, 500000000);
	ck_assert_int_eq(timefmt_parse_sql("2021-08-04T09:37:07", &back), -1);
	ck_assert_int_eq(timefmt_parse_sql("2021-08-04 09:37:07x", &back), -1);
	ck_assert_int_eq(timefmt_rfc3339(&ts, out, 10), -1);
}
END_TEST

START_TEST(uid_roundtrip)
{
	char a[UID_LEN + 1], b[UID_LEN + 1];

	uid_new(a);
	uid_new(b);
	ck_assert_uint_eq(strlen(a), UID_LEN);
	ck_assert_str_ne(a, b);
	ck_assert(uid_valid(a, strlen(a)));
	ck_assert(a[14] == '7');
	ck_assert(!uid_valid("not-a-uuid", 10));
	ck_assert(!uid_valid("fcb86b89-9404-48c7-9198-b85585ff8ab", 35));
	ck_assert(!uid_valid("fcb86b89-9404-48c7-9198-b85585ff8abz", 36));
	ck_assert(uid_valid("fcb86b89-9404-48c7-9198-b85585ff8ab2", 36));
}
END_TEST

/* Version 7 (RFC 9562): the milliseconds in the first 48 bits, version
 * and variant where they belong, and uid_time_ms reads the time back. */
START_TEST(uid_v7_layout)
{
	char a[UID_LEN + 1], hex[13];
	struct timespec ts;
	int64_t ms, now;
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	uid_new(a);
	ck_assert(uid_time_ms(a, strlen(a), &ms));
	ck_assert_msg(ms >= now && ms < now + 1000, "%s: %lld, now %lld", a,
	    (long long)ms, (long long)now);
	/* A time far ahead, so that this process's last time is below it. */
	uid_new_at(INT64_C(4102444800123), a);
	ck_assert(uid_valid(a, strlen(a)));
	for (i = 0; i < 8; i++)
		hex[i] = a[i];
	for (i = 0; i < 4; i++)
		hex[8 + i] = a[9 + i];
	hex[12] = '\0';
	ck_assert_str_eq(hex, "03bb2cc3d87b"); /* 4102444800123 */
	ck_assert_int_eq(a[8], '-');
	ck_assert_int_eq(a[14], '7');
	ck_assert_ptr_nonnull(strchr("89ab", a[19]));
	ck_assert(uid_time_ms(a, strlen(a), &ms));
	ck_assert_int_eq(ms, INT64_C(4102444800123));
	/* Other versions carry no time; nor does a non-UUID. */
	ck_assert(!uid_time_ms("fcb86b89-9404-48c7-9198-b85585ff8ab2", 36, &ms));
	ck_assert(!uid_time_ms("03bb2cc3-d87b-7000-c000-000000000000", 36, &ms));
	ck_assert(!uid_time_ms("03bb2cc3-d87b-7000-8000-00000000000", 35, &ms));
	ck_assert(uid_time_ms("03BB2CC3-D87B-7FFF-BFFF-FFFFFFFFFFFF", 36, &ms));
	ck_assert_int_eq(ms, INT64_C(4102444800123));
}
END_TEST

/* Every id greater than the one before, as text: while the clock stalls
 * (past the counter's 4,096 ids in one millisecond), when it steps back,
 * and when it moves on. */
START_TEST(uid_v7_ordered)
{
	char prev[UID_LEN + 1], cur[UID_LEN + 1];
	const int64_t t0 = INT64_C(4200000000000);
	int64_t ms, last = 0;
	int i;

	uid_new_at(t0, prev);
	for (i = 0; i < 20000; i++) {
		/* 10,000 at one time, then the clock 5 s back, then on. */
		int64_t now = i < 10000 ? t0 : i < 15000 ? t0 - 5000 :
		    t0 + 1000 + i;

		uid_new_at(now, cur);
		ck_assert_msg(strcmp(prev, cur) < 0, "%d: %s then %s", i, prev,
		    cur);
		ck_assert(uid_time_ms(cur, UID_LEN, &ms));
		ck_assert(ms >= last);
		last = ms;
		memcpy(prev, cur, sizeof(cur));
	}
	/* 15,000 ids at t0 or before: the time field moved on by at most
	 * one millisecond per 4,096 ids; then the clock took over. */
	ck_assert_int_eq(last, t0 + 1000 + 19999);
	uid_new_at(t0 + 1, cur);
	ck_assert(uid_time_ms(cur, UID_LEN, &ms));
	ck_assert_int_eq(ms, last);
}
END_TEST

#define UID_THREADS 4
#define UID_PER_THREAD 10000

struct uid_run {
	pthread_t t;
	char (*ids)[UID_LEN + 1];
};

static void *
uid_run_main(void *arg)
{
	struct uid_run *r = arg;
	int i;

	for (i = 0; i < UID_PER_THREAD; i++)
		uid_new(r->ids[i]);
	return NULL;
}

static int
uid_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Four threads at once: each thread's ids ascend, and no id is made
 * twice. */
START_TEST(uid_v7_threads_unique)
{
	static char ids[UID_THREADS * UID_PER_THREAD][UID_LEN + 1];
	struct uid_run r[UID_THREADS];
	int i, j;

	for (i = 0; i < UID_THREADS; i++) {
		r[i].ids = ids + i * UID_PER_THREAD;
		ck_assert_int_eq(pthread_create(&r[i].t, NULL, uid_run_main,
		    &r[i]), 0);
	}
	for (i = 0; i < UID_THREADS; i++) {
		ck_assert_int_eq(pthread_join(r[i].t, NULL), 0);
		for (j = 1; j < UID_PER_THREAD; j++)
			ck_assert(strcmp(r[i].ids[j - 1], r[i].ids[j]) < 0);
	}
	qsort(ids, UID_THREADS * UID_PER_THREAD, sizeof(ids[0]), uid_cmp);
	for (j = 1; j < UID_THREADS * UID_PER_THREAD; j++)
		ck_assert_msg(strcmp(ids[j - 1], ids[j]) != 0, "twice: %s",
		    ids[j]);
}
END_TEST

/* One canonical form: lower case, whatever case came. */
START_TEST(uid_canonical_lower)
{
	char out[UID_LEN + 1];

	ck_assert(uid_canonical("FCB86B89-9404-48C7-9198-B85585FF8AB2", 36,
	    out));
	ck_assert_str_eq(out, "fcb86b89-9404-48c7-9198-b85585ff8ab2");
	ck_assert(uid_canonical("fcb86b89-9404-48c7-9198-B85585ff8aB2", 36,
	    out));
	ck_assert_str_eq(out, "fcb86b89-9404-48c7-9198-b85585ff8ab2");
	ck_assert(!uid_canonical("FCB86B89-9404-48C7-9198-B85585FF8AB", 35,
	    out));
	ck_assert(!uid_canonical("GCB86B89-9404-48C7-9198-B85585FF8AB2", 36,
	    out));
}
END_TEST

/* The worker compares message ids byte by byte: decoded ids are in lower
 * case, so that an upper-case twin is the same message. */
START_TEST(msg_decode_lower_cases_ids)
{
	static const char upper[] = "{\"id\":\"0B5E2A6C-3D4F-4A1B-9C8D-"
	    "7E6F5A4B3C2D\",\"event_name\":\"CustomerCreated\",\"payload\":"
	    "{}}";
	struct msg_event ev;
	char reason[256];

	ck_assert_int_eq(msg_decode(upper, strlen(upper), &ev, reason,
	    sizeof(reason)), 0);
	ck_assert_str_eq(ev.id, "0b5e2a6c-3d4f-4a1b-9c8d-7e6f5a4b3c2d");
	msg_event_clear(&ev);
}
END_TEST

/* ---- trace ---- */

START_TEST(trace_context)
{
	static const char in[] =
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	char a[TRACE_LEN + 1], b[TRACE_LEN + 1];

	ck_assert_int_eq(trace_valid(in, strlen(in)), 0);
	ck_assert_int_eq(trace_valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-"
	    "00f067aa0ba902b7-01", 55), -1);
	ck_assert_int_eq(trace_valid("00-00000000000000000000000000000000-"
	    "00f067aa0ba902b7-01", 55), -1);
	ck_assert_int_eq(trace_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-"
	    "0000000000000000-01", 55), -1);
	ck_assert_int_eq(trace_valid("01-4bf92f3577b34da6a3ce929d0e0e4736-"
	    "00f067aa0ba902b7-01", 55), -1);
	ck_assert_int_eq(trace_valid(in, strlen(in) - 1), -1);
	/* A child keeps the trace id and flags, with a new span id. */
	trace_child(in, a);
	ck_assert_int_eq(trace_valid(a, strlen(a)), 0);
	ck_assert_int_eq(strncmp(a, in, 36), 0);
	ck_assert_str_ne(a + 36, in + 36);
	ck_assert_str_eq(a + 52, "-01");
	/* No (or a bad) parent: a new trace. */
	trace_child(NULL, a);
	trace_child("garbage", b);
	ck_assert_int_eq(trace_valid(a, strlen(a)), 0);
	ck_assert_int_eq(trace_valid(b, strlen(b)), 0);
	ck_assert_int_ne(strncmp(a, b, 35), 0);
}
END_TEST

/* ---- msg ---- */

START_TEST(msg_customer_and_body)
{
	struct customer c = { "13db077f-b8b9-4512-9938-04f9aa00cae7",
		"a@example.com", "TEST \"q\" é", "2021-08-04T09:37:07.305317Z",
		"2021-08-04T09:37:07.305317Z" };
	struct msg_event ev;
	struct buf p, body;
	char reason[128];

	buf_init(&p, 4096);
	buf_init(&body, 8192);
	ck_assert_int_eq(msg_customer_json(&c, &p), 0);
	ck_assert_str_eq(p.data, "{\"id\":\"13db077f-b8b9-4512-9938-"
	    "04f9aa00cae7\",\"email\":\"a@example.com\",\"name\":\"TEST "
	    "\\\"q\\\" é\",\"CreatedAt\":\"2021-08-04T09:37:07.305317Z\","
	    "\"UpdatedAt\":\"2021-08-04T09:37:07.305317Z\"}");
	ck_assert_int_eq(msg_event_body("fcb86b89-9404-48c7-9198-b85585ff8ab2",
	    MSG_EVENT_CUSTOMER_CREATED, p.data, p.len, &body), 0);
	{
		static const char head[] = "{\"id\":\"fcb86b89-9404-48c7-"
		    "9198-b85585ff8ab2\",\"event_name\":\"CustomerCreated\","
		    "\"payload\":{";

		ck_assert_int_eq(strncmp(body.data, head, strlen(head)), 0);
	}
	ck_assert_ptr_nonnull(strstr(body.data, ",\"is_processed\":false}"));
	/* What the relay writes, the worker reads back. */
	ck_assert_int_eq(msg_decode(body.data, body.len, &ev, reason,
	    sizeof(reason)), 0);
	ck_assert_str_eq(ev.id, "fcb86b89-9404-48c7-9198-b85585ff8ab2");
	ck_assert_str_eq(ev.event_name, "CustomerCreated");
	ck_assert_str_eq(msg_event_payload(&ev), p.data);
	msg_event_clear(&ev);
	/* Bad ids or event names are refused when encoding. */
	buf_reset(&body);
	ck_assert_int_eq(msg_event_body("nope", "X", "{}", 2, &body), -1);
	ck_assert_int_eq(msg_event_body("fcb86b89-9404-48c7-9198-b85585ff8ab2",
	    "bad\"name", "{}", 2, &body), -1);
	buf_free(&p);
	buf_free(&body);
}
END_TEST

static const struct {
	const char *body;
	const char *reason;
} bad_msgs[] = {
	{ "", "malformed JSON" },
	{ "not json", "malformed JSON" },
	{ "{\"id\":", "malformed JSON" },
	{ "[]", "not a JSON object" },
	{ "{\"event_name\":\"CustomerCreated\",\"payload\":{}}", "\"id\"" },
	{ "{\"id\":5,\"event_name\":\"CustomerCreated\",\"payload\":{}}",
	    "\"id\"" },
	{ "{\"id\":\"x\",\"event_name\":\"CustomerCreated\",\"payload\":{}}",
	    "UUID" },
	{ "{\"id\":\"fcb86b89-9404-48c7-9198-b85585ff8ab2\",\"payload\":{}}",
	    "event_name" },
	{ "{\"id\":\"fcb86b89-9404-48c7-9198-b85585ff8ab2\",\"event_name\":"
	    "\"a b\",\"payload\":{}}", "event_name" },
	{ "{\"id\":\"fcb86b89-9404-48c7-9198-b85585ff8ab2\",\"event_name\":"
	    "\"CustomerCreated\"}", "payload" },
	{ "{\"id\":\"fcb86b89-9404-48c7-9198-b85585ff8ab2\",\"event_name\":"
	    "\"CustomerCreated\",\"payload\":[]}", "payload" },
	{ "{\"id\":\"fcb86b89-9404-48c7-9198-b85585ff8ab2\",\"event_name\":"
	    "\"CustomerCreated\",\"payload\":{},\"is_processed\":1}",
	    "is_processed" },
	{ "{\"id\":\"fcb86b89-9404-48c7-9198-b85585ff8ab2\",\"event_name\":"
	    "\"CustomerCreated\",\"payload\":{},\"extra\":1}", "unknown" },
	{ "{\"id\":\"fcb86b89-9404-48c7-9198-b85585ff8ab2\",\"event_name\":"
	    "\"CustomerCreated\",\"payload\":{}} trailing", "malformed" },
	{ "{\"id\":\"fcb86b89-9404-48c7-9198-b85585ff8ab2\",\"id\":\"fcb86b89-"
	    "9404-48c7-9198-b85585ff8ab2\",\"event_name\":\"CustomerCreated\","
	    "\"payload\":{}}", "malformed" },
};

START_TEST(time_rfc3339_parsed)
{
	struct timespec back;

	ck_assert_int_eq(timefmt_parse_rfc3339("2021-08-04T09:37:07.305317Z",
	    &back), 0);
	ck_assert_int_eq(back.tv_sec, 1628069827);
	ck_assert_int_eq(back.tv_nsec, 305317000);
	ck_assert_int_eq(timefmt_parse_rfc3339("2021-08-04T09:37:07Z", &back),
	    0);
	ck_assert_int_eq(back.tv_nsec, 0);
	/* The Go original's 7 fractional digits, kept to the microsecond. */
	ck_assert_int_eq(timefmt_parse_rfc3339("2021-08-04T09:37:07.3053179Z",
	    &back), 0);
	ck_assert_int_eq(back.tv_nsec, 305317000);
	ck_assert_int_eq(timefmt_parse_rfc3339("2021-08-04 09:37:07Z", &back),
	    -1);
	ck_assert_int_eq(timefmt_parse_rfc3339("2021-08-04T09:37:07", &back),
	    -1);
	ck_assert_int_eq(timefmt_parse_rfc3339("2021-08-04T09:37:07+02:00",
	    &back), -1);
	ck_assert_int_eq(timefmt_parse_rfc3339("", &back), -1);
	ck_assert_int_eq(timefmt_parse_rfc3339("2021-08-04T09:37:07."
	    "3053170000000000Z", &back), -1);
}
END_TEST

/* The payload's CreatedAt, for the worker's lag metric: taken when
 * valid, ignored (never refused) otherwise. */
START_TEST(msg_decode_created_at)
{
	static const char ok[] = "{\"id\":\"" "0b5e2a6c-3d4f-4a1b-9c8d-"
	    "7e6f5a4b3c2d\",\"event_name\":\"CustomerCreated\",\"payload\":"
	    "{\"CreatedAt\":\"2021-08-04T09:37:07.305317Z\"}}";
	static const char odd[] = "{\"id\":\"" "0b5e2a6c-3d4f-4a1b-9c8d-"
	    "7e6f5a4b3c2d\",\"event_name\":\"CustomerCreated\",\"payload\":"
	    "{\"CreatedAt\":42}}";
	struct msg_event ev;
	char reason[256];

	ck_assert_int_eq(msg_decode(ok, strlen(ok), &ev, reason,
	    sizeof(reason)), 0);
	ck_assert_int_eq(ev.has_created, 1);
	ck_assert_int_eq(ev.created.tv_sec, 1628069827);
	ck_assert_int_eq(ev.created.tv_nsec, 305317000);
	msg_event_clear(&ev);
	ck_assert_int_eq(msg_decode(odd, strlen(odd), &ev, reason,
	    sizeof(reason)), 0);
	ck_assert_int_eq(ev.has_created, 0);
	msg_event_clear(&ev);
}
END_TEST

START_TEST(msg_decode_rejects)
{
	struct msg_event ev;
	char reason[256];

	ck_assert_int_eq(msg_decode(bad_msgs[_i].body,
	    strlen(bad_msgs[_i].body), &ev, reason, sizeof(reason)), -1);
	ck_assert_msg(strstr(reason, bad_msgs[_i].reason) != NULL,
	    "body %s: reason \"%s\" lacks \"%s\"", bad_msgs[_i].body, reason,
	    bad_msgs[_i].reason);
	ck_assert_ptr_null(ev.payload);
}
END_TEST

/* ---- log lines ---- */

/* What log_info(fmt, arg) writes in format f, into out. */
static void
log_capture(enum log_format f, const char *arg, char *out, size_t outlen)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	size_t n;

	ck_assert_ptr_nonnull(tmp);
	ck_assert_int_ge(saved, 0);
	dup2(fileno(tmp), 2);
	log_set_format(f);
	log_info("GET %s", arg);
	log_set_format(LOG_FMT_TEXT);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, outlen - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
}

/* Bytes from outside cannot forge a line or drive a terminal: control
 * bytes, DEL and invalid UTF-8 are escaped; valid UTF-8 and backslashes
 * stay; the JSON format stays valid JSON with the same text. */
START_TEST(log_lines_escape_outside_bytes)
{
	static const char hostile[] = "/x\n2026/11/26 23:53:44 201 - 3.210ms "
	    "POST /customers\r\x1b[31m\x7f\xff\xc3\x28\xed\xa0\x80 Zo\xc3\xab \\n";
	static const char want[] = "GET /x\\x0a2026/11/26 23:53:44 201 - "
	    "3.210ms POST /customers\\x0d\\x1b[31m\\x7f\\xff\\xc3(\\xed\\xa0"
	    "\\x80 Zo\xc3\xab \\n\n";
	char out[4096];
	json_t *o;

	log_capture(LOG_FMT_TEXT, hostile, out, sizeof(out));
	ck_assert_msg(strlen(out) > 20 && strcmp(out + 20, want) == 0,
	    "text line: %s", out);
	log_capture(LOG_FMT_JSON, hostile, out, sizeof(out));
	ck_assert_ptr_nonnull(strchr(out, '\n'));
	ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
	o = json_loads(out, 0, NULL);
	ck_assert_msg(o != NULL, "not JSON: %s", out);
	ck_assert_str_eq(json_string_value(json_object_get(o, "message")),
	    "GET /x\n2026/11/26 23:53:44 201 - 3.210ms POST /customers\r"
	    "\x1b[31m\x7f\\xff\\xc3(\\xed\\xa0\\x80 Zo\xc3\xab \\n");
	json_decref(o);
}
END_TEST

/* log_visible: the same escapes for bytes that are not a line (a
 * dead-lettered body): a NUL inside stays visible, a cut is said. */
START_TEST(log_visible_escapes_any_bytes)
{
	static const char body[] = "{\"a\":1}\0\n\x1b[2J\xff Zo\xc3\xab";
	char out[128], small[12];

	ck_assert_int_eq(log_visible(body, sizeof(body) - 1, out, sizeof(out)),
	    0);
	ck_assert_str_eq(out, "{\"a\":1}\\x00\\x0a\\x1b[2J\\xff "
	    "Zo\xc3\xab");
	ck_assert_int_eq(log_visible(body, sizeof(body) - 1, small,
	    sizeof(small)), 1);
	ck_assert_uint_lt(strlen(small), sizeof(small));
	ck_assert_int_eq(log_visible("", 0, small, sizeof(small)), 0);
	ck_assert_str_eq(small, "");
}
END_TEST

/* ---- the broker host list ---- */

static int
hosts_of(const char *list, struct mq_host *h, char *err, size_t errlen)
{
	struct mq_params p;

	memset(&p, 0, sizeof(p));
	snprintf(p.host, sizeof(p.host), "single");
	p.port = 5672;
	snprintf(p.hosts, sizeof(p.hosts), "%s", list);
	return mq_hosts_parse(&p, h, MQ_HOSTS_MAX, err, errlen);
}

START_TEST(mq_hosts_good)
{
	struct mq_host h[MQ_HOSTS_MAX];
	char err[256], list[2048];
	int i;

	/* Unset: RABBITMQ_HOST:RABBITMQ_PORT alone, as before. */
	ck_assert_int_eq(hosts_of("", h, err, sizeof(err)), 1);
	ck_assert_str_eq(h[0].host, "single");
	ck_assert_int_eq(h[0].port, 5672);
	ck_assert_int_eq(hosts_of("a.example:5673,b,c-1_x:1", h, err,
	    sizeof(err)), 3);
	ck_assert_str_eq(h[0].host, "a.example");
	ck_assert_int_eq(h[0].port, 5673);
	ck_assert_str_eq(h[1].host, "b");
	ck_assert_int_eq(h[1].port, 5672);
	ck_assert_str_eq(h[2].host, "c-1_x");
	ck_assert_int_eq(h[2].port, 1);
	/* The bound: 16 hosts, not 17. */
	list[0] = '\0';
	for (i = 0; i < MQ_HOSTS_MAX; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
		    "%sh%d:%d", i ? "," : "", i, 6000 + i);
	ck_assert_int_eq(hosts_of(list, h, err, sizeof(err)), MQ_HOSTS_MAX);
	ck_assert_int_eq(h[MQ_HOSTS_MAX - 1].port, 6000 + MQ_HOSTS_MAX - 1);
	snprintf(list + strlen(list), sizeof(list) - strlen(list),
	    ",one-more");
	ck_assert_int_eq(hosts_of(list, h, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "more than 16"));
}
END_TEST

static const char *const bad_hosts[] = {
	",a", "a,", "a,,b", "a:", "a:0", "a:65536", "a:5x", "a:-1", ":5672",
	"[::1]:5672", "::1", "a b", "a:5672:1", "h\"x",
};

START_TEST(mq_hosts_bad)
{
	struct mq_host h[MQ_HOSTS_MAX];
	char err[256] = "";

	ck_assert_int_eq(hosts_of(bad_hosts[_i], h, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "RABBITMQ_HOSTS"));
}
END_TEST

START_TEST(mq_hosts_round_robin)
{
	/* After host k of n is lost, the round starts at k + 1. */
	ck_assert_uint_eq(mq_host_next(0, 3), 1);
	ck_assert_uint_eq(mq_host_next(1, 3), 2);
	ck_assert_uint_eq(mq_host_next(2, 3), 0);
	ck_assert_uint_eq(mq_host_next(0, 1), 0);
}
END_TEST

/* The lease clock runs with the monotonic one and is never behind it
 * (it also counts a suspended system's time, which the monotonic one
 * leaves out): a lease measured with it ends no later. */
START_TEST(lease_clock_not_behind_monotonic)
{
	long long m0 = clock_ms(), l0 = clock_lease_ms(), m1, l1;
	struct timespec pause = { 0, 20 * 1000 * 1000 };

	ck_assert_int_ge(l0, m0);
	nanosleep(&pause, NULL);
	m1 = clock_ms();
	l1 = clock_lease_ms();
	ck_assert_int_ge(l1, m1);
	ck_assert_int_ge(l1 - l0, m1 - m0);
}
END_TEST

/* ---- multi-row statements ---- */

static const struct rows_sql q_insert = {
	"INSERT INTO t (a, b, c, d, e) VALUES ",
	"(?, ?, ?, ?, UTC_TIMESTAMP(6))",
	" ON DUPLICATE KEY UPDATE a = a",
	4,
};

static const struct rows_sql q_in = {
	"SELECT a FROM t WHERE a IN (", "?", ")", 1,
};

START_TEST(rows_texts)
{
	char sql[40000];

	ck_assert_int_eq(rows_text(&q_in, 1, sql, sizeof(sql)), 0);
	ck_assert_str_eq(sql, "SELECT a FROM t WHERE a IN (?)");
	ck_assert_int_eq(rows_text(&q_in, 3, sql, sizeof(sql)), 0);
	ck_assert_str_eq(sql, "SELECT a FROM t WHERE a IN (?,?,?)");
	ck_assert_int_eq(rows_text(&q_insert, 2, sql, sizeof(sql)), 0);
	ck_assert_str_eq(sql, "INSERT INTO t (a, b, c, d, e) VALUES "
	    "(?, ?, ?, ?, UTC_TIMESTAMP(6)),(?, ?, ?, ?, UTC_TIMESTAMP(6)) "
	    "ON DUPLICATE KEY UPDATE a = a");
	ck_assert_int_eq(rows_text(&q_in, 0, sql, sizeof(sql)), -1);
	/* Too small a buffer is refused, not cut. */
	ck_assert_int_eq(rows_text(&q_in, 3, sql, 30), -1);
	/* The largest statement fits rows.c's buffer (32 KiB). */
	ck_assert_int_eq(rows_text(&q_insert, ROWS_CHUNK_MAX, sql, 32768), 0);
}
END_TEST

START_TEST(rows_chunks)
{
	static const struct rows_sql five = { "", "(?,?,?,?,?)", "", 5 };

	ck_assert_uint_eq(rows_chunk(&q_in, 1), 1);
	ck_assert_uint_eq(rows_chunk(&q_in, 200), 200);
	ck_assert_uint_eq(rows_chunk(&q_in, 1000), ROWS_CHUNK_MAX);
	ck_assert_uint_eq(rows_chunk(&q_insert, 1000), ROWS_CHUNK_MAX);
	/* Never more parameters than db.c binds (1024). */
	ck_assert_uint_eq(rows_chunk(&five, 1000), 1024 / 5);
}
END_TEST

/* ---- pruner ---- */

/* A sweep of whole chunks that take about 30 ms each: the log of when
 * each began and ended. */
struct pace_log {
	pthread_mutex_t mu;
	long long start[8], end[8];
	int calls;
};

static int
pace_chunk(void *ud, db_conn *c, uint64_t *deleted)
{
	struct pace_log *l = ud;
	long long t0 = clock_ms();
	int k;

	(void)c;
	backoff_sleep(30, NULL);
	pthread_mutex_lock(&l->mu);
	k = l->calls++;
	if (k < 8) {
		l->start[k] = t0;
		l->end[k] = clock_ms();
	}
	pthread_mutex_unlock(&l->mu);
	/* Four whole chunks, then the sweep is done. */
	*deleted = k < 4 ? 10 : 0;
	return DB_OK;
}

static int
pace_calls(struct pace_log *l)
{
	int n;

	pthread_mutex_lock(&l->mu);
	n = l->calls;
	pthread_mutex_unlock(&l->mu);
	return n;
}

/* Between two whole chunks the pruner rests at least pace times as long
 * as the chunk took: a sweep takes at most 1/(pace + 1) of its
 * connection's time, instead of one chunk after another. */
START_TEST(pruner_paces_whole_chunks)
{
	struct pace_log l = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct pruner_spec s = { .chunk = pace_chunk, .chunk_rows = 10,
	    .gap_ms = 5, .pace = 3, .rest_ms = 60000, .fail_ms = 60000,
	    .ud = &l };
	struct db_params db = { .port = 1 };
	struct pruner *p;
	long long deadline = clock_ms() + 10000;
	int k;

	snprintf(s.what, sizeof(s.what), "test rows");
	snprintf(s.unit, sizeof(s.unit), "rows");
	snprintf(s.task, sizeof(s.task), "prune test rows");
	p = pruner_start(&db, &s);
	ck_assert_ptr_nonnull(p);
	while (pace_calls(&l) < 5 && clock_ms() < deadline)
		backoff_sleep(10, NULL);
	pruner_free(p);
	ck_assert_int_eq(l.calls, 5);
	for (k = 0; k < 4; k++) {
		long long took = l.end[k] - l.start[k];
		long long rest = l.start[k + 1] - l.end[k];

		/* 1 ms: the two clock readings' rounding. */
		ck_assert_msg(rest >= 3 * took - 1, "chunk %d took %lld ms, "
		    "then a pause of %lld ms (want at least %lld)", k, took,
		    rest, 3 * took);
	}
}
END_TEST

/* The pause's arithmetic: pace times the chunk, at least the gap, at most
 * the rest; the pace halved for each whole rest the sweep has lasted. */
START_TEST(pruner_pause_arithmetic)
{
	struct pruner_spec s = { .gap_ms = 10, .pace = 9, .rest_ms = 60000 };

	ck_assert_uint_eq(pruner_pause_ms(&s, 30, 0), 270);
	ck_assert_uint_eq(pruner_pause_ms(&s, 1, 0), 10);
	ck_assert_uint_eq(pruner_pause_ms(&s, 0, 0), 10);
	ck_assert_uint_eq(pruner_pause_ms(&s, -5, 0), 10);
	ck_assert_uint_eq(pruner_pause_ms(&s, 30, 59999), 270);
	ck_assert_uint_eq(pruner_pause_ms(&s, 30, 60000), 120);
	ck_assert_uint_eq(pruner_pause_ms(&s, 30, 120000), 60);
	ck_assert_uint_eq(pruner_pause_ms(&s, 30, 180000), 30);
	ck_assert_uint_eq(pruner_pause_ms(&s, 30, 240000), 10);
	ck_assert_uint_eq(pruner_pause_ms(&s, 30, 1000LL * 60000), 10);
	/* A chunk that took long: never more than the rest. */
	ck_assert_uint_eq(pruner_pause_ms(&s, 10000, 0), 60000);
	s.pace = 0;
	ck_assert_uint_eq(pruner_pause_ms(&s, 30, 0), 10);
	/* No rest: nothing to be behind of, nothing to cap. */
	s.pace = 9;
	s.rest_ms = 0;
	ck_assert_uint_eq(pruner_pause_ms(&s, 30, 1000000), 270);
	ck_assert_uint_eq(pruner_pause_ms(&s, 100000, 0), 900000);
}
END_TEST

Suite *
unit_common_suite(void)
{
	const TTest *const common[] = { cfg_defaults, cfg_values, cfg_bad_str,
	    cfg_parse_int_edges, cfg_parse_int_strict, backoff_grows_and_caps,
	    backoff_jitter_varies, buf_cap_enforced, time_formats,
	    time_rfc3339_parsed, msg_decode_created_at, uid_roundtrip,
	    uid_v7_layout, uid_v7_ordered, uid_v7_threads_unique,
	    uid_canonical_lower, msg_decode_lower_cases_ids, trace_context,
	    msg_customer_and_body, log_lines_escape_outside_bytes,
	    log_visible_escapes_any_bytes, mq_hosts_good,
	    mq_hosts_round_robin, lease_clock_not_behind_monotonic, rows_texts,
	    rows_chunks, pruner_paces_whole_chunks,
	    pruner_pause_arithmetic, NULL };
	Suite *s = suite_create("common");
	TCase *tc = suites_case(s, "common", 0, NULL, NULL, common);

	tcase_add_loop_test(tc, cfg_bad_int, 0,
	    (int)(sizeof(bad_ports) / sizeof(bad_ports[0])));
	tcase_add_loop_test(tc, mq_hosts_bad, 0,
	    (int)(sizeof(bad_hosts) / sizeof(bad_hosts[0])));
	tcase_add_loop_test(tc, msg_decode_rejects, 0,
	    (int)(sizeof(bad_msgs) / sizeof(bad_msgs[0])));
	return s;
}
