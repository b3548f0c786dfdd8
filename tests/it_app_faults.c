/*
 * it_app_faults.c - the app when things go wrong: the database stopped
 * and started again under a running app (503 at once, then the same
 * process serves again), the database refusing writes (an outage too),
 * the reply to a COMMIT lost (the app finds out:
 * 201 for what was committed), and SIGTERM (a clean exit, nothing
 * leaked; under keep-alive load with a request stuck on a row lock:
 * every request answered or cleanly closed, no 503 for a commit), and a
 * group waiting on a row lock (the next ones wait APP_GROUP_ALONE_MS,
 * then go); the rows of a group in one INSERT per table, and a group
 * with taken emails (each request alone then: its 409 or 201).
 */
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "harness.h"
#include "suites.h"

Suite *it_app_faults_suite(void);

#define JSON "application/json"

/* ---- database outage ---- */

struct created_ud {
	int port;
	int n;
};

static int
post_created(void *ud)
{
	struct created_ud *u = ud;
	char body[128];
	struct h_resp r;
	int ok;

	snprintf(body, sizeof(body), "{\"email\":\"back%d@example.com\","
	    "\"name\":\"Back\"}", u->n++);
	if (h_http(u->port, "POST", "/customers", JSON, body, strlen(body),
	    NULL, &r) == -1)
		return 0;
	ok = r.status == 201;
	h_resp_free(&r);
	return ok;
}

START_TEST(database_down_then_back)
{
	static const char body[] = "{\"email\":\"down@example.com\","
	    "\"name\":\"Down\"}";
	static const char *const env[] = { "APP_DB_POOL=4", NULL };
	struct h_daemon app = { 0 };
	struct created_ud u = { 0, 0 };
	struct h_resp r;
	long long t0;
	pid_t pid;

	H_START(&app, H_APP, NULL, env);
	u.port = app.port;
	pid = app.pid;
	ck_assert_int_eq(h_infra("db-stop"), 0);
	t0 = clock_ms();
	ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON, body,
	    strlen(body), NULL, &r), 0);
	ck_assert_int_eq(r.status, 503);
	ck_assert(h_is_error_body(r.body));
	h_resp_free(&r);
	ck_assert_int_eq(h_http(app.port, "GET", "/readyz", NULL, NULL, 0,
	    NULL, &r), 0);
	ck_assert_int_eq(r.status, 503);
	h_resp_free(&r);
	ck_assert_int_eq(h_http(app.port, "GET", "/healthz", NULL, NULL, 0,
	    NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
	fprintf(stderr, "database down: answered 503 in %lld ms\n",
	    clock_ms() - t0);
	ck_assert_int_eq(kill(pid, 0), 0);

	ck_assert_int_eq(h_infra("db-start"), 0);
	/* The same process recovers by itself. */
	ck_assert_msg(h_wait(60000, post_created, &u),
	    "no 201 within 60 s of the database restart");
	ck_assert_int_eq(app.pid, pid);
	ck_assert_int_eq(kill(pid, 0), 0);
	ck_assert(h_log_contains(&app, "database unavailable"));
	ck_assert(h_log_contains(&app, "database reachable again"));
	h_stop_clean(&app);
}
END_TEST

/* The database answers but refuses every write (read_only, a full disk):
 * that is an outage for the app, as for the relay: 503 (retry later, with
 * the same Idempotency-Key), one warning, backoff; not a 500 per request
 * and a warning each.  Writes allowed again: 201 from the same process. */
START_TEST(database_refuses_writes_then_back)
{
	static const char *const env[] = { "APP_DB_POOL=2", NULL };
	struct h_daemon app = { 0 };
	struct created_ud u = { 0, 1000 };
	char body[128];
	struct h_resp r;
	int i, n503 = 0;

	H_START(&app, H_APP, NULL, env);
	u.port = app.port;
	h_sql("SET GLOBAL read_only = 1");
	for (i = 0; i < 20; i++) {
		snprintf(body, sizeof(body), "{\"email\":\"ro%d@example.com\","
		    "\"name\":\"Read Only\"}", i);
		ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON,
		    body, strlen(body), NULL, &r), 0);
		ck_assert_msg(r.status == 503, "POST while the database refuses "
		    "writes: %ld %s", r.status, r.body);
		n503++;
		h_resp_free(&r);
	}
	ck_assert_int_eq(n503, 20);
	ck_assert_int_le(h_log_count(&app, "WARN"), 1);
	ck_assert_int_eq(h_log_count(&app, " 500 - "), 0);
	h_sql("SET GLOBAL read_only = 0");
	ck_assert_msg(h_wait(60000, post_created, &u),
	    "no 201 within 60 s of writes allowed again");
	ck_assert(h_log_contains(&app, "database reachable again"));
	h_stop_clean(&app);
}
END_TEST

