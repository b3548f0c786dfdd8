/*
 * it_quorum.c - RABBITMQ_QUEUE_TYPE=quorum on the real (single) broker:
 * queues outbox and outbox.dlq are quorum queues here (the fixture
 * deletes the classic ones, the daemons declare theirs; the teardown
 * puts the classic ones back for the other suites).
 *   - the relay publishes N rows exactly once into quorum outbox; the
 *     worker handles N messages exactly once from it;
 *   - a message that keeps coming back (a test consumer rejects it with
 *     requeue) reaches outbox.dlq after RABBITMQ_DELIVERY_LIMIT
 *     deliveries while the others are consumed, and outbox-admin dlq list
 *     shows the broker's reason (delivery_limit);
 *   - a worker killed -9 LIMIT - 1 times while it holds every message
 *     (its inserts wait behind a lock of the test's), each kill adding 1
 *     to their delivery count, dead-letters nothing: the next worker
 *     handles every message once.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "harness_relay.h"
#include "harness_worker.h"
#include "suites.h"

Suite *it_quorum_suite(void);

#define N_ROWS 200
#define LIMIT 4

static const char *const quorum_env[] = { "RABBITMQ_QUEUE_TYPE=quorum",
	"RABBITMQ_DELIVERY_LIMIT=4", NULL };

static void
delete_queues(void)
{
	mq_conn *c = h_mq_open();

	ck_assert_msg(mq_queue_delete(c, MQ_QUEUE) == 0, "delete: %s",
	    mq_error(c));
	ck_assert_msg(mq_queue_delete(c, MQ_DLQ) == 0, "delete: %s",
	    mq_error(c));
	mq_free(c);
}

/* The queues the test's quorum_env declares, without a daemon. */
static mq_conn *
quorum_open(void)
{
	struct mq_params p;
	mq_conn *c;

	h_mq_params(&p);
	p.queue_type = MQ_QUORUM;
	p.delivery_limit = LIMIT;
	c = mq_new(&p);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(mq_connect(c, 0) == 0, "broker: %s", mq_error(c));
	ck_assert_msg(mq_declare_topology(c) == 0, "declare: %s",
	    mq_error(c));
	return c;
}

static void
setup(void)
{
	h_reset();
	delete_queues();
	mq_free(quorum_open());
}

static void
teardown(void)
{
	delete_queues();
	h_mq_reset_queues();
}

/* Every message of m handled once by worker d, none dead-lettered; stops
 * d, frees m. */
static void
handled_once(struct h_daemon *d, struct h_msgs *m)
{
	ck_assert_msg(h_wait_count("SELECT COUNT(*) FROM welcome_emails",
	    (long long)m->n, 60000), "not handled in 60 s");
	h_msgs_assert_exactly_once(m);
	ck_assert_int_eq(h_mq_depth(MQ_DLQ), 0);
	h_stop_clean(d);
	h_msgs_free(m);
}

START_TEST(relay_publishes_into_quorum)
{
	struct h_daemon d = { 0 };
	char out[4096];

	H_START(&d, H_RELAY, NULL, quorum_env);
	h_rows_insert(1, N_ROWS);
	h_rows_wait_all_published(60000);
	h_stop_clean(&d);
	ck_assert_int_eq(h_rows_check_queue(MQ_QUEUE, N_ROWS), 0);
	ck_assert_int_eq(h_mq_ctl("-q list_queues name type", out,
	    sizeof(out)), 0);
	ck_assert_msg(strstr(out, "outbox\tquorum") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "outbox.dlq\tquorum") != NULL, "%s", out);
}
END_TEST

START_TEST(worker_handles_quorum_once)
{
	struct h_daemon d = { 0 };
	struct h_msgs m;

	h_msgs_make(&m, 100, "quorum", -1);
	H_START(&d, H_WORKER, NULL, quorum_env);
	h_msgs_publish(&m, 0, m.n);
	handled_once(&d, &m);
}
END_TEST

/* A test consumer rejects message "poison" with requeue and acks the
 * others: after LIMIT redeliveries the broker dead-letters it. */
