/*
 * it_obs.c - observability of the three daemons against the real
 * servers: each /metrics passes `promtool check metrics` and its
 * counters move with the traffic; /healthz, and /readyz following the
 * database; one W3C traceparent followed from the POST through the
 * outbox row and the relay's AMQP header to the worker's log line;
 * LOG_FORMAT=json lines that are JSON objects; and the worker's gauges of
 * the queues' depths: the DLQ's following a dead-lettered message, a
 * purge and a deleted dead-letter queue, the outbox's counting the ready
 * messages only.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "harness_worker.h"
#include "suites.h"

Suite *it_obs_suite(void);

#define N_POSTS 5

/* The messages of the queue gauges' tests. */
static struct h_msgs M_obs;

/* The three daemons, each with its metrics listener on a free port. */
struct trio {
	struct h_daemon app, relay, worker;
	int app_m, relay_m, worker_m;
	char app_env[40], relay_env[40], worker_env[40];
};

/* Starts the three, their logs named after test (the caller's
 * __func__). */
static void
trio_start(struct trio *t, const char *test, const char *log_format)
{
	const char *aenv[3], *renv[3], *wenv[4];

	memset(t, 0, sizeof(*t));
	t->app_m = h_free_port();
	t->relay_m = h_free_port();
	t->worker_m = h_free_port();
	snprintf(t->app_env, sizeof(t->app_env), "APP_METRICS_PORT=%d",
	    t->app_m);
	snprintf(t->relay_env, sizeof(t->relay_env), "RELAY_METRICS_PORT=%d",
	    t->relay_m);
	snprintf(t->worker_env, sizeof(t->worker_env),
	    "WORKER_METRICS_PORT=%d", t->worker_m);
	aenv[0] = t->app_env;
	renv[0] = t->relay_env;
	wenv[0] = t->worker_env;
	wenv[1] = "WORKER_RETRY_MAX_MS=500";
	aenv[1] = renv[1] = wenv[2] = log_format;
	aenv[2] = renv[2] = wenv[3] = NULL;
	h_start(&t->app, H_APP, test, NULL, aenv);
	h_start(&t->relay, H_RELAY, test, NULL, renv);
	h_start(&t->worker, H_WORKER, test, NULL, wenv);
}

static void
trio_stop(struct trio *t)
{
	h_stop_clean(&t->worker);
	h_stop_clean(&t->relay);
	h_stop_clean(&t->app);
}

/* ---- scraping ---- */

/* GET path on port; the status (0: no answer). */
static long
get_status(int port, const char *path)
{
	struct h_resp r;
	long st;

	h_http(port, "GET", path, NULL, NULL, 0, NULL, &r);
	st = r.status;
	h_resp_free(&r);
	return st;
}

/* `promtool check metrics` on text: fails the test on a non-zero exit or
 * any output (its lint findings). */
static void
promtool_check(const char *text, const char *who)
{
	char path[512], cmd[1200], out[4096];
	size_t got;
	FILE *f, *p;
	int st;

	snprintf(path, sizeof(path), "%s/obs-%s.prom",
	    getenv("OUTBOX_TEST_LOGS") ? getenv("OUTBOX_TEST_LOGS") : "/tmp",
	    who);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' 2>&1",
	    path);
	p = popen(cmd, "r");
	ck_assert_msg(p != NULL, "cannot run promtool");
	got = fread(out, 1, sizeof(out) - 1, p);
	out[got] = '\0';
	st = pclose(p);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 127,
	    "promtool not found (scripts/deps.sh tools installs it)");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && got == 0,
	    "promtool check metrics on %s's /metrics (%s): exit %d: %s", who,
	    path, WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
}

/* ---- waiting ---- */

struct ready_is {
	int port;
	long want;
};

static int
ready_is(void *ud)
{
	struct ready_is *r = ud;

	return get_status(r->port, "/readyz") == r->want;
}

