/*
 * it_relay_publish.c - what outbox-relay publishes, against the real
 * MariaDB and RabbitMQ: the messages on the wire (bodies, properties,
 * order, trace), a late commit of a lower seq, two relays on 20,000 rows,
 * refused messages (real nacks, unroutable and deleted queues) retried
 * until accepted, the retention of published rows, and the fence that
 * stops a binlog leader's batch at the end of its lease.  Its faults
 * (outages, kill -9, SIGTERM) are in it_relay_faults.c.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "harness_relay.h"
#include "suites.h"

Suite *it_relay_publish_suite(void);

/* ---- the messages on the wire ---- */

struct wire {
	int n;
	char id[40][40];
	char trace[40][64]; /* the row's traceparent, "" for none */
	char body[40][1024];
	long long seq[40];
	int got;
	int bad_order;
	long long last_seq;
	time_t t0;
	char err[512];
};

static void
wire_fn(void *ud, const struct mq_delivery *d)
{
	struct wire *w = ud;
	int i = w->got++;

	if (w->err[0] != '\0')
		return;
	if (i >= w->n) {
		snprintf(w->err, sizeof(w->err), "extra message %s",
		    d->message_id);
		return;
	}
	if (d->seq <= w->last_seq)
		w->bad_order = 1;
	w->last_seq = d->seq;
	if (strcmp(d->message_id, w->id[i]) != 0)
		snprintf(w->err, sizeof(w->err), "message %d: id %s, want %s",
		    i, d->message_id, w->id[i]);
	else if (d->len != strlen(w->body[i]) ||
	    memcmp(d->body, w->body[i], d->len) != 0)
		snprintf(w->err, sizeof(w->err), "message %d: body %.*s, want "
		    "%s", i, (int)d->len, d->body, w->body[i]);
	else if (strcmp(d->content_type, "application/json") != 0)
		snprintf(w->err, sizeof(w->err), "content_type %s",
		    d->content_type);
	else if (strcmp(d->type, H_EVENT) != 0)
		snprintf(w->err, sizeof(w->err), "type %s", d->type);
	else if (d->delivery_mode != 2)
		snprintf(w->err, sizeof(w->err), "delivery_mode %d",
		    d->delivery_mode);
	else if (d->seq != w->seq[i])
		snprintf(w->err, sizeof(w->err), "x-outbox-seq %lld, want %lld",
		    (long long)d->seq, w->seq[i]);
	else if ((time_t)d->timestamp < w->t0 - 5 ||
	    (time_t)d->timestamp > time(NULL) + 5)
		snprintf(w->err, sizeof(w->err), "timestamp %llu",
		    (unsigned long long)d->timestamp);
	else if (w->trace[i][0] == '\0' && d->traceparent[0] != '\0')
		snprintf(w->err, sizeof(w->err), "message %d: traceparent %s, "
		    "want none", i, d->traceparent);
	/* The relay's span continues the row's trace: same trace id and
	 * flags, another parent id. */
	else if (w->trace[i][0] != '\0' && (strlen(d->traceparent) != 55 ||
	    memcmp(d->traceparent, w->trace[i], 36) != 0 ||
	    memcmp(d->traceparent + 36, w->trace[i] + 36, 16) == 0 ||
	    strcmp(d->traceparent + 52, w->trace[i] + 52) != 0))
		snprintf(w->err, sizeof(w->err), "message %d: traceparent %s "
		    "does not continue %s", i, d->traceparent, w->trace[i]);
}

