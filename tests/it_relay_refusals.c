/*
 * it_relay_refusals.c - outbox-relay when a server refuses what it asks,
 * against the real MariaDB and RabbitMQ:
 *   - the database reads but refuses writes (a trigger refuses the mark):
 *     no storm of copies, not ready, one warning, all published and marked
 *     once writes work again;
 *   - the broker refuses one message by closing the channel (over its
 *     max_message_size): the others flow, that row counts its attempts
 *     and is parked, no reconnection storm; a body over
 *     RELAY_MAX_MESSAGE_BYTES is refused without asking the broker;
 *   - the broker blocks publishing (a disk alarm): the relay says so
 *     (not ready, a gauge), stops on SIGTERM within 15 s, and publishes
 *     everything once the alarm is over;
 *   - another relay's poll meanwhile (while the alarm holds the confirms
 *     of the relay's batch) does not hold the relay's mark back.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "harness_relay.h"
#include "suites.h"

Suite *it_relay_refusals_suite(void);

static int
metrics_port_env(char *buf, size_t len)
{
	int port = h_free_port();

	snprintf(buf, len, "RELAY_METRICS_PORT=%d", port);
	return port;
}

/* The status of GET /readyz on the relay's metrics port. */
static long
readyz(int port)
{
	struct h_resp r;
	long st;

	if (h_http(port, "GET", "/readyz", NULL, NULL, 0, NULL, &r) == -1)
		return 0;
	st = r.status;
	h_resp_free(&r);
	return st;
}

struct depth_ud {
	long long over;
};

static int
depth_over(void *ud)
{
	struct depth_ud *u = ud;

	return h_mq_depth(MQ_QUEUE) > u->over;
}

/* ---- the database refuses writes ------------------------------------- */

static void
trigger_drop(void)
{
	h_sql("DROP TRIGGER IF EXISTS test_refuse_mark");
}

/* A mark the database refuses is a database failure: the relay backs
 * off instead of publishing the backlog again at every confirm, is not
 * ready, warns once; the messages it had confirmed are marked, not sent
 * again, once writes work. */
START_TEST(refused_writes_no_storm_then_marked)
{
	struct h_daemon d = { 0 };
	struct depth_ud over = { 30 };
	char penv[48];
	const char *env[] = { penv, NULL };
	int port = metrics_port_env(penv, sizeof(penv));

	h_sql("CREATE TRIGGER test_refuse_mark BEFORE UPDATE ON outbox "
	    "FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = "
	    "'marks refused by the test'");
	H_START(&d, H_RELAY, NULL, env);
	h_rows_insert(1, 10);
	/* For 6 s, at most 3 copies of each of the 10 rows. */
	ck_assert_msg(!h_wait(6000, depth_over, &over), "%lld messages in "
	    "the queue for 10 rows: the relay publishes again at once when "
	    "the database refuses the mark", h_mq_depth(MQ_QUEUE));
	ck_assert_int_eq(readyz(port), 503);
	ck_assert_int_eq(h_rows_unpublished(), 10);
	ck_assert_int_le(h_log_count(&d, "WARN"), 1);
	trigger_drop();
	h_rows_wait_all_published(60000);
	ck_assert_int_eq(h_rows_check_queue(MQ_QUEUE, 10), 0);
	h_stop_clean(&d);
}
END_TEST

/* ---- the broker refuses a message ------------------------------------ */

static void
broker_max_message_size(long long bytes)
{
	char args[128];

	snprintf(args, sizeof(args), "eval 'application:set_env(rabbit, "
	    "max_message_size, %lld).'", bytes);
	ck_assert_int_eq(h_mq_ctl(args, NULL, 0), 0);
}

static void
broker_limit_default(void)
{
	/* RabbitMQ 3.10's default, 128 MiB. */
	broker_max_message_size(134217728);
}

/* The broker closes the channel over a message larger than its
 * max_message_size: the relay finds which (one at a time), counts that
 * row's attempts and parks it after RELAY_MAX_ATTEMPTS; the rows after it
 * are published; the connection stays up (no reconnect storm). */
START_TEST(message_refused_by_the_broker_parked_others_flow)
{
	static const char *const env[] = { "RELAY_MAX_ATTEMPTS=3",
	    "RELAY_RETRY_BASE_MS=100", "RELAY_RETRY_MAX_MS=200", NULL };
	struct h_daemon d = { 0 };

	broker_max_message_size(4096);
	h_rows_insert_big(8000);
	h_rows_insert(1, 10);
	H_START(&d, H_RELAY, NULL, env);
	h_rows_wait_published(10, 30000);
	ck_assert_msg(h_wait(60000, h_rows_big_parked, NULL), "the oversized "
	    "row was not parked (log %s)", d.log);
	ck_assert_int_eq(h_count("SELECT attempts FROM outbox WHERE "
	    "message_id = '" H_ID_PREFIX "000000000000'", NULL, 0), 3);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE "
	    "last_error LIKE '%max size%'", NULL, 0), 1);
	ck_assert_int_eq(h_log_count(&d, "broker unavailable"), 0);
	ck_assert_int_eq(h_log_count(&d, "parked after 3 attempts"), 1);
	h_stop_clean(&d);
}
END_TEST