static void
post_customers(int port, int n, const char *tag)
{
	char body[128];
	struct h_resp r;
	int i;

	for (i = 0; i < n; i++) {
		snprintf(body, sizeof(body), "{\"email\":\"obs-%s-%d@example."
		    "com\",\"name\":\"Obs %d\"}", tag, i, i);
		h_http(port, "POST", "/customers", "application/json", body,
		    strlen(body), NULL, &r);
		ck_assert_msg(r.status == 201, "POST: %ld %s", r.status,
		    r.body ? r.body : "");
		h_resp_free(&r);
	}
}

/* ---- tests ---- */

START_TEST(metrics_scraped_and_counters_move)
{
	static const char *const created =
	    "outbox_http_requests_total{route=\"/customers\",status=\"201\"}";
	static const char *const published =
	    "outbox_relay_messages_published_total";
	static const char *const handled =
	    "outbox_worker_messages_handled_total";
	struct trio t;
	double c0, p0, h0, n0;
	char *text;

	h_reset();
	trio_start(&t, __func__, NULL);
	c0 = h_metric(t.app_m, created);
	p0 = h_metric(t.relay_m, published);
	h0 = h_metric(t.worker_m, handled);
	n0 = h_metric(t.worker_m, "outbox_worker_messages_consumed_total");
	ck_assert(c0 >= 0 && p0 >= 0 && h0 >= 0 && n0 >= 0);

	post_customers(t.app.port, N_POSTS, "flow");
	/* Counted once the answer is sent (MHD's completion callback):
	 * the client may read it first. */
	h_wait_metric(t.app_m, created, c0 + N_POSTS, 5000);
	h_wait_metric(t.relay_m, published, p0 + N_POSTS, 30000);
	h_wait_metric(t.worker_m, handled, h0 + N_POSTS, 30000);
	ck_assert(h_metric(t.worker_m, "outbox_worker_messages_consumed_total")
	    >= n0 + N_POSTS);
	ck_assert(h_metric(t.relay_m, "outbox_relay_confirms_total") >=
	    p0 + N_POSTS);
	ck_assert(h_metric(t.relay_m, "outbox_relay_batches_total") >= 1);
	ck_assert(h_metric(t.relay_m,
	    "outbox_relay_commit_to_publish_seconds_count") >= N_POSTS);
	ck_assert(h_metric(t.relay_m,
	    "outbox_relay_batch_publish_seconds_count") >= 1);
	ck_assert(h_metric(t.worker_m,
	    "outbox_worker_created_to_handled_seconds_count") >= N_POSTS);
	ck_assert(h_metric(t.worker_m, "outbox_worker_batch_size_count") >= 1);
	ck_assert(h_metric(t.worker_m,
	    "outbox_worker_batch_commit_seconds_count") >= 1);
	/* Sampled every few seconds: present, and never negative. */
	ck_assert(h_metric(t.relay_m, "outbox_relay_backlog_rows") >= 0);
	ck_assert(h_metric(t.relay_m,
	    "outbox_relay_oldest_unpublished_seconds") >= 0);

	text = h_scrape(t.app_m);
	promtool_check(text, "app");
	free(text);
	text = h_scrape(t.relay_m);
	promtool_check(text, "relay");
	free(text);
	text = h_scrape(t.worker_m);
	promtool_check(text, "worker");
	free(text);

	ck_assert_int_eq(get_status(t.relay_m, "/healthz"), 200);
	ck_assert_int_eq(get_status(t.worker_m, "/healthz"), 200);
	ck_assert_int_eq(get_status(t.relay_m, "/readyz"), 200);
	ck_assert_int_eq(get_status(t.worker_m, "/readyz"), 200);
	ck_assert_int_eq(get_status(t.relay_m, "/nope"), 404);
	trio_stop(&t);
}
END_TEST

/* /readyz follows the database: 503 while it is stopped, 200 again once
 * it is back; /healthz stays 200.  The relay notices at its next poll,
 * the worker at its next idle ping (IDLE_PING_MS). */