START_TEST(rows_in_messages_out)
{
	static const char *const payloads[] = {
	    "{\"id\":\"22222222-0000-4000-8000-%012d\",\"email\":"
	    "\"a%d@example.com\",\"name\":\"Zo\xc3\xab\",\"CreatedAt\":"
	    "\"2021-08-04T09:37:07.305317Z\",\"UpdatedAt\":"
	    "\"2021-08-04T09:37:07.305317Z\"}",
	    "{\"id\":\"22222222-0000-4000-8000-%012d\",\"email\":"
	    "\"b%d@example.com\",\"name\":\"q\\\" b\\\\ t\\t u\\u00e9 "
	    "\xf0\x9f\x98\x80\",\"CreatedAt\":\"2021-08-04T09:37:07Z\","
	    "\"UpdatedAt\":\"2021-08-04T09:37:07Z\"}",
	    "{\"id\": \"22222222-0000-4000-8000-%012d\", \"email\": "
	    "\"c%d@example.com\", \"name\": \"spaced\", \"CreatedAt\": "
	    "\"2021-08-04T09:37:07.000001Z\", \"UpdatedAt\": "
	    "\"2021-08-04T09:37:07.000001Z\"}",
	};
	static struct wire w;
	struct h_daemon d = { 0 };
	struct db_val a[3];
	char payload[512], want[128], id[40];
	int i;

	memset(&w, 0, sizeof(w));
	w.n = 30;
	w.t0 = time(NULL);
	for (i = 0; i < w.n; i++) {
		snprintf(id, sizeof(id), "a%07u-0000-4000-8000-%012u",
		    (unsigned)i % 10000000u, (unsigned)i % 10000000u);
		memcpy(w.id[i], id, sizeof(id));
		snprintf(payload, sizeof(payload), payloads[i % 3], i, i);
		snprintf(w.body[i], sizeof(w.body[i]), "{\"id\":\"%s\","
		    "\"event_name\":\"" H_EVENT "\",\"payload\":%s,"
		    "\"is_processed\":false}", id, payload);
		if (i % 2 == 0)
			snprintf(w.trace[i], sizeof(w.trace[i]), "00-%032x-"
			    "00f067aa0ba902b7-01", (unsigned)i + 1);
		a[0] = DB_STR(w.id[i]);
		a[1] = DB_STR(payload);
		a[2] = i % 2 == 0 ? DB_STR(w.trace[i]) : DB_NULL;
		ck_assert_int_eq(db_exec(h_db(), "INSERT INTO outbox "
		    "(message_id, event_name, payload, traceparent, "
		    "created_at) VALUES (?, '" H_EVENT "', ?, ?, "
		    "UTC_TIMESTAMP(6))", a, 3, NULL), DB_OK);
		w.seq[i] = h_count("SELECT seq FROM outbox WHERE message_id "
		    "= ?", a, 1);
	}
	H_START(&d, H_RELAY, NULL, NULL);
	h_rows_wait_all_published(60000);
	ck_assert_int_eq(h_rows_published(), w.n);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE attempts "
	    "<> 0 OR last_error IS NOT NULL", NULL, 0), 0);
	ck_assert_int_eq((int)h_mq_collect(MQ_QUEUE, (size_t)w.n, 30000,
	    wire_fn, &w), w.n);
	ck_assert_msg(w.err[0] == '\0', "%s", w.err);
	ck_assert_msg(!w.bad_order, "messages out of sequence order");
	ck_assert_int_eq(h_mq_depth(MQ_QUEUE), 0);

	h_stop_clean(&d);
	snprintf(want, sizeof(want), "Published messages: [%s ", w.id[0]);
	ck_assert(h_log_contains(&d, want));
	ck_assert(h_log_contains(&d, "config: "));
	ck_assert(h_log_contains(&d, "RELAY_BATCH_SIZE=500"));
	/* Each setting is logged once: masked, the passwords are not. */
	ck_assert(h_log_contains(&d, " DB_PASS=*** "));
	ck_assert(h_log_contains(&d, " RABBITMQ_PASS=*** "));
}
END_TEST

/* A row with a lower seq whose transaction commits after a later row's
 * is still published (rows are chosen by state, not by "seq above the
 * last one seen"). */