START_TEST(delivery_limit_dead_letters)
{
	static const char *const bodies[] = { "{\"n\":1}", "poison",
		"{\"n\":2}", "{\"n\":3}" };
	static const char *const ids[] = { "q-1", "q-poison", "q-2", "q-3" };
	mq_conn *c = quorum_open();
	struct mq_delivery d;
	struct h_daemon a = { 0 };
	const char *args[] = { "dlq", "list", NULL };
	int got, seen_poison = 0, acked = 0, k;

	h_mq_publish(bodies, ids, 4);
	for (k = 0; k < 100; k++) {
		memset(&d, 0, sizeof(d));
		if ((got = mq_get(c, MQ_QUEUE, &d)) == 0)
			break;
		ck_assert_msg(got == 1, "get: %s", mq_error(c));
		if (strcmp(d.message_id, "q-poison") == 0) {
			seen_poison++;
			ck_assert_int_eq(mq_nack(c, d.tag, 0, 1), 0);
		} else {
			acked++;
			ck_assert_int_eq(mq_ack(c, d.tag, 0), 0);
		}
		mq_delivery_free(&d);
	}
	mq_free(c);
	ck_assert_int_eq(acked, 3);
	/* The first delivery and LIMIT redeliveries. */
	ck_assert_int_eq(seen_poison, LIMIT + 1);
	h_mq_wait_depth(MQ_DLQ, 1);
	ck_assert_int_eq(h_admin(&a, __func__, args, quorum_env), 0);
	ck_assert_msg(h_log_contains(&a, "broker: delivery_limit from queue "
	    MQ_QUEUE), "no broker reason in %s", a.log);
	ck_assert(h_log_contains(&a, "q-poison"));
}
END_TEST

struct held {
	long long want_ready, want_unacked;
};

static int
held_is(void *ud)
{
	const struct held *h = ud;
	long long r, u;

	return h_mq_counts(MQ_QUEUE, &r, &u) == 0 && r == h->want_ready &&
	    u == h->want_unacked;
}

START_TEST(kills_below_the_limit_dead_letter_nothing)
{
	struct h_daemon d = { 0 };
	struct h_msgs m;
	struct held all_held, all_back;
	struct db_params p;
	db_conn *locker;
	int k;

	/* Every gap of the inbox locked: the worker's inserts wait (up to
	 * innodb_lock_wait_timeout, 50 s) and it holds every message
	 * unacked until it is killed. */
	h_db_params(&p);
	locker = db_new(&p);
	ck_assert_ptr_nonnull(locker);
	ck_assert_int_eq(db_begin(locker), DB_OK);
	ck_assert_int_eq(db_query(locker, "SELECT message_id FROM "
	    "processed_messages FOR UPDATE", NULL, 0, NULL, NULL, NULL), DB_OK);
	h_msgs_make(&m, 50, "kills", -1);
	h_msgs_publish(&m, 0, m.n);
	all_held.want_ready = 0;
	all_held.want_unacked = (long long)m.n;
	all_back.want_ready = (long long)m.n;
	all_back.want_unacked = 0;
	for (k = 0; k < LIMIT - 1; k++) {
		char sfx[16];

		snprintf(sfx, sizeof(sfx), "%d", k);
		h_start(&d, H_WORKER, __func__, sfx, quorum_env);
		ck_assert_msg(h_wait(10000, held_is, &all_held),
		    "the worker does not hold all %zu messages", m.n);
		h_daemon_kill9(&d);
		ck_assert_msg(h_wait(10000, held_is, &all_back),
		    "the messages did not come back after the kill");
	}
	ck_assert_int_eq(h_mq_depth(MQ_DLQ), 0);
	/* The killed workers' sessions, still waiting, end once they get
	 * the lock (their clients are gone): nothing of theirs commits. */
	db_rollback(locker);
	db_free(locker);
	H_START(&d, H_WORKER, "last", quorum_env);
	handled_once(&d, &m);
}
END_TEST

Suite *
it_quorum_suite(void)
{
	const TTest *const tests[] = { relay_publishes_into_quorum,
	    worker_handles_quorum_once, delivery_limit_dead_letters,
	    kills_below_the_limit_dead_letter_nothing, NULL };
	Suite *s = suite_create("quorum");

	suites_case(s, "quorum queues", 90, setup, teardown, tests);
	return s;
}