static void
writes_allowed(void)
{
	h_sql("SET GLOBAL read_only = 0");
}

/* ---- a lost COMMIT reply ---- */

/* The proxy between the app and MariaDB forwards a COMMIT and closes the
 * connection before its reply: the group is committed, the app does not
 * know it.  It finds out (old session gone, rows read, barrier) and
 * answers 201; a retry then gets 409: the customer is there. */
START_TEST(commit_reply_lost_answers_what_committed)
{
	static const char body[] = "{\"email\":\"lost@example.com\","
	    "\"name\":\"Lost\"}";
	struct h_daemon app = { 0 };
	struct h_proxy proxy;
	char loc[300];
	const char *env[] = { proxy.env, "APP_DB_POOL=1", NULL };
	struct db_val a;
	struct h_resp r;

	h_proxy_start(&proxy, __func__);
	H_START(&app, H_APP, NULL, env);
	h_proxy_cut(&proxy);
	ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON, body,
	    strlen(body), NULL, &r), 0);
	ck_assert_msg(r.status == 201, "lost COMMIT reply answered %ld: %s "
	    "(log %s)", r.status, r.body, app.log);
	snprintf(loc, sizeof(loc), "%s", r.location);
	h_resp_free(&r);
	ck_assert_msg(h_proxy_cuts(&proxy) >= 1, "the proxy cut nothing (log "
	    "%s)", proxy.d.log);
	a = DB_STR(loc + strlen("/customers/"));
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers WHERE id = ?",
	    &a, 1), 1);
	ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON, body,
	    strlen(body), NULL, &r), 0);
	ck_assert_int_eq(r.status, 409);
	h_resp_free(&r);
	h_stop_clean(&app);
	h_daemon_stop(&proxy.d, H_STOP_MS);
}
END_TEST

/* ---- shutdown ---- */

enum { KA_CLIENTS = 32, KA_MAX = 4000 };

/* What one request of a keep-alive client got. */
struct ka_out {
	char email[64];
	long status;    /* 0: no answer */
	CURLcode rc;
	int conn_close; /* the answer said Connection: close */
};

struct ka_client {
	int port;
	int index;
	int blocked;    /* sends the one request stuck on the row lock */
	volatile int *stop;
	struct ka_out out[KA_MAX];
	int n;
	volatile int answered;
};

static size_t
ka_discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

static size_t
ka_header(char *p, size_t size, size_t n, void *ud)
{
	struct ka_out *o = ud;

	if (size * n >= 17 && strncasecmp(p, "Connection: close", 17) == 0)
		o->conn_close = 1;
	return size * n;
}

/* POSTs in a loop on one kept-alive connection until the server closes
 * it or refuses a new one. */
static void *
ka_client_main(void *arg)
{
	struct ka_client *k = arg;
	struct curl_slist *hl = NULL;
	char url[128], body[160];
	struct ka_out *o;
	CURL *c = curl_easy_init();

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/customers", k->port);
	hl = curl_slist_append(hl, "Content-Type: application/json");
	hl = curl_slist_append(hl, "Expect:");
	while (k->n < KA_MAX) {
		o = &k->out[k->n++];
		if (k->blocked)
			snprintf(o->email, sizeof(o->email), "locked@example.com");
		else
			snprintf(o->email, sizeof(o->email), "ka%d-%d@example.com",
			    k->index, k->n);
		snprintf(body, sizeof(body), "{\"email\":\"%s\",\"name\":\"K\"}",
		    o->email);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ka_discard);
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ka_header);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, o);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		o->rc = curl_easy_perform(c);
		if (o->rc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &o->status);
		k->answered++;
		if (o->rc != CURLE_OK || o->status != 201 || k->blocked)
			break;
	}
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return NULL;
}

