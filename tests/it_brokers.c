/*
 * it_brokers.c - the broker host list (RABBITMQ_HOSTS), against the real
 * servers: a relay and a worker given a dead port first and the live
 * broker second connect to the live one, say so in their log (one line
 * per connect) and in /metrics (P_broker_connected_info: 1 for the live
 * host, 0 for the dead one), and deliver; a bad list stops the relay;
 * with two independent nodes, the first killed, both move to the second.
 * The queue type: a relay or a worker asked for quorum queues where a
 * classic outbox exists says so once (naming RABBITMQ_QUEUE_TYPE), stays
 * up, not ready, retrying quietly, and changes nothing on the broker.
 * The broker's own settings (scripts/infra.sh): a backlog of outbox kept
 * out of its memory, and its processes' binary heap limit.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness_relay.h"
#include "harness_worker.h"
#include "suites.h"

Suite *it_brokers_suite(void);

#define N_ROWS 100

/* hosts: "127.0.0.1:<dead>,<live host>:<live port>"; dead: "h:p" of the
 * dead one, live: of the live one. */
static void
host_list(char *hosts, size_t hlen, char *dead, char *live, size_t len)
{
	struct mq_params p;

	h_mq_params(&p);
	/* A free port nobody listens on: the connect is refused. */
	snprintf(dead, len, "127.0.0.1:%d", h_free_port());
	snprintf(live, len, "%s:%d", p.host, p.port);
	snprintf(hosts, hlen, "RABBITMQ_HOSTS=%s,%s", dead, live);
}

static void
assert_connected(const struct h_daemon *d, int mport, const char *prefix,
    const char *dead, const char *live)
{
	char line[128], series[256];

	snprintf(line, sizeof(line), "connected to broker %s", live);
	ck_assert_msg(h_log_contains(d, line), "no \"%s\" in %s", line,
	    d->log);
	snprintf(series, sizeof(series), "%s_broker_connected_info{host="
	    "\"%s\"}", prefix, live);
	h_wait_metric(mport, series, 1, 10000);
	snprintf(series, sizeof(series), "%s_broker_connected_info{host="
	    "\"%s\"}", prefix, dead);
	ck_assert(h_metric(mport, series) == 0);
}

START_TEST(relay_skips_a_dead_host)
{
	struct h_daemon d = { 0 };
	char hosts[128], dead[64], live[64], menv[48];
	const char *env[] = { hosts, menv, NULL };
	int mport = h_free_port();

	host_list(hosts, sizeof(hosts), dead, live, sizeof(dead));
	snprintf(menv, sizeof(menv), "RELAY_METRICS_PORT=%d", mport);
	H_START(&d, H_RELAY, NULL, env);
	h_rows_insert(1, N_ROWS);
	h_rows_wait_all_published(30000);
	assert_connected(&d, mport, "outbox_relay", dead, live);
	ck_assert_int_eq(h_rows_check_queue(MQ_QUEUE, N_ROWS), 0);
	h_stop_clean(&d);
}
END_TEST

START_TEST(worker_skips_a_dead_host)
{
	struct h_daemon d = { 0 };
	char hosts[128], dead[64], live[64], menv[48];
	const char *env[] = { hosts, menv, NULL };
	int mport = h_free_port();
	struct h_msgs m;

	host_list(hosts, sizeof(hosts), dead, live, sizeof(dead));
	snprintf(menv, sizeof(menv), "WORKER_METRICS_PORT=%d", mport);
	H_START(&d, H_WORKER, NULL, env);
	assert_connected(&d, mport, "outbox_worker", dead, live);
	h_msgs_make(&m, 20, "hosts", -1);
	h_msgs_publish(&m, 0, 20);
	ck_assert_msg(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 20,
	    30000), "not handled in 30 s");
	h_msgs_assert_exactly_once(&m);
	h_msgs_free(&m);
	h_stop_clean(&d);
}
END_TEST

START_TEST(bad_host_list_refused)
{
	struct h_daemon d = { 0 };
	const char *env[] = { "RABBITMQ_HOSTS=a,,b", NULL };

	h_spawn(&d, H_RELAY, __func__, NULL, env);
	ck_assert_int_ne(h_daemon_wait(&d, 10000), 0);
	ck_assert(h_log_contains(&d, "RABBITMQ_HOSTS: empty element"));
}
END_TEST

