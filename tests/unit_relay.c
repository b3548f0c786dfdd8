/*
 * unit_relay.c - unit tests of the relay's pure logic: batch bookkeeping
 * (bodies, invalid rows, the size cap, outcomes), the shortened
 * "Published messages" line, retention off, the configuration table,
 * the confirmed rows whose mark failed (unmarked.h).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/outbatch.h"
#include "relay/config.h"
#include "relay/posfifo.h"
#include "relay/retention.h"
#include "relay/unmarked.h"
#include "suites.h"
#include "unit.h"

Suite *unit_relay_suite(void);

#define ID(n) "00000000-0000-4000-8000-0000000000" #n
#define PAYLOAD "{\"id\":\"x\",\"name\":\"Zo\xc3\xab\"}"

static void
add_rows(struct outbatch *b, int n)
{
	char id[40];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d",
		    i + 1);
		ck_assert_int_eq(outbatch_add(b, i + 1, 0, id, strlen(id),
		    "CustomerCreated", 15, PAYLOAD, strlen(PAYLOAD), NULL, 0),
		    0);
	}
	outbatch_seal(b);
}

START_TEST(outbatch_builds_bodies)
{
	struct outbatch b;
	static const char want[] = "{\"id\":\"" ID(01) "\",\"event_name\":"
	    "\"CustomerCreated\",\"payload\":" PAYLOAD ",\"is_processed\":"
	    "false}";

	ck_assert_int_eq(outbatch_init(&b, 10), 0);
	add_rows(&b, 3);
	ck_assert_uint_eq(b.n, 3);
	ck_assert_uint_eq(b.nbad, 0);
	ck_assert_uint_eq(b.msgs[0].len, strlen(want));
	ck_assert(memcmp(b.msgs[0].body, want, strlen(want)) == 0);
	ck_assert_str_eq(b.msgs[0].message_id, ID(01));
	ck_assert_str_eq(b.msgs[2].message_id, ID(03));
	ck_assert_str_eq(b.msgs[1].type, "CustomerCreated");
	ck_assert_int_eq(b.msgs[2].seq, 3);
	ck_assert_int_eq(b.msgs[2].result, MQ_PENDING);
	/* Bodies sit side by side in one buffer. */
	ck_assert_ptr_eq(b.msgs[1].body, b.msgs[0].body + b.msgs[0].len);
	outbatch_reset(&b);
	ck_assert_uint_eq(b.n, 0);
	add_rows(&b, 1);
	ck_assert(memcmp(b.msgs[0].body, want, strlen(want)) == 0);
	outbatch_free(&b);
	outbatch_free(&b); /* twice: a freed batch is a zeroed batch */
}
END_TEST

START_TEST(outbatch_sets_aside_invalid_rows)
{
	struct outbatch b;

	ck_assert_int_eq(outbatch_init(&b, 10), 0);
	ck_assert_int_eq(outbatch_add(&b, 7, 2, "not-a-uuid", 10,
	    "CustomerCreated", 15, PAYLOAD, strlen(PAYLOAD), NULL, 0), 0);
	ck_assert_int_eq(outbatch_add(&b, 8, 0, ID(08), 36, "Bad Name", 8,
	    PAYLOAD, strlen(PAYLOAD), NULL, 0), 0);
	ck_assert_int_eq(outbatch_add(&b, 9, 0, ID(09), 36, "CustomerCreated", 15,
	    "", 0, NULL, 0), 0);
	ck_assert_int_eq(outbatch_add(&b, 10, 0, ID(10), 36, "CustomerCreated", 15,
	    PAYLOAD, strlen(PAYLOAD), NULL, 0), 0);
	outbatch_seal(&b);
	ck_assert_uint_eq(b.n, 1);
	ck_assert_uint_eq(b.nbad, 3);
	ck_assert_int_eq(b.bad[0].seq, 7);
	ck_assert_uint_eq(b.bad[0].attempts, 2);
	ck_assert_str_eq(b.bad[0].reason, "message_id is not a UUID");
	ck_assert_str_eq(b.bad[1].reason, "invalid event_name");
	ck_assert_str_eq(b.bad[2].reason, "empty payload");
	ck_assert_str_eq(b.msgs[0].message_id, ID(10));
	outbatch_free(&b);
}
END_TEST