/* An insert of the app has been waiting half a second: the row lock.
 * (INNODB_TRX is a cache that lags for tens of seconds under this load;
 * the process list does not.) */
static int
lock_waiting(void *ud)
{
	(void)ud;
	return h_count("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
	    "WHERE USER = 'outbox_app' AND TIME_MS >= 500 AND "
	    "INFO LIKE 'INSERT INTO customers%'", NULL, 0) >= 1;
}

static int
load_going(void *ud)
{
	struct ka_client *ks = ud;
	int i, n = 0;

	for (i = 0; i < KA_CLIENTS; i++)
		n += ks[i].answered;
	return n >= 300;
}

/* 32 keep-alive clients POST in a loop, one of them stuck on a row lock
 * an administrator holds; SIGTERM: exit 0 within APP_SHUTDOWN_TIMEOUT,
 * every request answered (201 or 503) or its connection cleanly closed
 * (refused, or closed before an answer began), the stuck one answered
 * 503 after its transaction was rolled back, every 201 with its rows and
 * no row for any 503. */
START_TEST(sigterm_under_keepalive_load)
{
	/* The lock wait outlasts the shutdown: the stuck request is still
	 * waiting when its transaction must be rolled back. */
	static const char *const env[] = { "APP_SHUTDOWN_TIMEOUT=10",
		"APP_DB_POOL=4", "APP_LOCK_WAIT_TIMEOUT=30", "DB_IO_TIMEOUT=40",
		NULL };
	static struct ka_client ks[KA_CLIENTS];
	struct h_daemon d = { 0 };
	struct db_params p;
	pthread_t th[KA_CLIENTS];
	long long t0, took;
	int i, j, rc, n201 = 0, n503 = 0, closed = 0, stuck = 0;
	db_conn *admin;
	struct db_val a;

	H_START(&d, H_APP, NULL, env);
	h_db_params(&p);
	ck_assert_ptr_nonnull(admin = db_new(&p));
	ck_assert_int_eq(db_begin(admin), DB_OK);
	ck_assert_int_eq(db_exec_sql(admin, "INSERT INTO customers (id, email, "
	    "name, created_at, updated_at) VALUES ('00000000-0000-4000-8000-"
	    "00000000000a', 'locked@example.com', 'Admin', UTC_TIMESTAMP(6), "
	    "UTC_TIMESTAMP(6))"), DB_OK);
	/* The load first, then the one that gets stuck (in a group of its
	 * own or with a few others: they wait with it). */
	for (i = 0; i < KA_CLIENTS; i++) {
		memset(&ks[i], 0, sizeof(ks[i]));
		ks[i].port = d.port;
		ks[i].index = i;
		ks[i].blocked = i == 0;
	}
	for (i = 1; i < KA_CLIENTS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, ka_client_main,
		    &ks[i]), 0);
	ck_assert_msg(h_wait(60000, load_going, ks), "no load");
	ck_assert_int_eq(pthread_create(&th[0], NULL, ka_client_main, &ks[0]),
	    0);
	ck_assert_msg(h_wait(60000, lock_waiting, NULL), "no request waits "
	    "for the row lock");
	t0 = clock_ms();
	kill(d.pid, SIGTERM);
	rc = h_daemon_wait(&d, 60000);
	took = clock_ms() - t0;
	for (i = 0; i < KA_CLIENTS; i++)
		pthread_join(th[i], NULL);
	db_rollback(admin);
	db_free(admin);
	fprintf(stderr, "shutdown under keep-alive load: exit %d after %lld "
	    "ms (log %s)\n", rc, took, d.log);
	ck_assert_msg(rc == 0, "exit status %d (log %s)", rc, d.log);
	ck_assert_msg(took < 15000, "exit after %lld ms, over the 10 s "
	    "APP_SHUTDOWN_TIMEOUT", took);
	ck_assert(!h_log_contains(&d, "AddressSanitizer"));
	for (i = 0; i < KA_CLIENTS; i++) {
		for (j = 0; j < ks[i].n; j++) {
			struct ka_out *o = &ks[i].out[j];

			a = DB_STR(o->email);
			/* The 201s are counted here and checked as a set
			 * below: one query each would outlast the test. */
			if (o->rc == CURLE_OK && o->status == 201) {
				n201++;
			} else if (o->rc == CURLE_OK && o->status == 503) {
				n503++;
				stuck += ks[i].blocked;
				ck_assert_msg(h_count("SELECT COUNT(*) FROM "
				    "customers WHERE email = ?", &a, 1) == 0,
				    "503 for %s, which was committed", o->email);
			} else if (o->rc == CURLE_COULDNT_CONNECT ||
			    o->rc == CURLE_GOT_NOTHING ||
			    o->rc == CURLE_SEND_ERROR ||
			    o->rc == CURLE_RECV_ERROR) {
				closed++;
				ck_assert_msg(h_count("SELECT COUNT(*) FROM "
				    "customers WHERE email = ?", &a, 1) == 0,
				    "%s closed without an answer, but "
				    "committed", o->email);
				ck_assert_msg(!ks[i].blocked, "the stuck request "
				    "got no answer: %s", curl_easy_strerror(o->rc));
			} else {
				ck_abort_msg("%s: status %ld, %s", o->email,
				    o->status, curl_easy_strerror(o->rc));
			}
			if (o->status == 503 && !ks[i].blocked)
				ck_assert_msg(o->conn_close, "a 503 without "
				    "Connection: close");
		}
	}
	/* Every 201 has its row: the emails are unique and every request
	 * without a 201 was seen to have none. */
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers WHERE email "
	    "LIKE 'ka%'", NULL, 0), n201);
	/* Every customer has its event (one set-based look: a query per
	 * customer through JSON_VALUE would scan the outbox each time). */
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers c LEFT JOIN "
	    "(SELECT JSON_VALUE(payload, '$.id') AS id FROM outbox) o "
	    "ON o.id = c.id WHERE o.id IS NULL", NULL, 0), 0);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox", NULL, 0),
	    h_count("SELECT COUNT(*) FROM customers", NULL, 0));
	fprintf(stderr, "shutdown under keep-alive load: %d created, %d 503, "
	    "%d closed or refused\n", n201, n503, closed);
	ck_assert_int_eq(stuck, 1);
	ck_assert_int_gt(n201, 0);
}
END_TEST

