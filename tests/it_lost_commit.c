/*
 * it_lost_commit.c - the reply to a COMMIT lost (outbox-sqlproxy between
 * the daemon and MariaDB forwards the COMMIT, then closes the
 * connection), against the real servers.  The daemon finds out what
 * became of the transaction (common/durable.h, durable_resolve: the old
 * session killed and gone, then its rows looked for) before it decides:
 *   - the relay: a batch it published whose marks committed counts as
 *     published (its log line, the counter), and is not marked again;
 *   - the worker: a batch it handled whose commit went through logs its
 *     "Handling" lines and counts as handled, not as duplicates;
 *   - durable_resolve itself: the old session is killed and waited for
 *     when it runs on the same server, never when its server restarted
 *     since (session ids start again at 1: the id may be another's now).
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "durable.h"
#include "harness_relay.h"
#include "harness_worker.h"
#include "suites.h"

Suite *it_lost_commit_suite(void);

#define N_ROWS 200
#define N_MSGS 50
#define PUBLISHED "outbox_relay_messages_published_total"

struct cuts_ud {
	const struct h_proxy *p;
};

static int
cut_done(void *ud)
{
	return h_proxy_cuts(((struct cuts_ud *)ud)->p) >= 1;
}

START_TEST(relay_resolves_a_lost_commit)
{
	struct h_proxy p;
	struct h_daemon d = { 0 };
	struct cuts_ud cu = { &p };
	char menv[48];
	const char *env[] = { p.env, menv, NULL };
	int mport = h_free_port();

	snprintf(menv, sizeof(menv), "RELAY_METRICS_PORT=%d", mport);
	h_proxy_start(&p, __func__);
	H_START(&d, H_RELAY, NULL, env);
	h_proxy_cut(&p);
	h_rows_insert(1, N_ROWS);
	ck_assert_msg(h_wait(30000, cut_done, &cu), "no COMMIT was cut (log "
	    "%s)", p.d.log);
	h_rows_wait_all_published(60000);
	/* Every row counted once, and published once. */
	h_wait_metric(mport, PUBLISHED, N_ROWS, 10000);
	ck_assert_int_eq((long long)h_metric(mport, PUBLISHED), N_ROWS);
	ck_assert_int_eq(h_rows_check_queue(MQ_QUEUE, N_ROWS), 0);
	ck_assert_int_eq(h_log_count(&d, "marked 0 rows published"), 0);
	ck_assert_msg(h_log_contains(&d, "it committed"), "the lost "
	    "commit was not found committed (log %s)", d.log);
	h_stop_clean(&d);
	ck_assert_int_eq(h_daemon_stop(&p.d, 10000), 0);
}
END_TEST

static struct h_msgs M;

static void
teardown(void)
{
	h_msgs_free(&M);
}

START_TEST(worker_resolves_a_lost_commit)
{
	struct h_proxy p;
	struct h_daemon w = { 0 };
	struct cuts_ud cu = { &p };
	char menv[48];
	const char *env[] = { p.env, menv, NULL };
	int mport = h_free_port();

	snprintf(menv, sizeof(menv), "WORKER_METRICS_PORT=%d", mport);
	h_msgs_make(&M, N_MSGS, "lost", -1);
	h_proxy_start(&p, __func__);
	H_START(&w, H_WORKER, NULL, env);
	h_proxy_cut(&p);
	h_msgs_publish(&M, 0, M.n);
	ck_assert_msg(h_wait(30000, cut_done, &cu), "no COMMIT was cut (log "
	    "%s)", p.d.log);
	ck_assert(h_wait_count("SELECT COUNT(*) FROM processed_messages",
	    N_MSGS, 30000));
	h_mq_wait_drained(MQ_QUEUE, 30000);
	h_msgs_assert_exactly_once(&M);
	/* Handled, each once: not duplicates of themselves. */
	ck_assert_int_eq(h_log_count(&w, "Handling [CustomerCreated]"),
	    N_MSGS);
	ck_assert_int_eq(h_log_count(&w, "Duplicate message"), 0);
	ck_assert_int_eq((long long)h_metric(mport,
	    "outbox_worker_messages_handled_total"), N_MSGS);
	ck_assert_msg(h_log_contains(&w, "the transaction committed"),
	    "the lost commit was not found committed (log %s)", w.log);
	h_stop_clean(&w);
	ck_assert_int_eq(h_daemon_stop(&p.d, 10000), 0);
}
END_TEST

/* ---- durable_resolve ---- */

static int
probe_nothing(db_conn *c, void *ud)
{
	(void)c;
	(void)ud;
	return 0;
}

/* The old session still there, on the same server: killed, waited for,
 * then its rows looked for. */
START_TEST(resolve_kills_the_old_session)
{
	db_conn *old = h_role_db("RELAY"), *c = h_role_db("RELAY");
	unsigned long id = db_session_id(old);

	ck_assert_int_eq(durable_resolve(c, id, db_server_started(old),
	    probe_nothing, NULL, "test", 10000), DURABLE_ROLLED_BACK);
	/* old's session is gone: the server closed its connection. */
	ck_assert_int_eq(db_ping(old), DB_ECONN);
	db_free(old);
	db_free(c);
}
END_TEST

/* A session id of an earlier life of the server names nobody, or another
 * session now: nothing is killed. */
START_TEST(resolve_after_a_restart_kills_nobody)
{
	db_conn *other = h_role_db("RELAY"), *c = h_role_db("RELAY");
	unsigned long id = db_session_id(other);

	ck_assert_int_eq(durable_resolve(c, id, db_server_started(other) - 100,
	    probe_nothing, NULL, "test", 10000), DURABLE_ROLLED_BACK);
	ck_assert_int_eq(db_ping(other), DB_OK);
	ck_assert_uint_eq(db_session_id(other), id);
	db_free(other);
	db_free(c);
}
END_TEST

Suite *
it_lost_commit_suite(void)
{
	const TTest *const relay[] = { relay_resolves_a_lost_commit, NULL };
	const TTest *const resolve[] = { resolve_kills_the_old_session,
	    resolve_after_a_restart_kills_nobody, NULL };
	const TTest *const worker[] = { worker_resolves_a_lost_commit, NULL };
	Suite *s = suite_create("lost commit");

	suites_case(s, "relay", 120, h_rows_reset, NULL, relay);
	suites_case(s, "worker", 120, h_reset, teardown, worker);
	suites_case(s, "resolve", 60, NULL, NULL, resolve);
	return s;
}