START_TEST(late_commit_of_lower_seq_published)
{
	static const char ins[] = "INSERT INTO outbox (message_id, "
	    "event_name, payload, created_at) VALUES (?, '" H_EVENT "', "
	    "'{\"id\":\"x\"}', UTC_TIMESTAMP(6))";
	struct db_params p;
	struct h_daemon d = { 0 };
	struct db_val a;
	struct h_seen s;
	db_conn *late;

	h_db_params(&p);
	late = db_new(&p);
	ck_assert_ptr_nonnull(late);
	H_START(&d, H_RELAY, NULL, NULL);
	ck_assert_int_eq(db_begin(late), DB_OK);
	a = DB_STR(H_ID_PREFIX "000000000001");
	ck_assert_int_eq(db_exec(late, ins, &a, 1, NULL), DB_OK);
	a = DB_STR(H_ID_PREFIX "000000000002");
	ck_assert_int_eq(db_exec(h_db(), ins, &a, 1, NULL), DB_OK);
	ck_assert(h_count("SELECT MAX(seq) FROM outbox", NULL, 0) >= 2);
	h_rows_wait_published(1, 30000);
	ck_assert_int_eq(h_mq_depth(MQ_QUEUE), 1);
	ck_assert_int_eq(db_commit(late), DB_OK);
	h_rows_wait_published(2, 30000);
	h_seen_init(&s, 2);
	ck_assert_int_eq((int)h_mq_collect(MQ_QUEUE, 2, 30000, h_seen_fn, &s),
	    2);
	ck_assert_int_eq(s.count[1], 1);
	ck_assert_int_eq(s.count[2], 1);
	h_seen_free(&s);
	db_free(late);
	h_stop_clean(&d);
}
END_TEST

/* ---- two relays at once ---- */

START_TEST(two_relays_no_duplicates)
{
	enum { N = 20000 };
	struct h_daemon a = { 0 }, b = { 0 };

	h_rows_insert(1, N);
	H_START(&a, H_RELAY, "a", NULL);
	H_START(&b, H_RELAY, "b", NULL);
	h_rows_wait_all_published(90000);
	h_stop_clean(&a);
	h_stop_clean(&b);
	ck_assert_int_eq(h_mq_depth(MQ_QUEUE), N);
	ck_assert_int_eq(h_rows_check_queue(MQ_QUEUE, N), 0);
	fprintf(stderr, "two relays: %d and %d batches\n",
	    h_log_count(&a, "Published messages"),
	    h_log_count(&b, "Published messages"));
	ck_assert(h_log_contains(&a, "Published messages"));
	ck_assert(h_log_contains(&b, "Published messages"));
}
END_TEST

/* ---- refused messages ---- */

#define NACK_POLICY "relay-test-nack"

static int
policy_applied(void *ud)
{
	char out[4096];

	(void)ud;
	if (h_mq_ctl("-q list_queues name policy", out, sizeof(out)) != 0)
		return 0;
	return strstr(out, MQ_QUEUE "\t" NACK_POLICY) != NULL;
}

static long long
refused(const char *reason)
{
	struct db_val a = DB_STR(reason);

	return h_count("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL "
	    "AND attempts >= 1 AND last_error = ?", &a, 1);
}

struct nack_state {
	long long published, nacked;
};

static int
nack_settled(void *ud)
{
	struct nack_state *st = ud;

	st->published = h_rows_published();
	st->nacked = refused("nacked by the broker");
	return st->published == 5 && st->nacked == 15;
}

static int
nacked_often(void *ud)
{
	(void)ud;
	return h_count("SELECT COUNT(*) FROM outbox WHERE attempts >= 3",
	    NULL, 0) > 0;
}

/* A nack is the broker's state (a full queue, a quorum queue between
 * leaders), never the message's fault: nacked rows are tried again for as
 * long as it lasts, never parked, whatever RELAY_MAX_ATTEMPTS says (the
 * rows here are nacked many more times than 2). */