/* A body over RELAY_MAX_MESSAGE_BYTES never goes to the broker: the row
 * is parked after its attempts, the others flow. */
START_TEST(message_over_relay_limit_parked_without_the_broker)
{
	static const char *const env[] = { "RELAY_MAX_ATTEMPTS=2",
	    "RELAY_RETRY_BASE_MS=100", "RELAY_RETRY_MAX_MS=200",
	    "RELAY_MAX_MESSAGE_BYTES=4096", NULL };
	struct h_daemon d = { 0 }, a = { 0 };

	h_rows_insert_big(8000);
	h_rows_insert(1, 10);
	H_START(&d, H_RELAY, NULL, env);
	h_rows_wait_published(10, 30000);
	ck_assert_msg(h_wait(60000, h_rows_big_parked, NULL), "the oversized "
	    "row was not parked (log %s)", d.log);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE "
	    "last_error LIKE '%RELAY_MAX_MESSAGE_BYTES%'", NULL, 0), 1);
	ck_assert_int_eq(h_mq_depth(MQ_QUEUE), 10);
	h_stop_clean(&d);
	/* The audit reports it, for an operator to release. */
	ck_assert_int_eq(h_audit(&a, __func__, NULL), 1);
	ck_assert_msg(h_log_contains(&a, "FAIL  outbox rows parked "
	    "(RELAY_MAX_ATTEMPTS refusals)     1\n"), "the audit does not "
	    "report the parked row (report %s)", a.log);
}
END_TEST

/* ---- the broker blocks publishing ------------------------------------ */

/* Whatever the test did: the alarm is over. */
static void
broker_alarm_clear(void)
{
	(void)h_mq_ctl("set_disk_free_limit 50MB", NULL, 0);
}

/* Rows first..first+count-1 of h_rows_insert's shape, with a name of
 * bytes characters. */
static void
rows_insert_sized(long long first, long long count, long long bytes)
{
	struct db_val a[3] = { DB_INT(bytes), DB_INT(first),
	    DB_INT(first + count - 1) };
	uint64_t n = 0;
	int rc;

	rc = db_exec(h_db(), "INSERT INTO outbox (message_id, event_name, "
	    "payload, created_at) SELECT CONCAT('" H_ID_PREFIX "', LPAD(seq, "
	    "12, '0')), '" H_EVENT "', JSON_OBJECT('id', CONCAT("
	    "'11111111-0000-4000-8000-', LPAD(seq, 12, '0')), 'email', "
	    "CONCAT('user', seq, '@example.com'), 'name', REPEAT('x', ?)), "
	    "UTC_TIMESTAMP(6) FROM seq_1_to_1000000 WHERE seq BETWEEN ? AND ?",
	    a, 3, &n);
	ck_assert_msg(rc == DB_OK, "insert: %s", db_error(h_db()));
	ck_assert_int_eq((long long)n, count);
}

struct port_ud {
	int port;
};

static int
not_ready(void *ud)
{
	return readyz(((struct port_ud *)ud)->port) == 503;
}

/* 1 when the relay's /metrics shows the broker blocking it. */
static int
blocked_gauge(void *ud)
{
	return h_metric(((struct port_ud *)ud)->port,
	    "outbox_relay_broker_blocked") == 1;
}

/* Under a disk alarm RabbitMQ blocks publishing connections and stops
 * reading them: the relay, told so (connection.blocked), says it is not
 * ready and publishes nothing new; whatever the broker does, SIGTERM
 * ends it within 15 s, exit 0.  Once the alarm is over, a new relay
 * publishes every row. */
