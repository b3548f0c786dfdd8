/*
 * it_app_clients.c - the app against hostile clients: an oversized
 * header, 600 idle, slowloris and huge-body connections while 100
 * requests are served (RSS growth under 64 MiB), and a connection flood
 * shed by the idle timeout.
 */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* Opens a TCP connection to the app; -1 on failure. */
static int
raw_connect(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

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
		if ((fds[n] = raw_connect(app.port)) >= 0)
			n++;
	for (i = 0; i < SLOW; i++) {
		if ((fds[n] = raw_connect(app.port)) < 0)
			continue;
		if (i % 2 == 0)
			ck_assert(write(fds[n], slow_hdr, sizeof(slow_hdr) - 1) > 0);
		else
			ck_assert(write(fds[n], slow_body, sizeof(slow_body) - 1) > 0);
		n++;
	}
	for (i = 0; i < BIG; i++) {
		if ((fds[n] = raw_connect(app.port)) < 0)
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
		if ((fds[n] = raw_connect(d.port)) >= 0)
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

Suite *
it_app_clients_suite(void)
{
	const TTest *const clients[] = { oversized_header_refused,
	    slow_and_idle_clients_do_not_block, connection_flood_is_shed, NULL };
	Suite *s = suite_create("app");

	tcase_add_unchecked_fixture(suites_case(s, "clients", 120, NULL, NULL,
	    clients), clients_app_up, clients_app_down);
	return s;
}
