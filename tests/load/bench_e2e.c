/*
 * bench_e2e.c - outbox-bench-e2e: an open-loop load of POST /customers at
 * a steady rate, then the end-to-end latency of every accepted request:
 * from the customer's row (written in the request's transaction, just
 * before its 201) to the worker's effect (its welcome_emails row, written
 * in the worker's transaction), and from the moment the POST was sent to
 * that effect (post_* keys: the HTTP parse, the app's queue and its
 * transaction's first statements included), and from the row to the
 * relay's mark of its outbox row (mark_* keys: poll mode only, where the
 * mark follows the broker's confirm; the effect may come before it: the
 * relay's share of the whole; null in binlog mode, which marks nothing).
 * Each as its p50, p99 and max, as is the app's answer (http_*: from
 * the send to the 201).  The row times come from the database and
 * the app, the send time from this program: one machine's wall clock
 * (CLOCK_REALTIME) for all.
 *
 *   outbox-bench-e2e <port> [rate/s] [seconds] [latency file]
 *                                                   (defaults 1000, 30)
 *
 * With a latency file, also writes there every end-to-end latency in ms,
 * sorted, one a line after a "#" header line (tests/load/bench_charts.sh
 * draws its distribution): the values the percentiles come from, already
 * in memory, so it costs a few milliseconds and no more memory; a file
 * that cannot be written is a warning, never a failed run.
 *
 * Open loop (loadgen.c): requests are sent on schedule whether or not
 * earlier ones were answered (up to 1024 in flight), so a slow system
 * shows as latency, not as a lower offered rate.  A rate of 0 is a
 * closed loop instead: one request at a time, each sent once the effect
 * of the one before it is in the database (looked for every 0.5 ms by
 * its customer id, the primary key of welcome_emails), for the given
 * seconds.  Prints one JSON object.
 *
 * It also prints the database's own work during the load (db_<counter>
 * keys): the growth of the global status counters of E2E_STATUS, from
 * just before the first request to the last answer, before this program
 * asks anything about the run (its counting queries read every row of
 * the run: counted, they would be most of the rows read).  The effects
 * of the last few requests may still be under way then: at 10/s at most
 * one request's, at 1,000/s a few milliseconds' worth.
 *
 * The emails are spread over the key space as real ones are (a hashed
 * local part; the run's own domain tells its rows apart), so the unique
 * email index sees random inserts.  The run's rows are found through the
 * id ranges that start at the run's start (ids are time-ordered), never by
 * a scan: with millions of rows of history (make bench, "history") a
 * scan per poll would load the database it measures.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "cfg.h"
#include "clock.h"
#include "db.h"
#include "loadgen.h"
#include "log.h"

#define E2E_MAX_INFLIGHT 1024
/* One request at a time (rate 0): requests at most per second, how often
 * and how long the effect of each is looked for. */
#define SERIAL_MAX_PER_S 2000
#define SERIAL_LOOK_US 500
#define SERIAL_WAIT_MS 5000

/* The global status counters printed as db_<name, lower case>: the rows
 * the server's handlers read (each way), wrote, updated, deleted; InnoDB's
 * fsyncs; the binary log's group commits (one fsync each with
 * sync_binlog=1) and bytes; the buffer pool's pages read from disk and
 * written, its waits for a free page; row lock waits (and their ms); the
 * redo log's bytes.  (MariaDB 10.11 has no Innodb_rows_*.) */
static const char *const E2E_STATUS[] = {
	"Handler_read_first", "Handler_read_key", "Handler_read_last",
	"Handler_read_next", "Handler_read_prev", "Handler_read_rnd",
	"Handler_read_rnd_next", "Handler_write", "Handler_update",
	"Handler_delete", "Innodb_data_fsyncs", "Binlog_group_commits",
	"Binlog_bytes_written", "Innodb_buffer_pool_reads",
	"Innodb_buffer_pool_pages_flushed", "Innodb_buffer_pool_wait_free",
	"Innodb_row_lock_waits", "Innodb_row_lock_time", "Innodb_os_log_written",
};
#define E2E_NSTATUS (sizeof(E2E_STATUS) / sizeof(E2E_STATUS[0]))

struct e2e_cfg {
	struct db_params db;
};

static const struct cfg_opt e2e_opts[] = {
	DB_CFG_ROWS(struct e2e_cfg, db),
};

/* The run: its emails' domain and first id, what came back. */
struct e2e {
	char like[64];           /* SQL LIKE pattern of the run's emails */
	char domain[48];         /* e2e-<pid>-<time>.example */
	char since[40];          /* below every id made after the start */
	long long ok, bad;
	double *http_lat;        /* seconds, one per 201 */
	size_t nhttp;
	double *sent_wall;       /* per request index: wall time sent, 0 */
	long long total;
};

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