START_TEST(readyz_follows_the_database)
{
	struct ready_is r503[3], r200[3];
	int down[3], up[3], live[3];
	struct trio t;
	int i, ports[3];

	h_reset();
	trio_start(&t, __func__, NULL);
	/* The app's own /readyz pings the database; its metrics
	 * listener's only tells the last outcome of its traffic. */
	ports[0] = t.app.port;
	ports[1] = t.relay_m;
	ports[2] = t.worker_m;
	for (i = 0; i < 3; i++) {
		r200[i].port = r503[i].port = ports[i];
		r200[i].want = 200;
		r503[i].want = 503;
		ck_assert_msg(h_wait(30000, ready_is, &r200[i]), "daemon %d "
		    "not ready", i);
	}
	ck_assert_int_eq(h_infra("db-stop"), 0);
	for (i = 0; i < 3; i++) {
		down[i] = h_wait(30000, ready_is, &r503[i]);
		live[i] = get_status(ports[i], "/healthz") == 200;
	}
	/* The database first, whatever the outcome. */
	ck_assert_int_eq(h_infra("db-start"), 0);
	for (i = 0; i < 3; i++)
		up[i] = h_wait(30000, ready_is, &r200[i]);
	for (i = 0; i < 3; i++) {
		ck_assert_msg(down[i], "daemon %d (app, relay, worker) still "
		    "ready with the database stopped", i);
		ck_assert_msg(live[i], "daemon %d not live", i);
		ck_assert_msg(up[i], "daemon %d not ready again", i);
	}
	ck_assert(h_metric(t.relay_m,
	    "outbox_relay_reconnects_total{server=\"database\"}") >= 1);
	trio_stop(&t);
}
END_TEST

struct tp_seen {
	char traceparent[64];
	char body[1024];
	char id[128];
	char type[128];
	long long seq;
	int n;
};

static void
tp_fn(void *ud, const struct mq_delivery *d)
{
	struct tp_seen *s = ud;

	s->n++;
	snprintf(s->traceparent, sizeof(s->traceparent), "%s",
	    d->traceparent);
	snprintf(s->body, sizeof(s->body), "%.*s", (int)d->len, d->body);
	snprintf(s->id, sizeof(s->id), "%s", d->message_id);
	snprintf(s->type, sizeof(s->type), "%s", d->type);
	s->seq = (long long)d->seq;
}

/* Every line of d's log is a JSON object with the four fields. */
static void
check_json_log(const struct h_daemon *d)
{
	static const char *const keys[] = { "time", "level", "process",
		"message" };
	char line[16384];
	json_t *o;
	FILE *f;
	size_t k;
	int n = 0;

	f = fopen(d->log, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		n++;
		o = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
		ck_assert_msg(json_is_object(o), "%s line %d is not a JSON "
		    "object: %s", d->log, n, line);
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			ck_assert_msg(json_is_string(json_object_get(o,
			    keys[k])), "%s line %d: no string \"%s\": %s",
			    d->log, n, keys[k], line);
		json_decref(o);
	}
	fclose(f);
	ck_assert_msg(n > 0, "%s is empty", d->log);
}

/* One traceparent from the POST to the worker's log line: the outbox
 * row continues the trace (same trace id, a span of the app's own), the
 * relay's AMQP header too, and the worker's line shows it.  The daemons
 * log in JSON, each line an object. */