START_TEST(outbatch_stops_when_full)
{
	struct outbatch b;

	ck_assert_int_eq(outbatch_init(&b, 2), 0);
	add_rows(&b, 2);
	ck_assert_int_eq(outbatch_add(&b, 3, 0, ID(03), 36, "CustomerCreated", 15,
	    PAYLOAD, strlen(PAYLOAD), NULL, 0), -1);
	ck_assert_int_eq(b.full, 1);
	ck_assert_uint_eq(b.n, 2);
	outbatch_reset(&b);
	ck_assert_int_eq(b.full, 0);
	outbatch_free(&b);
}
END_TEST

START_TEST(outbatch_refuses_bodies_over_the_cap)
{
	size_t big = OUTBATCH_BODIES_MAX / 2;
	struct outbatch b;
	char *p = malloc(big + 3);

	ck_assert_ptr_nonnull(p);
	memset(p, ' ', big + 2);
	p[0] = '{';
	p[big + 1] = '}';
	p[big + 2] = '\0';
	ck_assert_int_eq(outbatch_init(&b, 10), 0);
	ck_assert_int_eq(outbatch_add(&b, 1, 0, ID(01), 36, "CustomerCreated", 15,
	    p, big + 2, NULL, 0), 0);
	ck_assert_uint_eq(b.n, 1);
	/* A second one does not fit: left for the next batch, the first
	 * body untouched. */
	ck_assert_int_eq(outbatch_add(&b, 2, 0, ID(02), 36, "CustomerCreated", 15,
	    p, big + 2, NULL, 0), -1);
	ck_assert_int_eq(b.full, 1);
	ck_assert_uint_eq(b.n, 1);
	outbatch_seal(&b);
	ck_assert_uint_eq(b.bodies.len, b.msgs[0].len);
	outbatch_reset(&b);
	/* Alone over the cap: it can never be sent, so it is set aside. */
	memset(p, ' ', big + 2);
	free(p);
	p = malloc(OUTBATCH_BODIES_MAX + 3);
	ck_assert_ptr_nonnull(p);
	memset(p, ' ', OUTBATCH_BODIES_MAX + 2);
	p[0] = '{';
	p[OUTBATCH_BODIES_MAX + 1] = '}';
	ck_assert_int_eq(outbatch_add(&b, 3, 0, ID(03), 36, "CustomerCreated", 15,
	    p, OUTBATCH_BODIES_MAX + 2, NULL, 0), 0);
	ck_assert_uint_eq(b.n, 0);
	ck_assert_uint_eq(b.nbad, 1);
	ck_assert_str_eq(b.bad[0].reason, "message body too large");
	free(p);
	outbatch_free(&b);
}
END_TEST

START_TEST(outbatch_continues_the_trace)
{
	static const char parent[] =
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	struct outbatch b;

	ck_assert_int_eq(outbatch_init(&b, 10), 0);
	ck_assert_int_eq(outbatch_add(&b, 1, 0, ID(01), 36, "CustomerCreated", 15,
	    PAYLOAD, strlen(PAYLOAD), parent, strlen(parent)), 0);
	ck_assert_int_eq(outbatch_add(&b, 2, 0, ID(02), 36, "CustomerCreated", 15,
	    PAYLOAD, strlen(PAYLOAD), "00-garbage", 10), 0);
	ck_assert_int_eq(outbatch_add(&b, 3, 0, ID(03), 36, "CustomerCreated", 15,
	    PAYLOAD, strlen(PAYLOAD), NULL, 0), 0);
	outbatch_seal(&b);
	/* Same trace and flags, a span of the relay's own. */
	ck_assert_ptr_nonnull(b.msgs[0].traceparent);
	ck_assert_int_eq(trace_valid(b.msgs[0].traceparent,
	    strlen(b.msgs[0].traceparent)), 0);
	ck_assert(memcmp(b.msgs[0].traceparent, parent, 36) == 0);
	ck_assert(memcmp(b.msgs[0].traceparent + 36, parent + 36, 16) != 0);
	ck_assert_str_eq(b.msgs[0].traceparent + 52, "-01");
	/* Set by poll.c from the row, for the lag metric only. */
	ck_assert(b.rows[0].created == 0);
	ck_assert_ptr_null(b.msgs[1].traceparent);
	ck_assert_ptr_null(b.msgs[2].traceparent);
	outbatch_free(&b);
}
END_TEST