/* Prints `, "<key>_p50_ms": x, "<key>_p99_ms": y, "<key>_max_ms": z` of
 * the sorted seconds v, each null when v is empty (nothing measured, not
 * a time of 0). */
static void
print_pcts(const char *key, const double *v, size_t n)
{
	if (n == 0) {
		printf(", \"%s_p50_ms\": null, \"%s_p99_ms\": null, "
		    "\"%s_max_ms\": null", key, key, key);
		return;
	}
	printf(", \"%s_p50_ms\": %.2f, \"%s_p99_ms\": %.2f, "
	    "\"%s_max_ms\": %.2f", key, pct(v, n, 0.5) * 1e3, key,
	    pct(v, n, 0.99) * 1e3, key, v[n - 1] * 1e3);
}

/* Appends v (seconds): 0, or -1 out of memory. */
static int
lat_push(struct lat *l, double v)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 4096;
		double *nv = realloc(l->v, nc * sizeof(*nv));

		if (nv == NULL)
			return -1;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = v;
	return 0;
}

/* Rows of (row to effect, row to mark) in microseconds: the first into
 * ud[0], the second, when there is one (poll mode), into ud[1]. */
static int
lat_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	struct lat *l = ud;

	if (ncols < 2)
		return 0;
	if (!cols[0].is_null && lat_push(&l[0], strtod(cols[0].s, NULL) /
	    1e6) == -1)
		return -1;
	if (!cols[1].is_null && lat_push(&l[1], strtod(cols[1].s, NULL) /
	    1e6) == -1)
		return -1;
	return 0;
}

/* Writes the sorted latencies v (seconds) to path in ms: 0 or -1
 * (warned). */
static int
lat_write(const char *path, const double *v, size_t n, int rate, int secs)
{
	FILE *f;
	size_t i;
	int rc = 0;

	if ((f = fopen(path, "w")) == NULL) {
		log_warn("latency file %s", path);
		return -1;
	}
	fprintf(f, "# outbox-bench-e2e: %d POST/s for %d s, %zu effects; "
	    "end-to-end latency (ms), sorted\n", rate, secs, n);
	for (i = 0; i < n; i++)
		fprintf(f, "%.3f\n", v[i] * 1e3);
	if (ferror(f))
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	if (rc == -1)
		log_warn("latency file %s: write", path);
	return rc;
}

/* The POST-to-effect latencies: rows of (email, the effect's time in
 * microseconds since the epoch); the request's index is in the email's
 * local part (e2e_prepare). */
struct post_lat {
	const struct e2e *e;
	struct lat l;
};

static int
post_lat_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	struct post_lat *p = ud;
	const char *dash;
	long long n;

	if (ncols < 2 || cols[0].is_null || cols[1].is_null ||
	    (dash = strchr(cols[0].s, '-')) == NULL)
		return 0;
	n = strtoll(dash + 1, NULL, 10);
	if (n < 0 || n >= p->e->total || p->e->sent_wall[n] <= 0)
		return 0;
	return lat_push(&p->l, strtod(cols[1].s, NULL) / 1e6 -
	    p->e->sent_wall[n]);
}

static int
count_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	if (ncols > 0 && !cols[0].is_null)
		*(long long *)ud = strtoll(cols[0].s, NULL, 10);
	return 0;
}

static int
status_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	long long *v = ud;
	size_t i;

	if (ncols < 2 || cols[0].is_null || cols[1].is_null)
		return 0;
	for (i = 0; i < E2E_NSTATUS; i++)
		if (strcasecmp(cols[0].s, E2E_STATUS[i]) == 0)
			v[i] = strtoll(cols[1].s, NULL, 10);
	return 0;
}

/* The counters of E2E_STATUS now, into v (a counter the server does not
 * have stays 0).  Only those asked for: the statement's own scan of the
 * status (Handler_read_rnd_next) stays a few rows. */
static void
status_read(db_conn *c, long long *v)
{
	char q[1024];
	size_t i, n;

	n = (size_t)snprintf(q, sizeof(q), "SHOW GLOBAL STATUS WHERE "
	    "Variable_name IN (''");
	for (i = 0; i < E2E_NSTATUS && n < sizeof(q); i++)
		n += (size_t)snprintf(q + n, sizeof(q) - n, ", '%s'",
		    E2E_STATUS[i]);
	if (n + 2 > sizeof(q))
		fatalx("global status: query too long");
	memcpy(q + n, ")", 2);
	for (i = 0; i < E2E_NSTATUS; i++)
		v[i] = 0;
	if (db_query(c, q, NULL, 0, status_cb, v, NULL) != DB_OK)
		fatalx("global status: %s", db_error(c));
}