START_TEST(nacked_rows_retried_until_accepted)
{
	static const char *const env[] = { "RELAY_RETRY_BASE_MS=100",
	    "RELAY_RETRY_MAX_MS=400", "RELAY_MAX_ATTEMPTS=2", NULL };
	struct nack_state st;
	struct h_daemon d = { 0 };

	h_mq_ctl("-q clear_policy " NACK_POLICY, NULL, 0);
	/* Priority 1: over the queue's own policy (outbox-lazy, priority
	 * 0, scripts/rabbitmq-definitions.json), which it replaces. */
	ck_assert_int_eq(h_mq_ctl("-q set_policy --apply-to queues "
	    "--priority 1 " NACK_POLICY " '^" MQ_QUEUE "$' "
	    "'{\"max-length\":5,\"overflow\":\"reject-publish\"}'", NULL, 0),
	    0);
	ck_assert_msg(h_wait(60000, policy_applied, NULL),
	    "policy not applied to queue " MQ_QUEUE);
	H_START(&d, H_RELAY, NULL, env);
	h_rows_insert(1, 20);
	ck_assert_msg(h_wait(60000, nack_settled, &st), "published %lld "
	    "(want 5), nacked %lld (want 15)", st.published, st.nacked);
	ck_assert_int_eq(h_mq_depth(MQ_QUEUE), 5);
	ck_assert(h_log_contains(&d, "nacked"));
	/* Nacked again and again, beyond RELAY_MAX_ATTEMPTS, not parked. */
	ck_assert_msg(h_wait(60000, nacked_often, NULL), "no row nacked "
	    "3 times");
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE "
	    "parked_at IS NOT NULL", NULL, 0), 0);
	/* The cause goes away: the same rows go out. */
	ck_assert_int_eq(h_mq_ctl("-q clear_policy " NACK_POLICY, NULL, 0), 0);
	h_rows_wait_all_published(60000);
	ck_assert_int_eq(h_rows_check_queue(MQ_QUEUE, 20), 0);
	h_stop_clean(&d);
}
END_TEST

static void
policy_clear(void)
{
	h_mq_ctl("-q clear_policy " NACK_POLICY, NULL, 0);
}

#define LOST_QUEUE "relay-test-unroutable"

static int
ten_returned(void *ud)
{
	(void)ud;
	return refused("returned by the broker: unroutable") == 10;
}

START_TEST(unroutable_rows_retried_until_routable)
{
	static const char *const env[] = { "RELAY_RETRY_BASE_MS=100",
	    "RELAY_RETRY_MAX_MS=400", "RELAY_ROUTING_KEY=" LOST_QUEUE, NULL };
	struct h_daemon d = { 0 };
	mq_conn *c = h_mq_open();

	ck_assert_int_eq(mq_queue_delete(c, LOST_QUEUE), 0);
	H_START(&d, H_RELAY, NULL, env);
	h_rows_insert(1, 10);
	ck_assert_msg(h_wait(60000, ten_returned, NULL), "%lld rows returned, "
	    "want 10", refused("returned by the broker: unroutable"));
	ck_assert_int_eq(h_rows_published(), 0);
	ck_assert(h_log_contains(&d, "returned as unroutable"));
	/* A queue appears under the routing key: the rows go out. */
	ck_assert_int_eq(mq_queue_declare(c, LOST_QUEUE), 0);
	h_rows_wait_all_published(60000);
	ck_assert_int_eq(h_rows_check_queue(LOST_QUEUE, 10), 0);
	h_stop_clean(&d);
	ck_assert_int_eq(mq_queue_delete(c, LOST_QUEUE), 0);
	mq_free(c);
}
END_TEST

/* Regression: a queue deleted under a running relay made every message
 * unroutable until a restart; the relay now declares its topology again
 * after a return. */
START_TEST(deleted_queue_declared_again)
{
	static const char *const env[] = { "RELAY_RETRY_BASE_MS=100",
	    "RELAY_RETRY_MAX_MS=400", NULL };
	struct h_daemon d = { 0 };
	mq_conn *c = h_mq_open();

	H_START(&d, H_RELAY, NULL, env);
	h_rows_insert(1, 5);
	h_rows_wait_published(5, 30000);
	ck_assert_int_eq(mq_queue_delete(c, MQ_QUEUE), 0);
	mq_free(c);
	h_rows_insert(6, 5);
	h_rows_wait_all_published(60000);
	/* The first try of rows 6..10 came back; the second went through. */
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE seq > 5 "
	    "AND attempts = 1 AND last_error LIKE 'returned%'", NULL, 0), 5);
	ck_assert_int_eq(h_mq_depth(MQ_QUEUE), 5);
	h_stop_clean(&d);
}
END_TEST