START_TEST(outbatch_tallies_outcomes)
{
	struct outbatch_tally t;
	struct outbatch b;

	ck_assert_int_eq(outbatch_init(&b, 10), 0);
	add_rows(&b, 5);
	b.msgs[0].result = MQ_ACKED;
	b.msgs[1].result = MQ_NACKED;
	b.msgs[2].result = MQ_RETURNED;
	b.msgs[3].result = MQ_ACKED;
	outbatch_tally(&b, &t);
	ck_assert_uint_eq(t.acked, 2);
	ck_assert_uint_eq(t.nacked, 1);
	ck_assert_uint_eq(t.returned, 1);
	ck_assert_uint_eq(t.pending, 1);
	ck_assert_str_eq(outbatch_result_reason(MQ_NACKED),
	    "nacked by the broker");
	ck_assert_str_eq(outbatch_result_reason(MQ_RETURNED),
	    "returned by the broker: unroutable");
	outbatch_free(&b);
}
END_TEST

/* ---- the log line ---- */

static void
line_of(struct outbatch *b, size_t max_ids, char *out, size_t outlen)
{
	struct buf l;

	buf_init(&l, 1 << 20);
	ck_assert_int_eq(outbatch_log_line(b, max_ids, &l), 0);
	snprintf(out, outlen, "%s", l.data);
	buf_free(&l);
}

START_TEST(log_line_lists_acked_ids)
{
	struct outbatch b;
	char line[4096];
	size_t i;

	ck_assert_int_eq(outbatch_init(&b, 10), 0);
	add_rows(&b, 3);
	for (i = 0; i < 3; i++)
		b.msgs[i].result = MQ_ACKED;
	b.msgs[1].result = MQ_NACKED;
	line_of(&b, 10, line, sizeof(line));
	ck_assert_str_eq(line, "Published messages: [" ID(01) " " ID(03) "]");
	outbatch_free(&b);
}
END_TEST

START_TEST(log_line_shortened_with_a_count)
{
	struct outbatch b;
	char line[8192];
	size_t i;

	ck_assert_int_eq(outbatch_init(&b, 1000), 0);
	add_rows(&b, 1000);
	for (i = 0; i < 1000; i++)
		b.msgs[i].result = MQ_ACKED;
	line_of(&b, 2, line, sizeof(line));
	ck_assert_str_eq(line, "Published messages: [" ID(01) " " ID(02)
	    " ... (+998 more)]");
	line_of(&b, 0, line, sizeof(line));
	ck_assert_str_eq(line, "Published messages: [... (+1000 more)]");
	outbatch_reset(&b);
	add_rows(&b, 2);
	b.msgs[0].result = MQ_ACKED;
	b.msgs[1].result = MQ_ACKED;
	line_of(&b, 2, line, sizeof(line));
	ck_assert_str_eq(line, "Published messages: [" ID(01) " " ID(02) "]");
	outbatch_free(&b);
}
END_TEST

/* ---- retention ---- */

/* RELAY_RETENTION_HOURS=0 keeps every row: no pruner thread starts (its
 * sweeps are the integration tests'). */