/* The classic outbox (the fixture declared it) is there, quorum asked:
 * one warning naming the setting over several retries, the daemon still
 * running, the queue still classic. */
static void
mismatch_once(enum h_kind kind, const char *test, const char *backoff)
{
	struct h_daemon d = { 0 };
	const char *env[] = { "RABBITMQ_QUEUE_TYPE=quorum", "LOG_LEVEL=debug",
	    backoff, NULL };
	char out[4096];

	h_spawn(&d, kind, test, NULL, env);
	ck_assert_msg(h_wait_log(&d, "still unavailable", 5, 30000),
	    "fewer than 5 retries in 30 s (log %s)", d.log);
	/* One warning; the retries at debug level only. */
	ck_assert_int_eq(h_log_count(&d, "WARN: broker unavailable"), 1);
	ck_assert_int_eq(h_log_count(&d, "WARN: "), 1);
	ck_assert(h_log_contains(&d, "WARN: broker unavailable"));
	ck_assert_int_eq(h_log_count(&d, "queue " MQ_QUEUE " exists with "
	    "other arguments than RABBITMQ_QUEUE_TYPE=quorum asks for"),
	    h_log_count(&d, "DEBUG: broker still unavailable") + 1);
	ck_assert_int_eq(h_log_count(&d, "connected to broker") -
	    h_log_count(&d, "DEBUG: connected to broker"), 1);
	ck_assert_int_eq(h_daemon_wait(&d, 0), -1); /* still running */
	ck_assert_int_eq(h_mq_ctl("-q list_queues name type", out,
	    sizeof(out)), 0);
	ck_assert_msg(strstr(out, "outbox\tclassic") != NULL, "queues: %s",
	    out);
	ck_assert_ptr_null(strstr(out, "quorum"));
	h_stop_clean(&d);
}

START_TEST(relay_quorum_over_classic)
{
	mismatch_once(H_RELAY, __func__, "RELAY_RECONNECT_MAX_MS=100");
}
END_TEST

START_TEST(worker_quorum_over_classic)
{
	mismatch_once(H_WORKER, __func__, "WORKER_RETRY_MAX_MS=100");
}
END_TEST

/* ---- failover between two independent nodes ---- */

/* Node B: a single RabbitMQ of the test's own (its own OUTBOX_VAR under
 * the test logs, AMQP port OUTBOX_FAILOVER_MQ_PORT, default 25680; its
 * distribution and epmd ports the next two). */
