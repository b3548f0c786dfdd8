/*
 * it_app_clients.c - the app against hostile clients: an oversized
 * header, 600 idle, slowloris and huge-body connections while 100
 * requests are served (RSS growth under 64 MiB), a connection flood
 * shed by the idle timeout, requests that never finish (closed at
 * APP_REQUEST_TIMEOUT whatever their phase), a chunked body over the
 * limit (413 and closed at once), a forged access-log line; and
 * keep-alive kept for every complete request.
 */
#include <check.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "suites.h"

Suite *it_app_clients_suite(void);

#define JSON "application/json"

/* The app the hostile clients of the case go to. */
static struct h_daemon app;

static void
clients_app_up(void)
{
	static const char *const env[] = { "APP_DB_POOL=4", NULL };

	h_reset_tables();
	H_START(&app, H_APP, NULL, env);
}

static void
clients_app_down(void)
{
	h_daemon_stop(&app, H_STOP_MS);
}

/* ---- an oversized header ---- */

START_TEST(oversized_header_refused)
{
	static char hdr[40 * 1024];
	const char *hdrs[] = { hdr, NULL };
	struct h_resp r;
	int rc;

	memcpy(hdr, "X-Big: ", 7);
	memset(hdr + 7, 'x', sizeof(hdr) - 8);
	hdr[sizeof(hdr) - 1] = '\0';
	rc = h_http(app.port, "GET", "/healthz", NULL, NULL, 0, hdrs, &r);
	/* Refused with a 4xx, or the connection is dropped. */
	ck_assert_msg(rc == -1 || (r.status >= 400 && r.status < 500),
	    "status %ld", r.status);
	h_resp_free(&r);
	/* And the server goes on serving others. */
	ck_assert_int_eq(h_http(app.port, "GET", "/healthz", NULL, NULL, 0,
	    NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
}
END_TEST

/* ---- idle, slow and greedy clients ---- */

static long
rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* 300 idle connections, 200 slowloris requests (headers or body never
 * finished) and 100 oversized bodies announced: other clients are still
 * served, and the app's memory stays bounded. */
START_TEST(slow_and_idle_clients_do_not_block)
{
	enum { IDLE = 300, SLOW = 200, BIG = 100, GOOD = 100 };
	static int fds[IDLE + SLOW + BIG];
	static const char slow_hdr[] = "POST /customers HTTP/1.1\r\n"
	    "Host: x\r\nContent-Type: application/json\r\n";
	static const char slow_body[] = "POST /customers HTTP/1.1\r\n"
	    "Host: x\r\nContent-Type: application/json\r\n"
	    "Content-Length: 1000\r\n\r\n{\"email\":";
	static const char big[] = "POST /customers HTTP/1.1\r\n"
	    "Host: x\r\nContent-Type: application/json\r\n"
	    "Content-Length: 100000000\r\n\r\n";
	long rss0, rss1;
	int i, n = 0, ok = 0;
	struct h_resp r;
	char body[128];

	raise_nofile();
	rss0 = rss_kib(app.pid);
	for (i = 0; i < IDLE; i++)
		if ((fds[n] = h_tcp_connect(app.port)) >= 0)
			n++;
	for (i = 0; i < SLOW; i++) {
		if ((fds[n] = h_tcp_connect(app.port)) < 0)
			continue;
		if (i % 2 == 0)
			ck_assert(write(fds[n], slow_hdr, sizeof(slow_hdr) - 1) > 0);
		else
			ck_assert(write(fds[n], slow_body, sizeof(slow_body) - 1) > 0);
		n++;
	}
	for (i = 0; i < BIG; i++) {
		if ((fds[n] = h_tcp_connect(app.port)) < 0)
			continue;
		ck_assert(write(fds[n], big, sizeof(big) - 1) > 0);
		n++;
	}
	ck_assert_int_ge(n, IDLE + SLOW + BIG - 10);
	for (i = 0; i < GOOD; i++) {
		snprintf(body, sizeof(body), "{\"email\":\"hostile%d@example.com\","
		    "\"name\":\"H\"}", i);
		ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON,
		    body, strlen(body), NULL, &r), 0);
		ok += r.status == 201;
		h_resp_free(&r);
	}
	ck_assert_int_eq(ok, GOOD);
	rss1 = rss_kib(app.pid);
	fprintf(stderr, "hostile: %d open connections; app RSS %ld KiB -> "
	    "%ld KiB\n", n, rss0, rss1);
	/* Bounded: 600 connections cost at most their memory limit each
	 * (APP_CONN_MEMORY_KIB, 32 KiB) plus bookkeeping, not the 100 MB
	 * the big requests announced. */
	ck_assert_int_lt(rss1 - rss0, 64 * 1024);
	for (i = 0; i < n; i++)
		close(fds[i]);
}
END_TEST