START_TEST(sigterm_clean_exit)
{
	static const char body[] = "{\"email\":\"term@example.com\","
	    "\"name\":\"Term\"}";
	struct h_daemon d = { 0 };
	struct h_resp r;

	H_START(&d, H_APP, NULL, NULL);
	ck_assert_int_eq(h_http(d.port, "POST", "/customers", JSON, body,
	    strlen(body), NULL, &r), 0);
	ck_assert_int_eq(r.status, 201);
	h_resp_free(&r);
	/* Exit 0 also means LeakSanitizer found nothing. */
	h_stop_clean(&d);
}
END_TEST

/* After an outage test, whatever its outcome. */
static void
database_up(void)
{
	h_infra("db-start");
}

/* ---- a group waiting on a row lock ---- */

struct held_post {
	int port;
	char email[64];
	long status;
};

static void *
held_post_main(void *arg)
{
	struct held_post *h = arg;
	char body[128];
	struct h_resp r;

	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"name\":\"Held\"}",
	    h->email);
	if (h_http(h->port, "POST", "/customers", JSON, body, strlen(body),
	    NULL, &r) == 0)
		h->status = r.status;
	h_resp_free(&r);
	return NULL;
}

/* A test session's uncommitted customer with this email: the app's
 * INSERT of the same email waits for its row lock. */