static void
e2e_prepare(void *ud, struct loadgen_req *r)
{
	const struct e2e *e = ud;

	/* Distinct per request (n in the local part), spread by a hash. */
	unsigned long long h = (unsigned long long)r->n * 0x9e3779b97f4a7c15ULL;

	snprintf(r->body, sizeof(r->body), "{\"email\":\"%012llx-%lld@%s\","
	    "\"name\":\"E2E\"}", h >> 16, r->n, e->domain);
}

static int
e2e_done(void *ud, const struct loadgen_req *r, CURLcode res, long st)
{
	struct e2e *e = ud;

	(void)res;
	if (st == 201) {
		e->ok++;
		e->http_lat[e->nhttp++] = clock_s() - r->sent;
		if (r->n >= 0 && r->n < e->total)
			e->sent_wall[r->n] = clock_wall_s() -
			    (clock_s() - r->sent);
	} else {
		e->bad++;
	}
	return 0;
}

/* 1 once the effect of the customer whose 201 body is resp is in the
 * database (looked for every SERIAL_LOOK_US, SERIAL_WAIT_MS at most),
 * else 0. */
static int
serial_effect(db_conn *c, const char *resp)
{
	const char *id = strstr(resp, "\"id\":\"");
	char cid[37];
	struct db_val a;
	long long n = 0;
	double end = clock_s() + SERIAL_WAIT_MS / 1e3;
	struct timespec ts = { 0, SERIAL_LOOK_US * 1000L };

	if (id == NULL || strlen(id + 6) < 36)
		return 0;
	memcpy(cid, id + 6, 36);
	cid[36] = '\0';
	a = DB_STR(cid);
	while (clock_s() < end) {
		if (db_query(c, "SELECT COUNT(*) FROM welcome_emails WHERE "
		    "customer_id = ?", &a, 1, count_cb, &n, NULL) != DB_OK)
			fatalx("effect: %s", db_error(c));
		if (n > 0)
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* One request at a time, for secs seconds: each POST is sent once the
 * effect of the one before it is in the database (closed loop: a
 * sequential client that waits for the outcome), on one kept-alive
 * connection.  Fills e as loadgen's callbacks do; returns the requests
 * sent. */
static long long
serial_run(struct e2e *e, const char *url, int secs, db_conn *c)
{
	struct loadgen_req r;
	struct curl_slist *hdr;
	double end = clock_s() + secs;
	long long n;
	CURLcode res;
	long st;
	CURL *h;

	if ((h = curl_easy_init()) == NULL || (hdr = curl_slist_append(NULL,
	    "Content-Type: application/json")) == NULL)
		fatalx("out of memory");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, loadgen_collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	for (n = 0; n < e->total && clock_s() < end; n++) {
		memset(&r, 0, sizeof(r));
		r.n = n;
		e2e_prepare(e, &r);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r.body);
		r.sent = clock_s();
		res = curl_easy_perform(h);
		st = 0;
		if (res == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
		(void)e2e_done(e, &r, res, st);
		if (st == 201 && !serial_effect(c, r.resp))
			log_warnx("request %lld: no effect after %d ms", n,
			    SERIAL_WAIT_MS);
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return n;
}

int
main(int argc, char **argv)
{
	int port, rate = 1000, secs = 30, i;
	long long effects = 0;
	struct e2e_cfg cfg;
	struct loadgen lg;
	struct e2e e;
	struct db_val args[2];
	struct lat lm[2] = { { 0 }, { 0 } }; /* to the effect, to the mark */
	struct lat *l = &lm[0], *mark = &lm[1];
	struct post_lat pl = { 0 };
	char url[128], err[256];
	long long st0[E2E_NSTATUS], st1[E2E_NSTATUS];
	size_t k;
	db_conn *c;

	log_init("bench-e2e", LOG_LVL_INFO);
	if (argc < 2 || cfg_parse_int(argv[1], 1, 65535, &port) == -1 ||
	    (argc > 2 && cfg_parse_int(argv[2], 0, 100000, &rate) == -1) ||
	    (argc > 3 && cfg_parse_int(argv[3], 1, 3600, &secs) == -1) ||
	    argc > 5)
		fatalx("usage: outbox-bench-e2e <port> [rate/s] [seconds] "
		    "[latency file]");
	if (cfg_load(e2e_opts, 1 * (sizeof(e2e_opts) / sizeof(e2e_opts[0])),
	    &cfg, err, sizeof(err)) == -1)
		fatalx("config: %s", err);
	memset(&e, 0, sizeof(e));
	e.total = (long long)(rate > 0 ? rate : SERIAL_MAX_PER_S) * secs;
	e.http_lat = calloc((size_t)e.total, sizeof(*e.http_lat));
	e.sent_wall = calloc((size_t)e.total, sizeof(*e.sent_wall));
	if (e.http_lat == NULL || e.sent_wall == NULL)
		fatalx("out of memory");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/customers", port);
	snprintf(e.domain, sizeof(e.domain), "e2e-%d-%ld.example",
	    (int)getpid(), (long)time(NULL));
	snprintf(e.like, sizeof(e.like), "%%@%s", e.domain);
	{
		/* A version-7 id of a second before now, all zero after the
		 * time: every id made from now on sorts above it. */
		long long ms = (long long)time(NULL) * 1000 - 1000;

		snprintf(e.since, sizeof(e.since), "%08llx-%04llx-0000-0000-"
		    "000000000000", ms >> 16, ms & 0xffff);
	}
	memset(&lg, 0, sizeof(lg));
	lg.url = url;
	lg.total = (long long)rate * secs;
	lg.rate = rate;
	lg.max_inflight = E2E_MAX_INFLIGHT;
	lg.max_conns = 256;
	lg.timeout_ms = 30000;
	lg.prepare = e2e_prepare;
	lg.done = e2e_done;
	lg.ud = &e;
	db_global_init();
	if ((c = db_new(&cfg.db)) == NULL)
		fatalx("out of memory");
	status_read(c, st0);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (rate == 0) {
		lg.t0 = clock_s();
		lg.sent = serial_run(&e, url, secs, c);
	} else if (loadgen_run(&lg) == -1) {
		fatalx("out of memory");
	}
	curl_global_cleanup();
	status_read(c, st1);

	/* Wait (bounded) for the worker to have done every effect. */
	args[0] = DB_STR(e.since);
	args[1] = DB_STR(e.like);
	for (i = 0; i < 600; i++) {
		if (db_query(c, "SELECT COUNT(*) FROM welcome_emails WHERE "
		    "customer_id > ? AND email LIKE ?", args, 2, count_cb,
		    &effects, NULL) != DB_OK)
			fatalx("count effects: %s", db_error(c));
		if (effects >= e.ok)
			break;
		backoff_sleep(100, NULL);
	}
	if (db_query(c, "SELECT TIMESTAMPDIFF(MICROSECOND, c.created_at, "
	    "w.created_at), TIMESTAMPDIFF(MICROSECOND, c.created_at, "
	    "o.published_at) FROM welcome_emails w JOIN customers c ON "
	    "c.id = w.customer_id LEFT JOIN outbox o ON o.message_id = "
	    "w.message_id WHERE w.customer_id > ? AND c.email LIKE ?", args, 2,
	    lat_cb, lm, NULL) != DB_OK)
		fatalx("latencies: %s", db_error(c));
	pl.e = &e;
	if (db_query(c, "SELECT c.email, TIMESTAMPDIFF(MICROSECOND, "
	    "'1970-01-01', w.created_at) FROM welcome_emails w JOIN customers "
	    "c ON c.id = w.customer_id WHERE w.customer_id > ? AND c.email "
	    "LIKE ?", args, 2, post_lat_cb, &pl, NULL) != DB_OK)
		fatalx("POST latencies: %s", db_error(c));
	db_free(c);
	db_global_end();
	qsort(l->v, l->n, sizeof(*l->v), cmp_double);
	qsort(e.http_lat, e.nhttp, sizeof(*e.http_lat), cmp_double);
	qsort(pl.l.v, pl.l.n, sizeof(*pl.l.v), cmp_double);
	qsort(mark->v, mark->n, sizeof(*mark->v), cmp_double);
	if (argc > 4)
		(void)lat_write(argv[4], l->v, l->n, rate, secs);
	printf("{\"rate\": %d, \"seconds\": %d, \"sent\": %lld, \"created\": "
	    "%lld, \"failed\": %lld, \"offered_per_s\": %.1f", rate, secs,
	    lg.sent, e.ok, e.bad, (double)lg.sent / (clock_s() - lg.t0));
	print_pcts("http", e.http_lat, e.nhttp);
	printf(", \"effects\": %zu", l->n);
	print_pcts("e2e", l->v, l->n);
	printf(", \"post_effects\": %zu", pl.l.n);
	print_pcts("post", pl.l.v, pl.l.n);
	printf(", \"marked\": %zu", mark->n);
	print_pcts("mark", mark->v, mark->n);
	for (k = 0; k < E2E_NSTATUS; k++) {
		char name[64];
		size_t j;

		for (j = 0; E2E_STATUS[k][j] != '\0' && j + 1 < sizeof(name);
		    j++)
			name[j] = (char)tolower((unsigned char)E2E_STATUS[k][j]);
		name[j] = '\0';
		printf(", \"db_%s\": %lld", name, st1[k] - st0[k]);
	}
	printf("}\n");
	free(l->v);
	free(pl.l.v);
	free(mark->v);
	free(e.http_lat);
	free(e.sent_wall);
	return e.ok == 0 || (long long)l->n < e.ok ? 1 : 0;
}