/* ---- retention ---- */

static int
old_rows_gone(void *ud)
{
	(void)ud;
	return h_count("SELECT COUNT(*) FROM outbox WHERE published_at < "
	    "UTC_TIMESTAMP(6) - INTERVAL 24 HOUR", NULL, 0) == 0 &&
	    h_rows_unpublished() == 0;
}

static void
retention_rows(void)
{
	h_rows_insert(1, 1200);
	h_sql("UPDATE outbox SET published_at = UTC_TIMESTAMP(6) - INTERVAL "
	    "48 HOUR");
	h_rows_insert(1201, 10);
	h_sql("UPDATE outbox SET published_at = UTC_TIMESTAMP(6) - INTERVAL 1 "
	    "HOUR WHERE seq > 1200");
	h_rows_insert(1211, 5);
}

START_TEST(retention_deletes_old_published_rows)
{
	static const char *const env[] = { "RELAY_RETENTION_HOURS=24", NULL };
	struct h_daemon d = { 0 };

	retention_rows();
	H_START(&d, H_RELAY, NULL, env);
	ck_assert(h_wait(60000, old_rows_gone, NULL));
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox", NULL, 0), 15);
	ck_assert(h_wait_log(&d, "pruned 1200 published rows older than 24 h", 1,
	    30000));
	h_stop_clean(&d);
}
END_TEST

START_TEST(retention_zero_keeps_rows)
{
	static const char *const env[] = { "RELAY_RETENTION_HOURS=0", NULL };
	struct h_daemon d = { 0 };

	retention_rows();
	H_START(&d, H_RELAY, NULL, env);
	/* Retention runs before each batch: had it been on, the first
	 * chunk would be gone by the time the new rows are published. */
	h_rows_wait_all_published(60000);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox", NULL, 0),
	    1215);
	h_stop_clean(&d);
	ck_assert(!h_log_contains(&d, "pruned "));
}
END_TEST

/* The retention's chunk delete under way: the DELETE itself, or the
 * statement of the test's trigger on it (the process list shows the
 * trigger's statement while it runs, which is most of a slowed chunk). */
static const char sweeping_sql[] = "SELECT COUNT(*) FROM "
    "information_schema.PROCESSLIST WHERE INFO LIKE 'DELETE FROM outbox%' "
    "OR INFO LIKE 'SET @test_slow%'";

static void
retention_teardown(void)
{
	/* retention_sweep_does_not_hold_publishing's, however it ended. */
	h_sql("DROP TRIGGER IF EXISTS test_outbox_slow_delete");
}

/* A test that fails ends before its checked teardown (seen: the trigger
 * of a failed run slowed the next run's sweep past its deadline): the
 * setup drops it too. */
static void
retention_setup(void)
{
	retention_teardown();
	h_rows_reset();
}

/* A retention sweep runs beside publishing, not between its batches:
 * 3,000 rows two days old are deleted 100 at a time, each chunk slowed to
 * 5 s or more (a test trigger sleeps 50 ms per deleted row); meanwhile
 * five new rows, inserted one at a time, are each published within
 * 500 ms. */
