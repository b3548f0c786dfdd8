/*
 * bench_e2e.c - outbox-bench-e2e: an open-loop load of POST /customers at
 * a steady rate, then the end-to-end latency of every accepted request:
 * from the customer's row (written in the request's transaction, just
 * before its 201) to the worker's effect (its welcome_emails row, written
 * in the worker's transaction).  Both times come from the database clock.
 *
 *   outbox-bench-e2e <port> [rate/s] [seconds]      (defaults 1000, 30)
 *
 * Open loop: requests are sent on schedule whether or not earlier ones
 * were answered (up to 1024 in flight), so a slow system shows as latency,
 * not as a lower offered rate.  Prints one JSON object.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "cfg.h"
#include "db.h"
#include "log.h"

#define E2E_MAX_INFLIGHT 1024

struct e2e_cfg {
	struct db_params db;
};

static const struct cfg_opt e2e_opts[] = {
	DB_CFG_ROWS(struct e2e_cfg, db),
};

struct req {
	char body[160];
	struct curl_slist *hdr;
	double sent;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t
discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
pct(const double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

struct lat {
	double *v;
	size_t n, cap;
};

static int
lat_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	struct lat *l = ud;

	if (ncols < 1 || cols[0].is_null)
		return 0;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 4096;
		double *nv = realloc(l->v, nc * sizeof(*nv));

		if (nv == NULL)
			return -1;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = strtod(cols[0].s, NULL) / 1e6;
	return 0;
}

static int
count_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	if (ncols > 0 && !cols[0].is_null)
		*(long long *)ud = strtoll(cols[0].s, NULL, 10);
	return 0;
}

int
main(int argc, char **argv)
{
	int port, rate = 1000, secs = 30, running, i, inflight = 0;
	long long sent = 0, due, ok = 0, bad = 0, effects = 0;
	double t0, end, *http_lat;
	size_t nhttp = 0;
	struct e2e_cfg cfg;
	struct db_val arg;
	struct lat l = { 0 };
	char url[128], like[64], err[256];
	struct req *reqs;
	CURLMsg *msg;
	CURLM *m;
	db_conn *c;

	log_init("bench-e2e", LOG_LVL_INFO);
	if (argc < 2 || cfg_parse_int(argv[1], 1, 65535, &port) == -1 ||
	    (argc > 2 && cfg_parse_int(argv[2], 1, 100000, &rate) == -1) ||
	    (argc > 3 && cfg_parse_int(argv[3], 1, 3600, &secs) == -1))
		fatalx("usage: outbox-bench-e2e <port> [rate/s] [seconds]");
	if (cfg_load(e2e_opts, 1 * (sizeof(e2e_opts) / sizeof(e2e_opts[0])),
	    &cfg, err, sizeof(err)) == -1)
		fatalx("config: %s", err);
	reqs = calloc((size_t)rate * (size_t)secs, sizeof(*reqs));
	http_lat = calloc((size_t)rate * (size_t)secs, sizeof(*http_lat));
	if (reqs == NULL || http_lat == NULL)
		fatalx("out of memory");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/customers", port);
	snprintf(like, sizeof(like), "e2e-%d-%ld-%%", (int)getpid(),
	    (long)time(NULL));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 256L);
	t0 = now_s();
	end = t0 + secs;
	for (;;) {
		double now = now_s();

		due = now >= end ? (long long)rate * secs :
		    (long long)((now - t0) * rate);
		while (sent < due && inflight < E2E_MAX_INFLIGHT) {
			struct req *r = &reqs[sent];
			CURL *h = curl_easy_init();
			int n = snprintf(r->body, sizeof(r->body),
			    "{\"email\":\"%.*s%lld@example.com\",\"name\":"
			    "\"E2E\"}", (int)strlen(like) - 1, like, sent);

			(void)n;
			r->hdr = curl_slist_append(NULL,
			    "Content-Type: application/json");
			r->sent = now;
			curl_easy_setopt(h, CURLOPT_URL, url);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdr);
			curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
			curl_easy_setopt(h, CURLOPT_PRIVATE, r);
			curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
			curl_multi_add_handle(m, h);
			sent++;
			inflight++;
		}
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &i)) != NULL) {
			struct req *r;
			long st = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&r);
			curl_easy_getinfo(msg->easy_handle,
			    CURLINFO_RESPONSE_CODE, &st);
			if (st == 201) {
				ok++;
				http_lat[nhttp++] = now_s() - r->sent;
			} else {
				bad++;
			}
			curl_slist_free_all(r->hdr);
			curl_multi_remove_handle(m, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
			inflight--;
		}
		if (sent >= (long long)rate * secs && inflight == 0)
			break;
		curl_multi_poll(m, NULL, 0, 1, NULL);
	}
	curl_multi_cleanup(m);
	curl_global_cleanup();

	/* Wait (bounded) for the worker to have done every effect. */
	db_global_init();
	if ((c = db_new(&cfg.db)) == NULL)
		fatalx("out of memory");
	arg = DB_STR(like);
	for (i = 0; i < 600; i++) {
		if (db_query(c, "SELECT COUNT(*) FROM welcome_emails WHERE "
		    "email LIKE ?", &arg, 1, count_cb, &effects, NULL) != DB_OK)
			fatalx("count effects: %s", db_error(c));
		if (effects >= ok)
			break;
		backoff_sleep(100, NULL);
	}
	if (db_query(c, "SELECT TIMESTAMPDIFF(MICROSECOND, c.created_at, "
	    "w.created_at) FROM customers c JOIN welcome_emails w ON "
	    "w.customer_id = c.id WHERE c.email LIKE ?", &arg, 1, lat_cb, &l,
	    NULL) != DB_OK)
		fatalx("latencies: %s", db_error(c));
	db_free(c);
	db_global_end();
	qsort(l.v, l.n, sizeof(*l.v), cmp_double);
	qsort(http_lat, nhttp, sizeof(*http_lat), cmp_double);
	printf("{\"rate\": %d, \"seconds\": %d, \"sent\": %lld, \"created\": "
	    "%lld, \"failed\": %lld, \"offered_per_s\": %.1f, "
	    "\"http_p50_ms\": %.2f, \"http_p99_ms\": %.2f, \"effects\": %zu, "
	    "\"e2e_p50_ms\": %.2f, \"e2e_p99_ms\": %.2f, \"e2e_max_ms\": %.2f}\n",
	    rate, secs, sent, ok, bad, (double)sent / (now_s() - t0),
	    pct(http_lat, nhttp, 0.5) * 1e3, pct(http_lat, nhttp, 0.99) * 1e3,
	    l.n, pct(l.v, l.n, 0.5) * 1e3, pct(l.v, l.n, 0.99) * 1e3,
	    l.n ? l.v[l.n - 1] * 1e3 : 0.0);
	free(l.v);
	free(http_lat);
	free(reqs);
	return ok == 0 || (long long)l.n < ok ? 1 : 0;
}