struct limit_ud {
	int port;
};

static int
healthz_ok(void *ud)
{
	struct limit_ud *u = ud;
	struct h_resp r;
	int ok;

	if (h_http(u->port, "GET", "/healthz", NULL, NULL, 0, NULL, &r) == -1)
		return 0;
	ok = r.status == 200;
	h_resp_free(&r);
	return ok;
}

/* A flood that fills the connection limit with idle connections is shed
 * by the idle timeout: the server serves again without anyone leaving. */
START_TEST(connection_flood_is_shed)
{
	enum { FLOOD = 150 };
	static const char *const env[] = { "APP_MAX_CONNECTIONS=100",
		"APP_CONN_TIMEOUT=2", NULL };
	static int fds[FLOOD];
	struct limit_ud u;
	struct h_daemon d = { 0 };
	int i, n = 0;

	raise_nofile();
	H_START(&d, H_APP, NULL, env);
	u.port = d.port;
	for (i = 0; i < FLOOD; i++)
		if ((fds[n] = h_tcp_connect(d.port)) >= 0)
			n++;
	/* After the idle timeout, a new client is served while the flood's
	 * sockets are still open on our side. */
	ck_assert_msg(h_wait(60000, healthz_ok, &u), "not served again "
	    "within 60 s of a connection flood");
	for (i = 0; i < n; i++)
		close(fds[i]);
	ck_assert_int_eq(h_daemon_stop(&d, H_STOP_MS), 0);
}
END_TEST

/* ---- keep-alive ---- */

struct ka {
	CURL *c;
	int port;
	long connects;
	char body[4096];
	size_t len;
};

static size_t
ka_write(char *p, size_t size, size_t n, void *ud)
{
	struct ka *k = ud;
	size_t len = size * n, room = sizeof(k->body) - 1 - k->len;

	if (len < room)
		room = len;
	memcpy(k->body + k->len, p, room);
	k->len += room;
	k->body[k->len] = '\0';
	return len;
}

