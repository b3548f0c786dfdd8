/*
 * bench_txn.c - outbox-bench-txn: the raw limit of the app's write path.
 * N threads, one connection each, run the app's two-row transaction (BEGIN;
 * INSERT customers; INSERT outbox; COMMIT) with prepared statements and no
 * application work, for a fixed time.  Prints transactions per second.
 *
 *   outbox-bench-txn [connections] [seconds]     (defaults 64, 10)
 *
 * Database settings come from DB_* as for the daemons.  Rows are left in
 * place; the benchmark script empties the tables between runs.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "db.h"
#include "log.h"
#include "msg.h"
#include "timefmt.h"
#include "uid.h"

struct bench_cfg {
	struct db_params db;
};

static const struct cfg_opt bench_opts[] = {
	DB_CFG_ROWS(struct bench_cfg, db),
};

struct bench_thread {
	pthread_t tid;
	const struct bench_cfg *cfg;
	int index;
	double end;
	long done;
	long failed;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
bench_run(void *arg)
{
	struct bench_thread *t = arg;
	char cid[UID_LEN + 1], mid[UID_LEN + 1], email[96], ts[TIMEFMT_LEN];
	struct customer cu;
	struct timespec now;
	struct db_val a[5];
	struct buf payload;
	db_conn *c;
	long i = 0;

	buf_init(&payload, 4096);
	if ((c = db_new(&t->cfg->db)) == NULL)
		return NULL;
	while (now_s() < t->end) {
		uid_new(cid);
		uid_new(mid);
		snprintf(email, sizeof(email), "bench-%d-%ld-%s@example.com",
		    t->index, i++, cid);
		timefmt_now(&now);
		memset(&cu, 0, sizeof(cu));
		memcpy(cu.id, cid, sizeof(cu.id));
		cu.email = email;
		cu.name = "Bench";
		timefmt_rfc3339(&now, cu.created_at, sizeof(cu.created_at));
		memcpy(cu.updated_at, cu.created_at, sizeof(cu.updated_at));
		timefmt_sql(&now, ts, sizeof(ts));
		buf_reset(&payload);
		msg_customer_json(&cu, &payload);
		if (db_begin(c) != DB_OK)
			goto fail;
		a[0] = DB_STR(cid);
		a[1] = DB_STR(email);
		a[2] = DB_STR("Bench");
		a[3] = DB_STR(ts);
		a[4] = DB_STR(ts);
		if (db_exec(c, "INSERT INTO customers (id, email, name, "
		    "created_at, updated_at) VALUES (?, ?, ?, ?, ?)", a, 5,
		    NULL) != DB_OK)
			goto fail;
		a[0] = DB_STR(mid);
		a[1] = DB_STR(MSG_EVENT_CUSTOMER_CREATED);
		a[2] = DB_STRN(payload.data, payload.len);
		a[3] = DB_STR(ts);
		if (db_exec(c, "INSERT INTO outbox (message_id, event_name, "
		    "payload, created_at) VALUES (?, ?, ?, ?)", a, 4,
		    NULL) != DB_OK)
			goto fail;
		if (db_commit(c) != DB_OK)
			goto fail;
		t->done++;
		continue;
fail:
		db_rollback(c);
		if (t->failed++ == 0)
			log_warnx("bench: %s", db_error(c));
	}
	db_free(c);
	buf_free(&payload);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct bench_thread *th;
	struct bench_cfg cfg;
	int n = 64, secs = 10, i;
	long done = 0, failed = 0;
	double t0, el;
	char err[256];

	log_init("bench-txn", LOG_LVL_INFO);
	if ((argc > 1 && cfg_parse_int(argv[1], 1, 1024, &n) == -1) ||
	    (argc > 2 && cfg_parse_int(argv[2], 1, 3600, &secs) == -1))
		fatalx("usage: outbox-bench-txn [connections] [seconds]");
	if (cfg_load(bench_opts, sizeof(bench_opts) / sizeof(bench_opts[0]),
	    &cfg, err, sizeof(err)) == -1)
		fatalx("config: %s", err);
	db_global_init();
	if ((th = calloc((size_t)n, sizeof(*th))) == NULL)
		fatalx("out of memory");
	t0 = now_s();
	for (i = 0; i < n; i++) {
		th[i].cfg = &cfg;
		th[i].index = i;
		th[i].end = t0 + secs;
		pthread_create(&th[i].tid, NULL, bench_run, &th[i]);
	}
	for (i = 0; i < n; i++) {
		pthread_join(th[i].tid, NULL);
		done += th[i].done;
		failed += th[i].failed;
	}
	el = now_s() - t0;
	printf("{\"connections\": %d, \"seconds\": %.2f, \"transactions\": %ld, "
	    "\"failed\": %ld, \"tx_per_s\": %.1f}\n", n, el, done, failed,
	    (double)done / el);
	free(th);
	db_global_end();
	return failed > 0 && done == 0 ? 1 : 0;
}