START_TEST(traceparent_followed_end_to_end)
{
	static const char trace_id[] = "4bf92f3577b34da6a3ce929d0e0e4736";
	static const char parent[] =
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	static const char *const json_logs[] = { "LOG_FORMAT=json", NULL };
	const char *hdr[] = { "traceparent: "
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL };
	const char *body =
	    "{\"email\":\"trace@example.com\",\"name\":\"Trace\"}";
	char want[128], sql[256];
	struct tp_seen seen;
	struct mq_params mp;
	struct mq_msg m;
	struct h_resp r;
	struct trio t;
	json_t *o;
	mq_conn *c;
	long long n;

	h_reset();
	/* The app alone first: the row is looked at before any relay. */
	memset(&t, 0, sizeof(t));
	H_START(&t.app, H_APP, NULL, json_logs);
	h_http(t.app.port, "POST", "/customers", "application/json", body,
	    strlen(body), hdr, &r);
	ck_assert_msg(r.status == 201, "POST: %ld", r.status);
	o = json_loads(r.body, 0, NULL);
	ck_assert_ptr_nonnull(o);
	h_resp_free(&r);

	/* The outbox row: a child of the request's traceparent. */
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM outbox WHERE "
	    "traceparent LIKE '00-%s-%%' AND traceparent <> '%s'", trace_id,
	    parent);
	n = h_count(sql, NULL, 0);
	ck_assert_msg(n == 1, "%lld outbox rows continue the trace", n);

	/* The relay's AMQP header: the same trace. */
	H_START(&t.relay, H_RELAY, NULL, json_logs);
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq((int)h_mq_collect(MQ_QUEUE, 1, 30000, tp_fn, &seen),
	    1);
	snprintf(want, sizeof(want), "00-%s-", trace_id);
	ck_assert_msg(strncmp(seen.traceparent, want, strlen(want)) == 0,
	    "AMQP traceparent header \"%s\", want trace %s",
	    seen.traceparent, trace_id);
	h_stop_clean(&t.relay);

	/* Put the message back as the relay sent it, for the worker. */
	h_mq_params(&mp);
	c = mq_new(&mp);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(mq_connect(c, 1) == 0, "broker: %s", mq_error(c));
	memset(&m, 0, sizeof(m));
	m.body = seen.body;
	m.len = strlen(seen.body);
	m.message_id = seen.id;
	m.type = seen.type;
	m.seq = seen.seq;
	m.traceparent = seen.traceparent;
	ck_assert_int_eq(mq_publish_batch(c, "", MQ_QUEUE, &m, 1, 10000), 0);
	ck_assert_int_eq(m.result, MQ_ACKED);
	mq_free(c);

	/* The worker's line shows it. */
	H_START(&t.worker, H_WORKER, NULL, json_logs);
	snprintf(want, sizeof(want), "traceparent=00-%s-", trace_id);
	ck_assert_msg(h_wait_log(&t.worker, want, 1, 30000), "no worker line "
	    "with %s (log %s)", want, t.worker.log);
	ck_assert(h_log_contains(&t.worker, "Handling [CustomerCreated] - "
	    "Payload: '"));
	ck_assert(h_log_contains(&t.worker, json_string_value(
	    json_object_get(o, "id"))));
	json_decref(o);
	h_stop_clean(&t.worker);
	h_stop_clean(&t.app);
	check_json_log(&t.app);
	check_json_log(&t.relay);
	check_json_log(&t.worker);
}
END_TEST

/* ---- the queues' depths (worker/qdepth.c) ---- */

/* Starts w (its log named after test), a worker with its metrics on a
 * free port, returned, and its queue gauges sampled every second; extra:
 * NULL or up to 4 more settings, NULL-terminated. */
static int
start_sampled_worker(struct h_daemon *w, const char *test,
    const char *const *extra)
{
	const char *env[7];
	char port_env[40];
	int port = h_free_port(), n = 0;

	snprintf(port_env, sizeof(port_env), "WORKER_METRICS_PORT=%d", port);
	env[n++] = port_env;
	env[n++] = "WORKER_QUEUE_SAMPLE_INTERVAL=1";
	while (extra != NULL && *extra != NULL && n < 6)
		env[n++] = *extra++;
	env[n] = NULL;
	h_start(w, H_WORKER, test, NULL, env);
	return port;
}

/* The DLQ gauge (what the "DLQ not empty" alert reads) moves with the
 * queue, sampled by the worker as its own login; a deleted dead-letter
 * queue (the broker closes the sampler's channel) costs nothing but the
 * sample: messages are still handled, the outbox gauge still sampled,
 * and the DLQ gauge follows again once the queue is back. */