START_TEST(retention_sweep_does_not_hold_publishing)
{
	static const char *const env[] = { "RELAY_RETENTION_HOURS=24", NULL };
	struct h_daemon d = { 0 };
	long long t0, ms;
	size_t got;
	int i;

	h_rows_insert(1, 3000);
	h_sql("UPDATE outbox SET published_at = UTC_TIMESTAMP(6) - INTERVAL "
	    "48 HOUR");
	h_sql("DROP TRIGGER IF EXISTS test_outbox_slow_delete");
	h_sql("CREATE TRIGGER test_outbox_slow_delete BEFORE DELETE ON outbox "
	    "FOR EACH ROW SET @test_slow = SLEEP(0.05)");
	H_START(&d, H_RELAY, NULL, env);
	ck_assert_msg(h_wait_count(sweeping_sql, 1, 30000), "no retention "
	    "sweep under way");
	for (i = 1; i <= 5; i++) {
		h_rows_insert(3000 + i, 1);
		t0 = clock_ms();
		got = h_mq_collect(MQ_QUEUE, 1, 10000, NULL, NULL);
		ms = clock_ms() - t0;
		ck_assert_msg(got == 1 && ms < 500, "row %d published after "
		    "%lld ms (%zu came) while the retention swept (log %s)",
		    3000 + i, ms, got, d.log);
	}
	/* It was still sweeping: the rows did not come between chunks. */
	ck_assert(h_wait_count(sweeping_sql, 1, 5000));
	h_sql("DROP TRIGGER IF EXISTS test_outbox_slow_delete");
	h_stop_clean(&d);
}
END_TEST

/* ---- the leader's fence ---- */

#define FENCE_QUEUE "relay-test-fence"

/* The broker's Erlang VM, found before the case (a stopped broker
 * answers no rabbitmqctl). */
static pid_t broker_pid;

static void
fence_setup(void)
{
	char out[64];

	ck_assert_int_eq(h_mq_ctl("eval 'os:getpid().'", out, sizeof(out)),
	    0);
	broker_pid = (pid_t)strtol(out + (out[0] == '"'), NULL, 10);
	ck_assert_int_gt(broker_pid, 1);
}

static void
fence_clear(void)
{
	if (broker_pid > 1)
		kill(broker_pid, SIGCONT);
}

/* ud: the clock_ms() at which the broker goes on. */
static void *
broker_wakes(void *ud)
{
	/* The publisher is stuck in a write meanwhile. */
	(void)h_wait(60000, h_clock_passed, ud);
	kill(broker_pid, SIGCONT);
	return NULL;
}

static int
depth_settled(void *ud)
{
	long long *last = ud, d = h_mq_depth(FENCE_QUEUE);
	int same = d >= 0 && d == *last;

	*last = d;
	return same;
}

/* The largest TCP buffer the kernel gives a socket (the last of the
 * three values of /proc/sys/net/ipv4/tcp_rmem or tcp_wmem), 64 MiB when
 * it cannot be read. */
static long long
tcp_buf_max(const char *name)
{
	char path[64];
	long long lo, def, max = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/%s", name);
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%lld %lld %lld", &lo, &def, &max) != 3)
			max = 0;
		fclose(f);
	}
	return max > 0 ? max : 64LL << 20;
}

/* mq_set_fence, the binlog leader's lease (relay/binlog_loop.c): a batch
 * whose sending outlasts the fence stops there.  The broker is frozen
 * (SIGSTOP) and so reads nothing: the batch (twice what the two sockets'
 * buffers can hold, and at least 96 MiB) stalls part way; the fence
 * passes meanwhile; once the broker goes on the rest is not sent.  The
 * call fails naming the fence, the queue holds what was written before
 * it (fewer than the batch).  A fence far ahead, or none, changes
 * nothing. */