static int
node_b(const char *cmd, int *port)
{
	const char *logs = getenv("OUTBOX_TEST_LOGS");
	char line[2048];
	int st;

	if (cfg_parse_int(h_env("OUTBOX_FAILOVER_MQ_PORT", "25680"), 1, 65533,
	    port) != 0)
		return -1;
	if (logs == NULL)
		logs = "/tmp";
	snprintf(line, sizeof(line), "OUTBOX_VAR='%s/node-b' "
	    "OUTBOX_MQ_PORT=%d OUTBOX_MQ_DIST_PORT=%d OUTBOX_MQ_EPMD_PORT=%d "
	    "bash '%s/scripts/infra.sh' %s >>'%s/infra.log' 2>&1", logs,
	    *port, *port + 1, *port + 2, getenv("OUTBOX_ROOT") != NULL ?
	    getenv("OUTBOX_ROOT") : ".", cmd, logs);
	st = system(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
node_b_stop(void)
{
	int port;

	(void)node_b("mq-stop", &port);
}

/* The list "B,A" (A: the suite's broker).  Killed -9, B takes every
 * message it held with it (a single node: rows confirmed by B but not
 * consumed are lost with it), so only the rows inserted after the kill
 * are asserted: both daemons move to A by themselves, declare the
 * topology there (deleted from A beforehand) and deliver. */
START_TEST(relay_and_worker_fail_over)
{
	struct h_daemon r = { 0 }, w = { 0 };
	struct mq_params a;
	char hosts[512], rm[48], wm[48], series[512];
	const char *renv[] = { hosts, rm, "RELAY_RECONNECT_MAX_MS=200", NULL };
	const char *wenv[] = { hosts, wm, "WORKER_RETRY_MAX_MS=200", NULL };
	int bport, rport = h_free_port(), wport = h_free_port();
	mq_conn *c;

	ck_assert_int_eq(node_b("mq-start", &bport), 0);
	h_mq_params(&a);
	snprintf(hosts, sizeof(hosts), "RABBITMQ_HOSTS=127.0.0.1:%d,%s:%d",
	    bport, a.host, a.port);
	snprintf(rm, sizeof(rm), "RELAY_METRICS_PORT=%d", rport);
	snprintf(wm, sizeof(wm), "WORKER_METRICS_PORT=%d", wport);
	/* A without the topology: the daemons must declare it there. */
	c = h_mq_open();
	ck_assert_int_eq(mq_queue_delete(c, MQ_QUEUE), 0);
	ck_assert_int_eq(mq_queue_delete(c, MQ_DLQ), 0);
	mq_free(c);
	H_START(&r, H_RELAY, NULL, renv);
	H_START(&w, H_WORKER, NULL, wenv);
	snprintf(series, sizeof(series), "outbox_relay_broker_connected_info"
	    "{host=\"127.0.0.1:%d\"}", bport);
	h_wait_metric(rport, series, 1, 10000);
	ck_assert_int_eq(node_b("mq-kill", &bport), 0);
	snprintf(series, sizeof(series), "outbox_relay_broker_connected_info"
	    "{host=\"%s:%d\"}", a.host, a.port);
	h_rows_insert(1, N_ROWS);
	h_rows_wait_all_published(30000);
	h_wait_metric(rport, series, 1, 10000);
	snprintf(series, sizeof(series), "outbox_worker_broker_connected_info"
	    "{host=\"%s:%d\"}", a.host, a.port);
	h_wait_metric(wport, series, 1, 30000);
	h_mq_wait_drained(MQ_QUEUE, 30000);
	ck_assert(h_log_contains(&r, "lost; failing over to"));
	ck_assert(h_log_contains(&w, "lost; failing over to"));
	h_stop_clean(&w);
	h_stop_clean(&r);
}
END_TEST

/* The list "B,A", B refusing every publish (a policy: max-length 0,
 * reject-publish), as a node was seen to do after a quorum queue's leader
 * was killed: the relay does not stay with a node that nacks every message
 * of a batch, it moves to the next (A) and publishes there. */
START_TEST(relay_moves_on_from_a_node_that_nacks_everything)
{
	struct h_daemon r = { 0 };
	struct mq_params a;
	char hosts[512], rm[48], series[512];
	const char *renv[] = { hosts, rm, "RELAY_RECONNECT_MAX_MS=200",
	    "RELAY_RETRY_BASE_MS=100", "RELAY_RETRY_MAX_MS=200", NULL };
	int bport, rport = h_free_port();

	ck_assert_int_eq(node_b("mq-start", &bport), 0);
	ck_assert_int_eq(node_b("mq-ctl -q set_policy --apply-to queues "
	    "--priority 1 nack-all '^" MQ_QUEUE "$' '{\"max-length\":0,"
	    "\"overflow\":\"reject-publish\"}'", &bport), 0);
	h_mq_params(&a);
	snprintf(hosts, sizeof(hosts), "RABBITMQ_HOSTS=127.0.0.1:%d,%s:%d",
	    bport, a.host, a.port);
	snprintf(rm, sizeof(rm), "RELAY_METRICS_PORT=%d", rport);
	H_START(&r, H_RELAY, NULL, renv);
	snprintf(series, sizeof(series), "outbox_relay_broker_connected_info"
	    "{host=\"127.0.0.1:%d\"}", bport);
	h_wait_metric(rport, series, 1, 10000);
	h_rows_insert(1, N_ROWS);
	h_rows_wait_all_published(30000);
	ck_assert(h_log_contains(&r, "every message of a batch nacked"));
	snprintf(series, sizeof(series), "outbox_relay_broker_connected_info"
	    "{host=\"%s:%d\"}", a.host, a.port);
	h_wait_metric(rport, series, 1, 10000);
	ck_assert_int_eq(h_rows_check_queue(MQ_QUEUE, N_ROWS), 0);
	h_stop_clean(&r);
}
END_TEST

/* ---- the broker's own settings ---- */

/* What scripts/infra.sh (and docker-compose.yml) give the broker, proven
 * on the suite's node: a backlog of queue outbox is kept on disk, not in
 * the queue's process (the policy outbox-lazy of
 * scripts/rabbitmq-definitions.json), and every process may hold 32 times
 * Erlang's default of binaries before they force a full collection of its
 * heap (+hmbs).  Without them a classic queue holding 100,000 messages
 * collected its whole heap 47-54 times during one drain, at one of two
 * speeds (README, "The broker's settings"). */
#define MIN_BIN_VHEAP 1485504 /* 46422 words, Erlang's default, times 32 */
#define BACKLOG 5000

/* The messages, those in the broker's memory and the policy of queue;
 * -1 when the queue is not listed. */
static int
queue_memory(const char *queue, long long *msgs, long long *ram,
    char *policy, size_t plen)
{
	char row[512], pol[256] = "";

	if (h_mq_queue_row(queue, "messages messages_ram policy", row,
	    sizeof(row)) != 0 || sscanf(row, "%lld %lld %255s", msgs, ram,
	    pol) < 2)
		return -1;
	snprintf(policy, plen, "%s", pol);
	return 0;
}

START_TEST(backlog_kept_out_of_the_brokers_memory)
{
	static char bodies[BACKLOG][64];
	const char *b[BACKLOG];
	char out[4096], policy[256];
	long long msgs = -1, ram = -1, vheap = 0;
	size_t i;

	for (i = 0; i < BACKLOG; i++) {
		snprintf(bodies[i], sizeof(bodies[i]), "{\"backlog\":%zu,"
		    "\"pad\":\"%0*d\"}", i, 24, 0);
		b[i] = bodies[i];
	}
	h_mq_publish(b, NULL, BACKLOG);
	ck_assert_msg(queue_memory(MQ_QUEUE, &msgs, &ram, policy,
	    sizeof(policy)) == 0, "queue %s not listed", MQ_QUEUE);
	ck_assert_int_eq(msgs, BACKLOG);
	ck_assert_msg(strcmp(policy, "outbox-lazy") == 0, "queue %s under "
	    "policy \"%s\", not outbox-lazy", MQ_QUEUE, policy);
	ck_assert_msg(ram == 0, "%lld of %d queued messages held in the "
	    "broker's memory", ram, BACKLOG);
	ck_assert_int_eq(h_mq_ctl("-q eval "
	    "'erlang:system_info(min_bin_vheap_size).'", out, sizeof(out)), 0);
	ck_assert_msg(sscanf(out, "{min_bin_vheap_size,%lld}", &vheap) == 1,
	    "min_bin_vheap_size: %s", out);
	ck_assert_msg(vheap >= MIN_BIN_VHEAP, "the broker's processes' "
	    "min_bin_vheap_size is %lld words, under %d", vheap,
	    MIN_BIN_VHEAP);
}
END_TEST

static void
failover_teardown(void)
{
	node_b_stop();
	h_mq_reset_queues();
}

Suite *
it_brokers_suite(void)
{
	const TTest *const relay[] = { relay_skips_a_dead_host,
	    bad_host_list_refused, NULL };
	const TTest *const worker[] = { worker_skips_a_dead_host, NULL };
	const TTest *const failover[] = { relay_and_worker_fail_over,
	    relay_moves_on_from_a_node_that_nacks_everything, NULL };
	const TTest *const mismatch[] = { relay_quorum_over_classic,
	    worker_quorum_over_classic, NULL };
	const TTest *const settings[] = {
	    backlog_kept_out_of_the_brokers_memory, NULL };
	Suite *s = suite_create("brokers");

	suites_case(s, "host list relay", 60, h_rows_reset, NULL, relay);
	suites_case(s, "host list worker", 60, h_reset, NULL, worker);
	suites_case(s, "queue type mismatch", 60, h_reset, NULL, mismatch);
	suites_case(s, "failover", 180, h_reset, failover_teardown, failover);
	suites_case(s, "broker settings", 60, h_reset, h_mq_reset_queues,
	    settings);
	return s;
}
