/*
 * it_app_faults.c - the app when things go wrong: the database stopped
 * and started again under a running app (503 at once, then the same
 * process serves again), and SIGTERM (a clean exit, nothing leaked).
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

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

/* ---- shutdown ---- */

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

Suite *
it_app_faults_suite(void)
{
	const TTest *const outage[] = { database_down_then_back, NULL };
	const TTest *const stop[] = { sigterm_clean_exit, NULL };
	Suite *s = suite_create("app");

	tcase_add_unchecked_fixture(suites_case(s, "outage", 120,
	    h_reset_tables, NULL, outage), NULL, database_up);
	suites_case(s, "shutdown", 120, h_reset_tables, NULL, stop);
	return s;
}