START_TEST(publishing_stops_at_the_fence)
{
	enum { LEN = 64 * 1024, FENCE_MS = 1500 };
	long long bytes = 2 * (tcp_buf_max("tcp_rmem") +
	    tcp_buf_max("tcp_wmem"));
	size_t nmsg = (size_t)(bytes > (96LL << 20) ? bytes : 96LL << 20) / LEN;
	struct mq_msg *msgs = calloc(nmsg, sizeof(*msgs));
	char *body = malloc(LEN);
	long long wake;
	pthread_t t;
	long long depth = -1;
	mq_conn *c = h_mq_open();
	size_t i;
	int rc;

	ck_assert_ptr_nonnull(msgs);
	ck_assert_ptr_nonnull(body);
	memset(body, 'x', LEN);
	for (i = 0; i < nmsg; i++) {
		msgs[i].body = body;
		msgs[i].len = LEN;
		msgs[i].seq = (int64_t)i + 1;
	}
	ck_assert_int_eq(mq_queue_delete(c, FENCE_QUEUE), 0);
	ck_assert_int_eq(mq_queue_declare(c, FENCE_QUEUE), 0);
	mq_free(c);
	c = h_mq_open_confirm();

	/* None, then far ahead: every message confirmed. */
	ck_assert_msg(mq_publish_batch(c, "", FENCE_QUEUE, msgs, 8, 10000) ==
	    0, "%s", mq_error(c));
	mq_set_fence(c, clock_lease_ms() + 600000);
	ck_assert_msg(mq_publish_batch(c, "", FENCE_QUEUE, msgs, 8, 10000) ==
	    0, "%s", mq_error(c));
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(msgs[i].result, MQ_ACKED);
	ck_assert_int_eq(h_mq_depth(FENCE_QUEUE), 16);
	ck_assert_int_eq(mq_purge(c, FENCE_QUEUE, NULL), 0);

	/* Passed while the broker reads nothing. */
	mq_set_fence(c, clock_lease_ms() + FENCE_MS);
	wake = clock_ms() + FENCE_MS + 1000;
	ck_assert_int_eq(kill(broker_pid, SIGSTOP), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, broker_wakes, &wake), 0);
	rc = mq_publish_start(c, "", FENCE_QUEUE, msgs, nmsg);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(rc == -1, "the whole batch was sent past the fence");
	ck_assert_msg(mq_fenced(c), "not at the fence: %s", mq_error(c));
	ck_assert_msg(strstr(mq_error(c), "fence") != NULL, "%s", mq_error(c));
	ck_assert(!mq_is_connected(c));
	ck_assert_msg(h_wait(30000, depth_settled, &depth), "the queue's depth "
	    "does not settle");
	fprintf(stderr, "fence: %lld of %zu messages were written before it\n",
	    depth, nmsg);
	ck_assert_int_lt(depth, (long long)nmsg);

	/* A new connection keeps the fence; a new fence lifts it. */
	ck_assert_int_eq(mq_connect(c, 1), 0);
	ck_assert_int_eq(mq_publish_start(c, "", FENCE_QUEUE, msgs, 1), -1);
	ck_assert(mq_fenced(c));
	ck_assert_int_eq(mq_connect(c, 1), 0);
	mq_set_fence(c, 0);
	ck_assert_msg(mq_publish_batch(c, "", FENCE_QUEUE, msgs, 1, 10000) ==
	    0, "%s", mq_error(c));
	ck_assert(!mq_fenced(c));
	ck_assert_int_eq(mq_queue_delete(c, FENCE_QUEUE), 0);
	mq_free(c);
	free(body);
	free(msgs);
}
END_TEST

Suite *
it_relay_publish_suite(void)
{
	const TTest *const wire[] = { rows_in_messages_out,
	    late_commit_of_lower_seq_published, NULL };
	const TTest *const two[] = { two_relays_no_duplicates, NULL };
	const TTest *const refused[] = { nacked_rows_retried_until_accepted,
	    unroutable_rows_retried_until_routable,
	    deleted_queue_declared_again, NULL };
	const TTest *const retention[] = {
	    retention_deletes_old_published_rows, retention_zero_keeps_rows,
	    retention_sweep_does_not_hold_publishing, NULL };
	const TTest *const fence[] = { publishing_stops_at_the_fence, NULL };
	Suite *s = suite_create("relay");

	suites_case(s, "publish", 90, h_rows_reset, NULL, wire);
	suites_case(s, "two relays", 180, h_rows_reset, NULL, two);
	tcase_add_unchecked_fixture(suites_case(s, "refused", 120,
	    h_rows_reset, NULL, refused), NULL, policy_clear);
	suites_case(s, "retention", 90, retention_setup, retention_teardown,
	    retention);
	tcase_add_unchecked_fixture(suites_case(s, "fence", 120, NULL, NULL,
	    fence), fence_setup, fence_clear);
	return s;
}
