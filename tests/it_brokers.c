/*
 * it_brokers.c - the broker host list (RABBITMQ_HOSTS), against the real
 * servers: a relay and a worker given a dead port first and the live
 * broker second connect to the live one, say so in their log (one line
 * per connect) and in /metrics (P_broker_connected_info: 1 for the live
 * host, 0 for the dead one), and deliver.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

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

Suite *
it_brokers_suite(void)
{
	const TTest *const relay[] = { relay_skips_a_dead_host,
	    bad_host_list_refused, NULL };
	const TTest *const worker[] = { worker_skips_a_dead_host, NULL };
	Suite *s = suite_create("brokers");

	suites_case(s, "host list relay", 60, h_rows_reset, NULL, relay);
	suites_case(s, "host list worker", 60, h_reset, NULL, worker);
	return s;
}