START_TEST(dlq_gauge_follows_the_dead_letter_queue)
{
	static const char dlq_g[] = "outbox_worker_dlq_messages";
	static const char queue_g[] = "outbox_worker_queue_messages";
	const char *bad[1] = { "{\"id\": \"not json" };
	struct h_daemon w = { 0 };
	mq_conn *c;
	int port;

	h_reset();
	port = start_sampled_worker(&w, __func__, NULL);
	h_wait_metric_is(port, dlq_g, 0, 30000);
	ck_assert(h_metric(port, queue_g) >= 0);

	/* A message the worker cannot decode: dead-lettered, counted. */
	h_mq_publish(bad, NULL, 1);
	h_wait_metric_is(port, dlq_g, 1, 30000);
	ck_assert_int_eq(h_mq_depth(MQ_DLQ), 1);

	/* An operator empties the DLQ: back to 0. */
	c = h_mq_open();
	ck_assert_msg(mq_purge(c, MQ_DLQ, NULL) == 0, "purge: %s",
	    mq_error(c));
	mq_free(c);
	h_wait_metric_is(port, dlq_g, 0, 30000);

	/* The DLQ deleted: the sample fails (said once in the log), the
	 * worker goes on handling, the outbox gauge is still sampled. */
	c = h_mq_open();
	ck_assert_msg(mq_queue_delete(c, MQ_DLQ) == 0, "delete: %s",
	    mq_error(c));
	mq_free(c);
	ck_assert(h_wait_log(&w, "queue depth of outbox.dlq", 1, 30000));
	h_msgs_make(&M_obs, 3, "qdepth", -1);
	h_msgs_publish(&M_obs, 0, M_obs.n);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 3,
	    30000));
	h_msgs_assert_exactly_once(&M_obs);
	h_msgs_free(&M_obs);
	h_wait_metric_is(port, queue_g, 0, 30000);

	/* Back (as the worker's next connect declares it): followed again. */
	h_mq_reset_queues();
	h_mq_publish(bad, NULL, 1);
	h_wait_metric_is(port, dlq_g, 1, 30000);
	ck_assert_int_eq(h_log_count(&w, "queue depth of outbox.dlq"), 1);
	h_stop_clean(&w);
}
END_TEST

/* The outbox gauge counts the ready messages, not those delivered and
 * unacked: a worker (prefetch 10) stuck on a locked row holds 10, the
 * other 20 wait in the queue; the lock gone, they drain to 0. */
START_TEST(queue_gauge_counts_ready_messages)
{
	static const char queue_g[] = "outbox_worker_queue_messages";
	static const char *const prefetch10[] = { "WORKER_PREFETCH=10",
	    "WORKER_BATCH_MAX=10", NULL };
	struct h_daemon w = { 0 };
	db_conn *lock;
	int port;

	h_reset();
	h_msgs_make(&M_obs, 30, "qready", -1);
	lock = h_lock_customer(M_obs.cid[0]);
	port = start_sampled_worker(&w, __func__, prefetch10);
	h_msgs_publish(&M_obs, 0, M_obs.n);
	ck_assert_msg(h_wait_count(h_lock_wait_sql, 1, 30000),
	    "the worker never reached the locked row");
	h_wait_metric_is(port, queue_g, 20, 30000);
	ck_assert_int_eq(db_rollback(lock), DB_OK);
	db_free(lock);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM welcome_emails", 30,
	    30000));
	h_wait_metric_is(port, queue_g, 0, 30000);
	h_msgs_assert_exactly_once(&M_obs);
	h_msgs_free(&M_obs);
	h_stop_clean(&w);
}
END_TEST

Suite *
it_obs_suite(void)
{
	const TTest *const obs[] = { metrics_scraped_and_counters_move,
	    readyz_follows_the_database, traceparent_followed_end_to_end,
	    dlq_gauge_follows_the_dead_letter_queue,
	    queue_gauge_counts_ready_messages, NULL };
	Suite *s = suite_create("obs");

	suites_case(s, "metrics, readiness, trace, json logs", 180, NULL,
	    NULL, obs);
	return s;
}