static db_conn *
hold_email(const char *email)
{
	struct db_params p;
	struct db_val a = DB_STR(email);
	db_conn *admin;

	h_db_params(&p);
	ck_assert_ptr_nonnull(admin = db_new(&p));
	ck_assert_int_eq(db_begin(admin), DB_OK);
	ck_assert_int_eq(db_exec(admin, "INSERT INTO customers (id, email, "
	    "name, created_at, updated_at) VALUES ('00000000-0000-4000-8000-"
	    "00000000000b', ?, 'Admin', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
	    &a, 1, NULL), DB_OK);
	return admin;
}

/* The outbox seq of the customer created with this email. */
static long long
seq_of(const char *email)
{
	struct db_val a = DB_STR(email);

	return h_count("SELECT seq FROM outbox WHERE JSON_VALUE(payload, "
	    "'$.email') = ?", &a, 1);
}

/* One group at a time (APP_GROUP_ALONE_MS, 20 ms by default), but a
 * group stuck on a row lock lets the next ones go: ten requests are
 * created, one after the other, while it still waits; it is created once
 * the lock is gone. */
START_TEST(group_on_a_lock_lets_the_others_go)
{
	static const char *const env[] = { "APP_DB_POOL=4",
		"APP_LOCK_WAIT_TIMEOUT=30", "DB_IO_TIMEOUT=40", NULL };
	struct held_post h = { 0 };
	struct h_daemon d = { 0 };
	char body[128];
	struct h_resp r;
	pthread_t th;
	db_conn *admin;
	int i;

	H_START(&d, H_APP, NULL, env);
	admin = hold_email("held@example.com");
	h.port = d.port;
	snprintf(h.email, sizeof(h.email), "held@example.com");
	ck_assert_int_eq(pthread_create(&th, NULL, held_post_main, &h), 0);
	ck_assert_msg(h_wait(60000, lock_waiting, NULL), "no request waits "
	    "for the row lock");
	/* Emails after the held one: an INSERT into the gap before it would
	 * wait behind the held one's lock request (InnoDB's gap locks). */
	for (i = 0; i < 10; i++) {
		snprintf(body, sizeof(body), "{\"email\":\"later%d@example.com\","
		    "\"name\":\"Free\"}", i);
		ck_assert_int_eq(h_http(d.port, "POST", "/customers", JSON,
		    body, strlen(body), NULL, &r), 0);
		ck_assert_msg(r.status == 201, "status %ld while a group "
		    "waits on a lock", r.status);
		h_resp_free(&r);
	}
	ck_assert_msg(lock_waiting(NULL), "the held request no longer waits");
	db_rollback(admin);
	db_free(admin);
	pthread_join(th, NULL);
	ck_assert_int_eq(h.status, 201);
	ck_assert_int_lt(seq_of("later9@example.com"),
	    seq_of("held@example.com"));
	h_stop_clean(&d);
}
END_TEST

/* The next group waits for the one at work during APP_GROUP_ALONE_MS
 * (here longer than the lock is held): a request sent while the first
 * waits on a lock stays queued and is created after it. */
START_TEST(groups_wait_for_the_one_at_work)
{
	char metrics[64];
	const char *env[] = { "APP_DB_POOL=4", "APP_GROUP_ALONE_MS=60000",
		"APP_LOCK_WAIT_TIMEOUT=30", "DB_IO_TIMEOUT=40", metrics, NULL };
	struct held_post h = { 0 }, next = { 0 };
	struct h_daemon d = { 0 };
	pthread_t th, tn;
	db_conn *admin;
	int mport = h_free_port();

	snprintf(metrics, sizeof(metrics), "APP_METRICS_PORT=%d", mport);
	H_START(&d, H_APP, NULL, env);
	admin = hold_email("first@example.com");
	h.port = next.port = d.port;
	snprintf(h.email, sizeof(h.email), "first@example.com");
	snprintf(next.email, sizeof(next.email), "next@example.com");
	ck_assert_int_eq(pthread_create(&th, NULL, held_post_main, &h), 0);
	ck_assert_msg(h_wait(60000, lock_waiting, NULL), "no request waits "
	    "for the row lock");
	ck_assert_int_eq(pthread_create(&tn, NULL, held_post_main, &next), 0);
	/* Queued behind the gate, not at work on another thread. */
	h_wait_metric_is(mport, "outbox_app_queue_depth", 1, 30000);
	db_rollback(admin);
	db_free(admin);
	pthread_join(th, NULL);
	pthread_join(tn, NULL);
	ck_assert_int_eq(h.status, 201);
	ck_assert_int_eq(next.status, 201);
	ck_assert_int_gt(seq_of("next@example.com"),
	    seq_of("first@example.com"));
	h_wait_metric_is(mport, "outbox_app_queue_depth", 0, 30000);
	h_stop_clean(&d);
}
END_TEST