/* One request on the shared handle: its status; counts new connections. */
static long
ka_request(struct ka *k, const char *method, const char *path,
    const char *ctype, const char *body, const char *hdr)
{
	struct curl_slist *hl = NULL;
	char url[512], ct[128];
	long status = 0, nc = 0;
	CURLcode rc;

	curl_easy_reset(k->c);
	k->len = 0;
	k->body[0] = '\0';
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", k->port, path);
	curl_easy_setopt(k->c, CURLOPT_URL, url);
	curl_easy_setopt(k->c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(k->c, CURLOPT_NOBODY, 1L);
	if (body != NULL)
		curl_easy_setopt(k->c, CURLOPT_POSTFIELDS, body);
	snprintf(ct, sizeof(ct), "Content-Type:%s%s", ctype ? " " : "",
	    ctype ? ctype : "");
	hl = curl_slist_append(hl, ct);
	hl = curl_slist_append(hl, "Expect:");
	if (hdr != NULL)
		hl = curl_slist_append(hl, hdr);
	curl_easy_setopt(k->c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(k->c, CURLOPT_WRITEFUNCTION, ka_write);
	curl_easy_setopt(k->c, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(k->c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(k->c, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(k->c);
	ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path,
	    curl_easy_strerror(rc));
	curl_easy_getinfo(k->c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(k->c, CURLINFO_NUM_CONNECTS, &nc);
	k->connects += nc;
	curl_slist_free_all(hl);
	return status;
}

/* 100 requests of every kind that reads or refuses a complete request,
 * on one client: one TCP connection for all of them. */
START_TEST(keepalive_for_every_complete_request)
{
	static const struct {
		const char *method, *path, *ctype, *body, *hdr;
		long status;
	} reqs[] = {
		{ "GET", NULL, NULL, NULL, NULL, 200 }, /* the customer */
		{ "GET", "/customers/00000000-0000-4000-8000-000000000000",
		    NULL, NULL, NULL, 404 },
		{ "GET", "/customers/not-a-uuid", NULL, NULL, NULL, 404 },
		{ "HEAD", "/healthz", NULL, NULL, NULL, 200 },
		{ "GET", "/healthz", NULL, NULL, NULL, 200 },
		{ "GET", "/readyz", NULL, NULL, NULL, 200 },
		{ "GET", "/nowhere", NULL, NULL, NULL, 404 },
		{ "POST", "/healthz", NULL, NULL, NULL, 405 },
		{ "DELETE", "/customers", NULL, NULL, NULL, 405 },
		{ "POST", "/customers", "text/plain", "{}", NULL, 415 },
		{ "POST", "/customers", JSON, "{", NULL, 400 },
		{ "POST", "/customers", JSON, "{\"email\":\"x\",\"name\":\"X\"}",
		    NULL, 422 },
		{ "POST", "/customers", JSON, "{\"email\":\"ka@example.com\","
		    "\"name\":\"X\"}", "Idempotency-Key: a b", 400 },
		{ "POST", "/customers", JSON, "{\"email\":\"ka@example.com\","
		    "\"name\":\"Again\"}", NULL, 409 },
	};
	static const char first[] = "{\"email\":\"ka@example.com\","
	    "\"name\":\"Keep\"}";
	const size_t nreq = sizeof(reqs) / sizeof(reqs[0]);
	char path[sizeof(((struct h_resp *)0)->location)];
	struct ka k = { 0 };
	struct h_resp r;
	long st;
	size_t i;

	ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON, first,
	    strlen(first), NULL, &r), 0);
	ck_assert_int_eq(r.status, 201);
	snprintf(path, sizeof(path), "%s", r.location);
	h_resp_free(&r);
	k.c = curl_easy_init();
	k.port = app.port;
	ck_assert_ptr_nonnull(k.c);
	for (i = 0; i < 100; i++) {
		const char *p = reqs[i % nreq].path ? reqs[i % nreq].path : path;

		st = ka_request(&k, reqs[i % nreq].method, p,
		    reqs[i % nreq].ctype, reqs[i % nreq].body,
		    reqs[i % nreq].hdr);
		ck_assert_msg(st == reqs[i % nreq].status, "%s %s: %ld, not "
		    "%ld", reqs[i % nreq].method, p, st,
		    reqs[i % nreq].status);
		ck_assert_msg(k.connects == 1, "%s %s (request %zu): %ld TCP "
		    "connections so far, not 1", reqs[i % nreq].method, p,
		    i + 1, k.connects);
	}
	curl_easy_cleanup(k.c);
}
END_TEST

/* ---- requests that never finish ---- */

struct good_load {
	int port;
	volatile int stop;
	int sent, created;
};

static void *
good_load_main(void *arg)
{
	struct good_load *g = arg;
	char body[128];
	struct h_resp r;

	while (!g->stop) {
		snprintf(body, sizeof(body), "{\"email\":\"good%d@example.com\","
		    "\"name\":\"G\"}", g->sent++);
		if (h_http(g->port, "POST", "/customers", JSON, body,
		    strlen(body), NULL, &r) == 0 && r.status == 201)
			g->created++;
		h_resp_free(&r);
	}
	return NULL;
}

/* The load has created some (ud: struct good_load). */
static int
good_load_going(void *ud)
{
	const struct good_load *g = ud;

	return g->created >= 5;
}

/* Sends one byte every 200 ms until the server closes the connection or
 * timeout_ms passes; returns 1 if it was closed. */
static int
trickle_until_closed(int fd, const char *tail, int timeout_ms)
{
	long long end = clock_ms() + timeout_ms;
	size_t i = 0, n = strlen(tail);

	while (clock_ms() < end) {
		if (write(fd, tail + i % n, 1) != 1)
			return 1;
		i++;
		if (h_tcp_wait_closed(fd, 200, NULL, 0))
			return 1;
	}
	return 0;
}

/* A client that sends a byte every 200 ms never trips the idle timeout;
 * APP_REQUEST_TIMEOUT closes it, whether it is in the request line or
 * headers, in the body, or in a second request on a kept-alive
 * connection, while others are served. */
START_TEST(request_deadline_closes_trickling_clients)
{
	static const char *const env[] = { "APP_REQUEST_TIMEOUT=2",
		"APP_CONN_TIMEOUT=60", NULL };
	static const char hdrs[] = "POST /customers HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
	static const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	struct good_load g = { 0 };
	struct h_daemon d = { 0 };
	char resp[1024] = "";
	pthread_t th;
	long long t0;
	int fd;

	H_START(&d, H_APP, NULL, env);
	g.port = d.port;
	ck_assert_int_eq(pthread_create(&th, NULL, good_load_main, &g), 0);

	/* In the request line and headers. */
	t0 = clock_ms();
	ck_assert_int_ge(fd = h_tcp_connect(d.port), 0);
	ck_assert_msg(trickle_until_closed(fd, "GET /healthz HTTP/1.1\r\n"
	    "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    40000), "headers trickled for 40 s: never closed");
	fprintf(stderr, "request deadline: headers cut after %lld ms\n",
	    clock_ms() - t0);
	close(fd);

	/* In the body. */
	t0 = clock_ms();
	ck_assert_int_ge(fd = h_tcp_connect(d.port), 0);
	ck_assert(write(fd, hdrs, sizeof(hdrs) - 1) > 0);
	ck_assert_msg(trickle_until_closed(fd, "{\"email\":\"aaaaaaaaaaaa",
	    40000), "body trickled for 40 s: never closed");
	fprintf(stderr, "request deadline: body cut after %lld ms\n",
	    clock_ms() - t0);
	close(fd);

	/* The second request of a kept-alive connection. */
	ck_assert_int_ge(fd = h_tcp_connect(d.port), 0);
	ck_assert(write(fd, get, sizeof(get) - 1) > 0);
	ck_assert_msg(h_tcp_read_until(fd, "{\"status\":\"ok\"}", 30000, resp,
	    sizeof(resp)) == 1, "first request: %s", resp);
	ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "first request: "
	    "%s", resp);
	t0 = clock_ms();
	ck_assert_msg(trickle_until_closed(fd, get, 40000), "second request "
	    "trickled for 40 s: never closed");
	fprintf(stderr, "request deadline: kept-alive request cut after %lld "
	    "ms\n", clock_ms() - t0);
	close(fd);

	g.stop = 1;
	pthread_join(th, NULL);
	fprintf(stderr, "request deadline: %d of %d others created\n",
	    g.created, g.sent);
	ck_assert_int_gt(g.created, 0);
	ck_assert_int_eq(g.created, g.sent);
	h_stop_clean(&d);
}
END_TEST

/* A chunked body past APP_BODY_MAX: 413 and the connection closed at
 * once, not read to its end (it never ends here). */
START_TEST(chunked_body_over_limit_413_and_closed)
{
	static const char *const env[] = { "APP_BODY_MAX=1024",
		"APP_CONN_TIMEOUT=60", NULL };
	static const char hdrs[] = "POST /customers HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/json\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n";
	struct good_load g = { 0 };
	struct h_daemon d = { 0 };
	char chunk[300], resp[2048] = "";
	pthread_t th;
	int fd, i, closed;

	H_START(&d, H_APP, NULL, env);
	g.port = d.port;
	ck_assert_int_eq(pthread_create(&th, NULL, good_load_main, &g), 0);
	ck_assert(h_wait(30000, good_load_going, &g));
	ck_assert_int_ge(fd = h_tcp_connect(d.port), 0);
	ck_assert(write(fd, hdrs, sizeof(hdrs) - 1) > 0);
	memcpy(chunk, "100\r\n", 5);
	memset(chunk + 5, 'x', 256);
	memcpy(chunk + 261, "\r\n", 2);
	for (i = 0; i < 8; i++)
		ck_assert(write(fd, chunk, 263) == 263);
	closed = h_tcp_wait_closed(fd, 30000, resp, sizeof(resp));
	close(fd);
	g.stop = 1;
	pthread_join(th, NULL);
	ck_assert_msg(strncmp(resp, "HTTP/1.1 413", 12) == 0, "answer: \"%s\"",
	    resp);
	ck_assert_msg(closed, "connection still open 30 s after the 413");
	ck_assert_int_gt(g.created, 0);
	ck_assert_int_eq(g.created, g.sent);
	h_stop_clean(&d);
}
END_TEST

/* ---- the access log ---- */

/* A path that decodes to a newline and a whole access-log line, and a
 * terminal escape: one access-log line, the bytes escaped. */
START_TEST(forged_access_log_line_is_escaped)
{
	static const char req[] = "GET /x%0a2026/11/26%2023:53:44%20201%20-%20"
	    "3.210ms%20POST%20/customers%1b%5b31m HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n";
	struct h_daemon d = { 0 };
	char resp[2048] = "", line[4096];
	int fd, lines = 0, escaped = 0, forged = 0, raw = 0;
	FILE *f;

	H_START(&d, H_APP, NULL, NULL);
	ck_assert_int_ge(fd = h_tcp_connect(d.port), 0);
	ck_assert(write(fd, req, sizeof(req) - 1) > 0);
	ck_assert(h_tcp_wait_closed(fd, 30000, resp, sizeof(resp)));
	close(fd);
	ck_assert_msg(strncmp(resp, "HTTP/1.1 404", 12) == 0, "%s", resp);
	ck_assert(h_wait_log(&d, "404 -", 1, 30000));
	h_stop_clean(&d);
	ck_assert_ptr_nonnull(f = fopen(d.log, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "POST /customers") != NULL)
			lines++;
		if (strstr(line, "GET /x\\x0a2026/11/26 23:53:44 201 - 3.210ms "
		    "POST /customers\\x1b[31m") != NULL)
			escaped++;
		if (strncmp(line, "2026/11/26 23:53:44", 19) == 0)
			forged++;
		if (strchr(line, '\x1b') != NULL)
			raw++;
	}
	fclose(f);
	ck_assert_msg(lines == 1, "%d lines name POST /customers (log %s)",
	    lines, d.log);
	ck_assert_msg(escaped == 1, "no escaped access-log line (log %s)",
	    d.log);
	ck_assert_int_eq(forged, 0);
	ck_assert_int_eq(raw, 0);
}
END_TEST

Suite *
it_app_clients_suite(void)
{
	const TTest *const clients[] = { oversized_header_refused,
	    slow_and_idle_clients_do_not_block, connection_flood_is_shed,
	    keepalive_for_every_complete_request, NULL };
	Suite *s = suite_create("app");

	const TTest *const conns[] = { request_deadline_closes_trickling_clients,
	    chunked_body_over_limit_413_and_closed,
	    forged_access_log_line_is_escaped, NULL };

	tcase_add_unchecked_fixture(suites_case(s, "clients", 120, NULL, NULL,
	    clients), clients_app_up, clients_app_down);
	suites_case(s, "connections", 300, h_reset_tables, NULL, conns);
	return s;
}