START_TEST(blocked_broker_stop_bounded_then_published)
{
	struct h_daemon d = { 0 };
	struct port_ud pu;
	char penv[48];
	const char *env[] = { penv, NULL };
	long long t0;
	int st;

	pu.port = metrics_port_env(penv, sizeof(penv));
	rows_insert_sized(1, 2000, 16384);
	h_mq_disk_alarm(1);
	H_START(&d, H_RELAY, NULL, env);
	ck_assert_msg(h_wait(30000, blocked_gauge, &pu), "the relay does not "
	    "show the broker blocking it (log %s)", d.log);
	ck_assert_msg(h_wait(10000, not_ready, &pu), "/readyz still 200 while "
	    "the broker blocks publishing");
	ck_assert_int_ge(h_log_count(&d, "the broker blocked publishing"), 1);
	t0 = clock_ms();
	st = h_daemon_stop(&d, 15000);
	ck_assert_msg(st == 0, "SIGTERM under a broker alarm: status %d after "
	    "%lld ms (-1: still running after 15 s; log %s)", st,
	    clock_ms() - t0, d.log);
	ck_assert_int_eq(h_log_count(&d, "stopped"), 1);
	ck_assert_int_gt(h_rows_unpublished(), 0);

	h_mq_disk_alarm(0);
	H_START(&d, H_RELAY, NULL, env);
	h_rows_wait_all_published(120000);
	h_stop_clean(&d);
	/* What the broker had read before the stop is enqueued when the
	 * alarm ends: copies, at most one of each row here. */
	ck_assert_int_le(h_rows_check_queue(MQ_QUEUE, 2000), 2000);
}
END_TEST

static int
first_batch_marked(void *ud)
{
	(void)ud;
	return h_rows_published() == 500;
}

/* Two relays whose polls go through different indexes: the optimizer
 * chose the primary key for the poll of fresh rows on a small outbox and
 * ix_outbox_due on one mostly published, and changes its mind as the
 * statistics move.  A poll through ix_outbox_due that skipped (SKIP
 * LOCKED) the rows another relay held through the primary key still
 * locked their index entries, and kept those locks to its end; the other
 * relay's mark, which rewrites those entries, waited 2 s and failed,
 * batch after batch (most likely what CI saw once: three batches 2 s
 * late at a SIGTERM, their rows left unmarked).  Here the other relay is
 * a session running the poll's query through ix_outbox_due while the
 * relay's first batch waits for its confirms (a disk alarm holds them):
 * once the alarm is over, the relay marks its 500 rows while that
 * session still holds the next 500. */
START_TEST(mark_not_held_back_by_another_relays_poll)
{
	static const char *const env[] = { "RELAY_INFLIGHT_BATCHES=1",
	    "RELAY_CONFIRM_TIMEOUT_MS=60000", NULL };
	struct h_daemon d = { 0 };
	db_conn *other;
	long long n = -1;

	h_rows_insert(1, 1000);
	h_mq_disk_alarm(1);
	H_START(&d, H_RELAY, NULL, env);
	ck_assert_msg(h_wait_log(&d, "the broker blocked publishing", 1,
	    30000), "the relay was not blocked (log %s)", d.log);
	other = h_db_hold("SET SESSION tx_isolation = 'READ-COMMITTED', "
	    "SESSION innodb_lock_wait_timeout = 2", "SELECT COUNT(*) FROM "
	    "(SELECT seq FROM outbox FORCE INDEX (ix_outbox_due) WHERE "
	    "published_at IS NULL AND next_attempt_at IS NULL ORDER BY seq "
	    "LIMIT 500 FOR UPDATE SKIP LOCKED) AS t WHERE seq > 500", &n);
	ck_assert_int_eq(n, 500);
	h_mq_disk_alarm(0);
	ck_assert_msg(h_wait(10000, first_batch_marked, NULL), "the relay's "
	    "first batch not marked in 10 s while another poll holds the next "
	    "rows: %lld marked (log %s)", h_rows_published(), d.log);
	ck_assert_int_eq(db_rollback(other), DB_OK);
	db_free(other);
	h_rows_wait_all_published(60000);
	h_stop_clean(&d);
	ck_assert(!h_log_contains(&d, "held back by locks"));
	ck_assert_int_eq(h_rows_check_queue(MQ_QUEUE, 1000), 0);
}
END_TEST

Suite *
it_relay_refusals_suite(void)
{
	const TTest *const writes[] = { refused_writes_no_storm_then_marked,
	    NULL };
	const TTest *const msgs[] = {
	    message_refused_by_the_broker_parked_others_flow,
	    message_over_relay_limit_parked_without_the_broker, NULL };
	const TTest *const blocked[] = {
	    blocked_broker_stop_bounded_then_published,
	    mark_not_held_back_by_another_relays_poll, NULL };
	Suite *s = suite_create("relay");
	TCase *tc;

	tc = suites_case(s, "refused writes", 120, h_rows_reset, NULL, writes);
	tcase_add_unchecked_fixture(tc, NULL, trigger_drop);
	tc = suites_case(s, "refused messages", 180, h_rows_reset, NULL, msgs);
	tcase_add_unchecked_fixture(tc, NULL, broker_limit_default);
	tc = suites_case(s, "blocked broker", 240, h_rows_reset, NULL, blocked);
	tcase_add_unchecked_fixture(tc, NULL, broker_alarm_clear);
	return s;
}