START_TEST(retention_off_starts_no_pruner)
{
	struct relay_config c;
	int failed = 1;

	memset(&c, 0, sizeof(c));
	c.retention_hours = 0;
	c.retention_interval_s = 60;
	ck_assert_ptr_null(retention_start(&c, 0, &failed));
	ck_assert_int_eq(failed, 0);
	failed = 1;
	ck_assert_ptr_null(retention_start(&c, 1, &failed));
	ck_assert_int_eq(failed, 0);
}
END_TEST

/* ---- configuration ---- */

START_TEST(config_defaults)
{
	struct relay_config c;
	char err[256];

	unit_env_clear(relay_opts, relay_nopts);
	ck_assert_int_eq(relay_config_load(&c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.batch_size, 500);
	ck_assert_int_eq(c.inflight_batches, 4);
	ck_assert_int_eq(c.poll_ms, 20);
	ck_assert_int_eq(c.retention_hours, 24);
	ck_assert_str_eq(c.routing_key, MQ_QUEUE);
	ck_assert_str_eq(c.db.name, "outbox-demo");
	ck_assert_int_eq(c.mq.port, 5672);
	ck_assert_int_eq(c.metrics_port, 9465);
	ck_assert_str_eq(c.metrics_bind, "0.0.0.0");
}
END_TEST

START_TEST(config_errors_name_the_variable)
{
	static const struct {
		const char *name, *val;
	} bad[] = {
		{ "RELAY_BATCH_SIZE", "1001" },
		{ "RELAY_BATCH_SIZE", "0" },
		{ "RELAY_BATCH_SIZE", "12x" },
		{ "RELAY_INFLIGHT_BATCHES", "9" },
		{ "RELAY_INFLIGHT_BATCHES", "0" },
		{ "RELAY_POLL_MS", "" },
		{ "RELAY_RETENTION_HOURS", "-1" },
		{ "RELAY_RETRY_MAX_MS", "5" },
		{ "RABBITMQ_PORT", "65536" },
		{ "RELAY_METRICS_PORT", "65536" },
		{ "RELAY_METRICS_PORT", "-1" },
		{ "RELAY_MODE", "tail" },
		{ "RELAY_BINLOG_HEARTBEAT_MS", "50" },
		{ "RELAY_LEADER_TIMEOUT_S", "1" },
	};
	struct relay_config c;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unit_env_clear(relay_opts, relay_nopts);
		setenv(bad[i].name, bad[i].val, 1);
		ck_assert_int_eq(relay_config_load(&c, err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, bad[i].name) != NULL, "%s=%s: %s",
		    bad[i].name, bad[i].val, err);
	}
	unit_env_clear(relay_opts, relay_nopts);
	setenv("RELAY_BATCH_SIZE", "1000", 1);
	ck_assert_int_eq(relay_config_load(&c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.batch_size, RELAY_BATCH_MAX);
	unit_env_clear(relay_opts, relay_nopts);
}
END_TEST

/* The binlog mode's leader timeout must outlast a wait for confirms
 * (the lock's session is idle meanwhile); the poll mode does not care. */
START_TEST(config_leader_timeout_outlasts_the_confirm_wait)
{
	struct relay_config c;
	char err[256];

	unit_env_clear(relay_opts, relay_nopts);
	ck_assert_int_eq(relay_config_load(&c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.mode, RELAY_MODE_POLL);
	ck_assert_int_eq(c.leader_timeout_s, 15);
	setenv("RELAY_MODE", "binlog", 1);
	ck_assert_int_eq(relay_config_load(&c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.mode, RELAY_MODE_BINLOG);
	setenv("RELAY_LEADER_TIMEOUT_S", "13", 1);
	ck_assert_int_eq(relay_config_load(&c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "RELAY_LEADER_TIMEOUT_S") != NULL &&
	    strstr(err, "RELAY_CONFIRM_TIMEOUT_MS") != NULL, "%s", err);
	setenv("RELAY_CONFIRM_TIMEOUT_MS", "2000", 1);
	setenv("RELAY_LEADER_TIMEOUT_S", "3", 1);
	ck_assert_int_eq(relay_config_load(&c, err, sizeof(err)), 0);
	setenv("RELAY_MODE", "poll", 1);
	setenv("RELAY_LEADER_TIMEOUT_S", "2", 1);
	setenv("RELAY_CONFIRM_TIMEOUT_MS", "60000", 1);
	ck_assert_int_eq(relay_config_load(&c, err, sizeof(err)), 0);
	unit_env_clear(relay_opts, relay_nopts);
}
END_TEST

/* Batches done in order: the position is the last one's, its seq the
 * highest of all; rowless ends of transactions move it too. */
START_TEST(posfifo_moves_over_done_batches)
{
	struct posfifo f;

	ck_assert_int_eq(posfifo_init(&f, 8), 0);
	ck_assert_int_eq(posfifo_advance(&f), 0);
	ck_assert_int_eq(f.have_pos, 0);
	ck_assert_uint_ne(posfifo_push(&f, 1, "0-1-10", 5, 0), 0);
	ck_assert_uint_ne(posfifo_push(&f, 1, "0-1-11", 9, 0), 0);
	ck_assert_uint_ne(posfifo_push(&f, 1, "0-1-12", -1, 0), 0);
	/* Merged: none holds a pending message. */
	ck_assert_uint_eq(f.len, 1);
	ck_assert_int_eq(posfifo_advance(&f), 1);
	ck_assert_str_eq(f.pos, "0-1-12");
	ck_assert_int_eq(f.pos_seq, 9);
	ck_assert_int_eq(posfifo_advance(&f), 0);
	posfifo_free(&f);
}
END_TEST

/* A batch with a message waiting for its retry holds back the position,
 * and every batch after it, until that message is done; a batch that
 * ended mid-transaction moves the seq only with the next position. */
START_TEST(posfifo_never_passes_a_pending_message)
{
	struct posfifo f;
	uint64_t held;

	ck_assert_int_eq(posfifo_init(&f, 8), 0);
	posfifo_set(&f, "0-1-1", 1);
	ck_assert_uint_ne(posfifo_push(&f, 1, "0-1-2", 2, 0), 0);
	held = posfifo_push(&f, 1, "0-1-3", 4, 2);
	ck_assert_uint_ne(held, 0);
	ck_assert_uint_ne(posfifo_push(&f, 1, "0-1-4", 6, 0), 0);
	ck_assert_int_eq(posfifo_advance(&f), 1);
	ck_assert_str_eq(f.pos, "0-1-2");
	ck_assert_int_eq(f.pos_seq, 2);
	posfifo_done(&f, held);
	ck_assert_int_eq(posfifo_advance(&f), 0);
	ck_assert_str_eq(f.pos, "0-1-2");
	posfifo_done(&f, held);
	/* Mid-transaction batches: seq 8 and 10 done, no position yet. */
	ck_assert_uint_ne(posfifo_push(&f, 0, NULL, 8, 0), 0);
	ck_assert_uint_ne(posfifo_push(&f, 0, NULL, 10, 1), 0);
	ck_assert_int_eq(posfifo_advance(&f), 1);
	ck_assert_str_eq(f.pos, "0-1-4");
	ck_assert_int_eq(f.pos_seq, 6);
	ck_assert_uint_ne(posfifo_push(&f, 1, "0-1-5", 11, 0), 0);
	ck_assert_int_eq(posfifo_advance(&f), 0);
	posfifo_done(&f, f.e[(f.head) % f.cap].id);
	ck_assert_int_eq(posfifo_advance(&f), 1);
	ck_assert_str_eq(f.pos, "0-1-5");
	ck_assert_int_eq(f.pos_seq, 11);
	/* An id cleared away is ignored. */
	posfifo_done(&f, held);
	posfifo_free(&f);
}
END_TEST

/* Full: the push says so (the caller reads no more); the ring wraps
 * over many batches; clearing keeps the position. */
START_TEST(posfifo_bounded_and_wraps)
{
	struct posfifo f;
	char g[32];
	uint64_t id[4];
	int i;

	ck_assert_int_eq(posfifo_init(&f, 4), 0);
	for (i = 0; i < 4; i++)
		ck_assert_uint_ne((id[i] = posfifo_push(&f, 1, "0-1-1", i, 1)),
		    0);
	ck_assert_uint_eq(posfifo_push(&f, 1, "0-1-2", 9, 1), 0);
	for (i = 0; i < 4; i++)
		posfifo_done(&f, id[i]);
	ck_assert_int_eq(posfifo_advance(&f), 1);
	ck_assert_uint_eq(f.len, 0);
	for (i = 0; i < 10000; i++) {
		snprintf(g, sizeof(g), "0-1-%d", 100 + i);
		id[0] = posfifo_push(&f, 1, g, 100 + i, 1);
		ck_assert_uint_ne(id[0], 0);
		posfifo_done(&f, id[0]);
		ck_assert_int_eq(posfifo_advance(&f), 1);
		ck_assert_str_eq(f.pos, g);
	}
	ck_assert_int_eq(f.pos_seq, 10099);
	ck_assert_uint_ne(posfifo_push(&f, 1, "0-1-99999", 99999, 1), 0);
	posfifo_clear(&f);
	ck_assert_uint_eq(f.len, 0);
	ck_assert_int_eq(posfifo_advance(&f), 0);
	ck_assert_str_eq(f.pos, "0-1-10099");
	posfifo_forget(&f);
	ck_assert_int_eq(f.have_pos, 0);
	posfifo_free(&f);
}
END_TEST

/* Confirmed rows whose mark failed: kept sorted and unique, forgotten by
 * value or from the lowest (the marks made at stop), the oldest half
 * dropped when full. */
START_TEST(unmarked_keeps_sorted_and_forgets)
{
	static const int64_t a[] = { 30, 10, 20, 10 }, gone[] = { 20, 99 };
	struct unmarked u;
	int64_t many[16];
	int i;

	ck_assert_int_eq(unmarked_init(&u, 8), 0);
	unmarked_add(&u, a, 4);
	ck_assert_uint_eq(u.n, 3);
	ck_assert_int_eq(u.seq[0], 10);
	ck_assert_int_eq(u.seq[2], 30);
	ck_assert(unmarked_has(&u, 20));
	unmarked_del(&u, gone, 2);
	ck_assert_uint_eq(u.n, 2);
	ck_assert(!unmarked_has(&u, 20));
	unmarked_forget_first(&u, 1);
	ck_assert_uint_eq(u.n, 1);
	ck_assert_int_eq(u.seq[0], 30);
	unmarked_forget_first(&u, 5);
	ck_assert_uint_eq(u.n, 0);
	ck_assert(!unmarked_has(&u, 30));
	for (i = 0; i < 16; i++)
		many[i] = 100 + i;
	unmarked_add(&u, many, 16);
	ck_assert_uint_le(u.n, 8);
	/* The newest are kept. */
	ck_assert(unmarked_has(&u, 115));
	ck_assert(!unmarked_has(&u, 100));
	for (i = 1; i < (int)u.n; i++)
		ck_assert_int_lt(u.seq[i - 1], u.seq[i]);
	unmarked_free(&u);
}
END_TEST

Suite *
unit_relay_suite(void)
{
	const TTest *const relay[] = { outbatch_builds_bodies,
	    outbatch_sets_aside_invalid_rows, outbatch_stops_when_full,
	    outbatch_refuses_bodies_over_the_cap, outbatch_continues_the_trace,
	    outbatch_tallies_outcomes, log_line_lists_acked_ids,
	    log_line_shortened_with_a_count, retention_off_starts_no_pruner, config_defaults,
	    config_errors_name_the_variable,
	    config_leader_timeout_outlasts_the_confirm_wait,
	    posfifo_moves_over_done_batches,
	    posfifo_never_passes_a_pending_message, posfifo_bounded_and_wraps,
	    unmarked_keeps_sorted_and_forgets, NULL };
	Suite *s = suite_create("relay");

	suites_case(s, "relay", 0, NULL, NULL, relay);
	return s;
}