/* ---- a group's rows: one INSERT per table ---- */

/* The app behind a lock: APP_GROUP_ALONE_MS long, a first request held
 * on a row lock (email a0@example.com), then the n requests queued
 * behind it (emails after a0: outside the gap its lock request covers).
 * Once the lock is gone they are one group. */
struct behind {
	struct h_daemon d;
	int mport;
	db_conn *admin;
	struct held_post first, ps[8];
	pthread_t tf, th[8];
	size_t n;
};

static void
behind_start(struct behind *b, const char *const *emails, size_t n)
{
	static char metrics[64];
	static const char *env[] = { "APP_DB_POOL=4",
		"APP_GROUP_ALONE_MS=60000", "APP_LOCK_WAIT_TIMEOUT=30",
		"DB_IO_TIMEOUT=40", metrics, NULL };
	size_t i;

	ck_assert_uint_le(n, 8);
	b->mport = h_free_port();
	snprintf(metrics, sizeof(metrics), "APP_METRICS_PORT=%d", b->mport);
	H_START(&b->d, H_APP, NULL, env);
	b->admin = hold_email("a0@example.com");
	b->first.port = b->d.port;
	snprintf(b->first.email, sizeof(b->first.email), "a0@example.com");
	ck_assert_int_eq(pthread_create(&b->tf, NULL, held_post_main,
	    &b->first), 0);
	ck_assert_msg(h_wait(60000, lock_waiting, NULL), "no request waits "
	    "for the row lock");
	for (i = 0; i < n; i++) {
		b->ps[i].port = b->d.port;
		snprintf(b->ps[i].email, sizeof(b->ps[i].email), "%s",
		    emails[i]);
		ck_assert_int_eq(pthread_create(&b->th[i], NULL,
		    held_post_main, &b->ps[i]), 0);
	}
	b->n = n;
	h_wait_metric_is(b->mport, "outbox_app_queue_depth", (double)n,
	    30000);
}

/* The lock goes (the first request is created: its email was only held,
 * never committed); every request is answered. */
static void
behind_release(struct behind *b)
{
	size_t i;

	db_rollback(b->admin);
	db_free(b->admin);
	pthread_join(b->tf, NULL);
	for (i = 0; i < b->n; i++)
		pthread_join(b->th[i], NULL);
	ck_assert_int_eq(b->first.status, 201);
}

static long long
com_inserts(void)
{
	return h_count("SELECT VARIABLE_VALUE FROM "
	    "information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = "
	    "'COM_INSERT'", NULL, 0);
}

/* Five requests in one group: one INSERT into customers and one into
 * outbox for the five (the lone first request: one each), every one
 * created with its own outbox row. */
START_TEST(group_rows_in_one_statement_each)
{
	static const char *const emails[] = { "b1@example.com",
		"b2@example.com", "b3@example.com", "b4@example.com",
		"b5@example.com" };
	struct behind b = { 0 };
	long long ins0;
	double groups0, rows0;
	size_t i;

	behind_start(&b, emails, 5);
	ins0 = com_inserts();
	groups0 = h_metric(b.mport, "outbox_app_group_commit_size_count");
	rows0 = h_metric(b.mport, "outbox_app_group_commit_size_sum");
	behind_release(&b);
	for (i = 0; i < 5; i++)
		ck_assert_msg(b.ps[i].status == 201, "%s: %ld", emails[i],
		    b.ps[i].status);
	/* The first's customer INSERT was counted when it began to wait:
	 * its outbox INSERT, then the group's two (ten one row at a time). */
	ck_assert_int_eq(com_inserts() - ins0, 3);
	/* The first's group was counted when it began: one group of 5. */
	ck_assert_int_eq((long long)(h_metric(b.mport,
	    "outbox_app_group_commit_size_count") - groups0), 1);
	ck_assert_int_eq((long long)(h_metric(b.mport,
	    "outbox_app_group_commit_size_sum") - rows0), 5);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers c JOIN "
	    "outbox o ON JSON_VALUE(o.payload, '$.id') = c.id WHERE c.email "
	    "LIKE 'b_@example.com'", NULL, 0), 5);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox", NULL, 0), 6);
	h_stop_clean(&b.d);
}
END_TEST

/* A group with an email already registered and one twice (another
 * case): the one INSERT fails as a whole, and each request alone gets
 * its answer: 409 for the taken ones, 201 with its outbox row for the
 * others. */
START_TEST(group_with_taken_emails)
{
	static const char *const emails[] = { "c1@example.com",
		"c-taken@example.com", "c2@example.com", "C2@example.com",
		"c3@example.com" };
	static const char taken[] = "{\"email\":\"c-taken@example.com\","
	    "\"name\":\"Taken\"}";
	struct behind b = { 0 };
	struct h_resp r;
	size_t i;

	/* Registered before the group, by the same app. */
	behind_start(&b, NULL, 0);
	behind_release(&b);
	ck_assert_int_eq(h_http(b.d.port, "POST", "/customers", JSON, taken,
	    strlen(taken), NULL, &r), 0);
	ck_assert_int_eq(r.status, 201);
	h_resp_free(&r);
	h_stop_clean(&b.d);
	h_sql("DELETE FROM customers WHERE email = 'a0@example.com'");

	memset(&b, 0, sizeof(b));
	behind_start(&b, emails, 5);
	behind_release(&b);
	/* c2 and C2 are one email: the first in the queue (the requests
	 * are sent at once) is created. */
	for (i = 0; i < 5; i++) {
		if (i == 2 || i == 3)
			continue;
		ck_assert_msg(b.ps[i].status == (i == 1 ? 409 : 201),
		    "%s: %ld", emails[i], b.ps[i].status);
	}
	ck_assert_msg((b.ps[2].status == 201 && b.ps[3].status == 409) ||
	    (b.ps[2].status == 409 && b.ps[3].status == 201),
	    "c2: %ld, C2: %ld", b.ps[2].status, b.ps[3].status);
	/* Three created, and the one registered before: each with its one
	 * outbox row (email_key: the email in lower case; C2 may win). */
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers WHERE "
	    "email_key LIKE 'c%'", NULL, 0), 4);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers c JOIN "
	    "outbox o ON JSON_VALUE(o.payload, '$.id') = c.id WHERE "
	    "c.email_key LIKE 'c%'", NULL, 0), 4);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE "
	    "LOWER(JSON_VALUE(payload, '$.email')) LIKE 'c%'", NULL, 0), 4);
	h_stop_clean(&b.d);
}
END_TEST

Suite *
it_app_faults_suite(void)
{
	const TTest *const outage[] = { database_down_then_back, NULL };
	const TTest *const stop[] = { sigterm_clean_exit,
	    sigterm_under_keepalive_load, NULL };
	const TTest *const lost[] = { commit_reply_lost_answers_what_committed,
	    NULL };
	const TTest *const ro[] = { database_refuses_writes_then_back, NULL };
	const TTest *const locks[] = { group_on_a_lock_lets_the_others_go,
	    groups_wait_for_the_one_at_work, group_rows_in_one_statement_each,
	    group_with_taken_emails, NULL };
	Suite *s = suite_create("app");

	tcase_add_unchecked_fixture(suites_case(s, "outage", 120,
	    h_reset_tables, NULL, outage), NULL, database_up);
	suites_case(s, "shutdown", 240, h_reset_tables, NULL, stop);
	suites_case(s, "commit lost", 120, h_reset_tables, NULL, lost);
	suites_case(s, "locks", 120, h_reset_tables, NULL, locks);
	tcase_add_unchecked_fixture(suites_case(s, "writes refused", 120,
	    h_reset_tables, NULL, ro), NULL, writes_allowed);
	return s;
}
