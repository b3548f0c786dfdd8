/*
 * store.c - database pool of the app: job queue, group commit of customer
 * creations, reads, readiness pings, database-down detection.
 */
#include "store.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app_metrics.h"
#include "backoff.h"
#include "clock.h"
#include "db.h"
#include "durable.h"
#include "log.h"
#include "msg.h"
#include "timefmt.h"

/* How often (s) the idempotency keys past their TTL are deleted. */
#define STORE_PRUNE_EVERY 60
/* Attempts at a transaction that hit a deadlock before answering 503. */
#define STORE_DEADLOCK_TRIES 5

static const char SQL_INSERT_CUSTOMER[] =
    "INSERT INTO customers (id, email, name, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?)";
static const char SQL_INSERT_OUTBOX[] =
    "INSERT INTO outbox (message_id, event_name, payload, traceparent, "
    "created_at) VALUES (?, ?, ?, ?, ?)";
static const char SQL_INSERT_IDEM[] =
    "INSERT INTO idempotency_keys (idem_key, request_email, request_name, "
    "status, customer_id, response_body, created_at) "
    "VALUES (?, ?, ?, 201, ?, ?, ?)";
static const char SQL_SELECT_IDEM[] =
    "SELECT request_email, request_name, status, customer_id, "
    "response_body FROM idempotency_keys WHERE idem_key = ?";
static const char SQL_SELECT_CUSTOMER[] =
    "SELECT id, email, name, created_at, updated_at FROM customers "
    "WHERE id = ?";
static const char SQL_PRUNE_IDEM[] =
    "DELETE FROM idempotency_keys WHERE created_at < ? LIMIT 1000";

struct store {
	const struct app_config *cfg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	unsigned qlen;
	unsigned pending;
	int stopping;
	pthread_t *threads;
	int nthreads;
	/* database health, shared by the pool threads */
	pthread_mutex_t hmu;
	int down;
	struct timespec retry_at;
	struct backoff bo;
	time_t last_prune;
};

struct worker {
	struct store *s;
	int index;
	db_conn *c;
	/* An answer was read from another transaction's rows and no commit
	 * of ours that wrote rows followed: they may not be durable yet. */
	int unsure;
};

void
job_init(struct job *j, enum job_kind kind)
{
	memset(j, 0, sizeof(*j));
	j->kind = kind;
	buf_init(&j->body, 64 * 1024);
}

void
job_clear(struct job *j)
{
	buf_free(&j->body);
}

/* Sets status and the body {"error": msg}. */
static void
job_error(struct job *j, int status, const char *msg)
{
	json_t *o = json_pack("{s:s}", "error", msg);
	char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;

	j->status = status;
	buf_reset(&j->body);
	if (txt == NULL || buf_append(&j->body, txt, strlen(txt)) == -1)
		buf_append(&j->body, "{\"error\":\"internal error\"}", 26);
	free(txt);
	json_decref(o);
}

static void
job_finish(struct store *s, struct job *j)
{
	j->done(j);
	pthread_mutex_lock(&s->mu);
	s->pending--;
	pthread_mutex_unlock(&s->mu);
}

/* ---- database health ---------------------------------------------- */

/* 1 when the database may be tried now: it is up, or its retry time came. */
static int
store_db_gate(struct store *s)
{
	struct timespec now;
	int ok;

	pthread_mutex_lock(&s->hmu);
	clock_gettime(CLOCK_MONOTONIC, &now);
	ok = !s->down || !clock_before(&now, &s->retry_at);
	pthread_mutex_unlock(&s->hmu);
	return ok;
}

static void
store_db_failed(struct store *s, db_conn *c, const char *what)
{
	unsigned ms;

	pthread_mutex_lock(&s->hmu);
	ms = backoff_next(&s->bo);
	if (!s->down)
		app_metrics_db_outage();
	if (!s->down)
		log_warnx("database unavailable (%s: %s); answering 503, "
		    "retrying with backoff", what, db_error(c));
	else
		log_debug("database still unavailable (%s: %s); next try in "
		    "%u ms", what, db_error(c), ms);
	s->down = 1;
	clock_deadline(&s->retry_at, ms);
	pthread_mutex_unlock(&s->hmu);
}

static void
store_db_ok(struct store *s)
{
	pthread_mutex_lock(&s->hmu);
	if (s->down)
		log_info("database reachable again");
	s->down = 0;
	backoff_reset(&s->bo);
	pthread_mutex_unlock(&s->hmu);
}

/* ---- create ------------------------------------------------------- */

struct idem_row {
	int found;
	int same;
	int status;
	char customer_id[UID_LEN + 1];
	struct buf *body;
	const struct new_customer *req;
};

static int
idem_row_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	struct idem_row *r = ud;

	if (ncols != 5)
		return -1;
	r->found = 1;
	r->same = strcmp(cols[0].s, r->req->email) == 0 &&
	    strcmp(cols[1].s, r->req->name) == 0;
	r->status = (int)strtol(cols[2].s, NULL, 10);
	snprintf(r->customer_id, sizeof(r->customer_id), "%s", cols[3].s);
	buf_reset(r->body);
	return buf_append(r->body, cols[4].s, cols[4].len);
}

/* Looks the job's key up; when found, sets the job's answer (the replay,
 * or 422 for another request under the same key) and returns 1. */
static int
idem_lookup(db_conn *c, struct job *j, int *rc)
{
	struct idem_row r = { 0 };
	struct db_val k = DB_STR(j->idem_key);

	r.body = &j->body;
	r.req = &j->req;
	*rc = db_query(c, SQL_SELECT_IDEM, &k, 1, idem_row_cb, &r, NULL);
	if (*rc != DB_OK || !r.found)
		return 0;
	j->derived = 1;
	if (!r.same) {
		job_error(j, 422, "Idempotency-Key was already used with a "
		    "different request");
		return 1;
	}
	j->status = r.status;
	snprintf(j->location, sizeof(j->location), "/customers/%s",
	    r.customer_id);
	return 1;
}

/* Starts a transaction; a connection found dead at this point (e.g. the
 * server restarted while we idled) is replaced once, since nothing has
 * been done on it yet. */
static int
store_begin(db_conn *c)
{
	int rc = db_begin(c);

	if (rc == DB_ECONN)
		rc = db_begin(c);
	return rc;
}

/* Writes one job's rows inside the open transaction.  Returns DB_OK with
 * the job's answer set (201, 409, a replay) or an error that must roll
 * back the whole transaction. */
static int
create_one(db_conn *c, struct job *j)
{
	char cust_id[UID_LEN + 1], msg_id[UID_LEN + 1];
	char sqlts[TIMEFMT_LEN];
	struct customer cu;
	struct timespec now;
	struct db_val a[6];
	int rc, has_idem = j->idem_key[0] != '\0';

	j->replay = 0;
	j->derived = 0;
	if (has_idem) {
		if (idem_lookup(c, j, &rc))
			return DB_OK;
		if (rc != DB_OK)
			return rc;
		if ((rc = db_exec_sql(c, "SAVEPOINT idem")) != DB_OK)
			return rc;
	}
	uid_new(cust_id);
	uid_new(msg_id);
	timefmt_now(&now);
	memset(&cu, 0, sizeof(cu));
	memcpy(cu.id, cust_id, sizeof(cu.id));
	cu.email = j->req.email;
	cu.name = j->req.name;
	if (timefmt_rfc3339(&now, cu.created_at, sizeof(cu.created_at)) ||
	    timefmt_sql(&now, sqlts, sizeof(sqlts)))
		return DB_EOTHER;
	memcpy(cu.updated_at, cu.created_at, sizeof(cu.updated_at));
	buf_reset(&j->body);
	if (msg_customer_json(&cu, &j->body) == -1)
		return DB_EOTHER;

	a[0] = DB_STR(cust_id);
	a[1] = DB_STR(j->req.email);
	a[2] = DB_STR(j->req.name);
	a[3] = DB_STR(sqlts);
	a[4] = DB_STR(sqlts);
	rc = db_exec(c, SQL_INSERT_CUSTOMER, a, 5, NULL);
	if (rc == DB_EDUP) {
		job_error(j, 409, "email already registered");
		j->derived = 1;
		/* The email may be taken by a concurrent request with the
		 * same key: look the key up again after commit, when that
		 * request's rows are visible. */
		j->replay = has_idem;
		return DB_OK;
	}
	if (rc != DB_OK)
		return rc;

	a[0] = DB_STR(msg_id);
	a[1] = DB_STR(MSG_EVENT_CUSTOMER_CREATED);
	a[2] = DB_STRN(j->body.data, j->body.len);
	a[3] = j->traceparent[0] ? DB_STR(j->traceparent) : DB_NULL;
	a[4] = DB_STR(sqlts);
	if ((rc = db_exec(c, SQL_INSERT_OUTBOX, a, 5, NULL)) != DB_OK)
		return rc == DB_EDUP ? DB_EOTHER : rc;

	if (has_idem) {
		a[0] = DB_STR(j->idem_key);
		a[1] = DB_STR(j->req.email);
		a[2] = DB_STR(j->req.name);
		a[3] = DB_STR(cust_id);
		a[4] = DB_STRN(j->body.data, j->body.len);
		a[5] = DB_STR(sqlts);
		rc = db_exec(c, SQL_INSERT_IDEM, a, 6, NULL);
		if (rc == DB_EDUP) {
			/* Another request with this key committed first:
			 * undo ours, answer as it did (after our commit). */
			rc = db_exec_sql(c, "ROLLBACK TO SAVEPOINT idem");
			if (rc != DB_OK)
				return rc;
			j->replay = 1;
			return DB_OK;
		}
		if (rc != DB_OK)
			return rc;
	}
	j->status = 201;
	snprintf(j->location, sizeof(j->location), "/customers/%s", cust_id);
	return DB_OK;
}

/* One transaction for all n jobs.  DB_OK: every job has its answer. */
static int
create_group(struct worker *w, struct job **jobs, size_t n,
    size_t *failed_at)
{
	db_conn *c = w->c;
	size_t i;
	int rc, wrote = 0;

	if ((rc = store_begin(c)) != DB_OK)
		return rc;
	for (i = 0; i < n; i++) {
		if ((rc = create_one(c, jobs[i])) != DB_OK) {
			*failed_at = i;
			db_rollback(c);
			return rc;
		}
		if (jobs[i]->derived)
			w->unsure = 1;
		if (jobs[i]->status == 201 && !jobs[i]->derived)
			wrote = 1;
	}
	if ((rc = db_commit(c)) != DB_OK)
		return rc;
	/* Our commit wrote rows: it is on disk, and so is everything read
	 * before it. */
	if (wrote)
		w->unsure = 0;
	for (i = 0; i < n; i++) {
		if (!jobs[i]->replay)
			continue;
		w->unsure = 1;
		if (!idem_lookup(c, jobs[i], &rc) && jobs[i]->status != 409)
			job_error(jobs[i], 503, "try again");
	}
	return DB_OK;
}

static void
store_creates(struct worker *w, struct job **jobs, size_t n)
{
	size_t i, failed_at = 0;
	int rc = DB_ECONN, tries;

	if (store_db_gate(w->s)) {
		app_metrics_group(n);
		rc = create_group(w, jobs, n, &failed_at);
	}
	if (rc == DB_OK) {
		store_db_ok(w->s);
		return;
	}
	if (rc == DB_ECONN) {
		if (store_db_gate(w->s))
			store_db_failed(w->s, w->c, "create customers");
		for (i = 0; i < n; i++)
			job_error(jobs[i], 503, "database unavailable");
		return;
	}
	if (n > 1)
		log_debug("group of %zu failed (%s); retrying one by one", n,
		    db_error(w->c));
	/* A deadlock, or one bad request in the group: commit each alone so
	 * that the others still succeed. */
	for (i = 0; i < n; i++) {
		for (tries = 0; tries < STORE_DEADLOCK_TRIES; tries++) {
			app_metrics_retry();
			rc = create_group(w, &jobs[i], 1, &failed_at);
			if (rc != DB_ERETRY)
				break;
		}
		if (rc == DB_OK)
			continue;
		if (rc == DB_ECONN) {
			store_db_failed(w->s, w->c, "create customer");
			job_error(jobs[i], 503, "database unavailable");
		} else if (rc == DB_ERETRY) {
			job_error(jobs[i], 503, "database busy, try again");
		} else {
			log_warnx("create customer: %s", db_error(w->c));
			job_error(jobs[i], 500, "internal error");
		}
	}
}

/* ---- get, ping, prune --------------------------------------------- */

struct cust_row {
	int found;
	struct buf *out;
};

static int
cust_row_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	struct cust_row *r = ud;
	struct timespec ts;
	struct customer cu;

	if (ncols != 5)
		return -1;
	memset(&cu, 0, sizeof(cu));
	snprintf(cu.id, sizeof(cu.id), "%s", cols[0].s);
	cu.email = cols[1].s;
	cu.name = cols[2].s;
	if (timefmt_parse_sql(cols[3].s, &ts) == -1 ||
	    timefmt_rfc3339(&ts, cu.created_at, sizeof(cu.created_at)) == -1 ||
	    timefmt_parse_sql(cols[4].s, &ts) == -1 ||
	    timefmt_rfc3339(&ts, cu.updated_at, sizeof(cu.updated_at)) == -1)
		return -1;
	r->found = 1;
	buf_reset(r->out);
	return msg_customer_json(&cu, r->out);
}

static void
store_get(struct worker *w, struct job *j)
{
	struct cust_row r = { 0, &j->body };
	struct db_val a = DB_STR(j->id);
	int rc = DB_ECONN;

	if (store_db_gate(w->s)) {
		rc = db_query(w->c, SQL_SELECT_CUSTOMER, &a, 1, cust_row_cb,
		    &r, NULL);
		if (rc == DB_ECONN)
			rc = db_query(w->c, SQL_SELECT_CUSTOMER, &a, 1,
			    cust_row_cb, &r, NULL);
	}
	if (rc == DB_ECONN) {
		if (store_db_gate(w->s))
			store_db_failed(w->s, w->c, "get customer");
		job_error(j, 503, "database unavailable");
		return;
	}
	if (rc != DB_OK) {
		log_warnx("get customer %s: %s", j->id, db_error(w->c));
		job_error(j, 500, "internal error");
		return;
	}
	store_db_ok(w->s);
	if (!r.found) {
		job_error(j, 404, "customer not found");
	} else {
		j->status = 200;
		j->derived = 1;
		w->unsure = 1;
	}
}

static void
store_ping(struct worker *w, struct job *j)
{
	int rc = DB_ECONN;

	if (store_db_gate(w->s)) {
		rc = db_ping(w->c);
		if (rc == DB_ECONN)
			rc = db_ping(w->c);
	}
	if (rc != DB_OK) {
		if (store_db_gate(w->s))
			store_db_failed(w->s, w->c, "readiness ping");
		job_error(j, 503, "database unavailable");
		return;
	}
	store_db_ok(w->s);
	j->status = 200;
	buf_reset(&j->body);
	buf_append(&j->body, "{\"status\":\"ready\"}", 18);
}

/* Deletes idempotency keys past their TTL, a small batch at a time. */
static void
store_prune(struct worker *w)
{
	struct timespec cutoff;
	char ts[TIMEFMT_LEN];
	struct db_val a;
	uint64_t n = 0;

	timefmt_now(&cutoff);
	cutoff.tv_sec -= (time_t)w->s->cfg->idem_ttl_hours * 3600;
	if (timefmt_sql(&cutoff, ts, sizeof(ts)) == -1)
		return;
	a = DB_STR(ts);
	if (db_exec(w->c, SQL_PRUNE_IDEM, &a, 1, &n) != DB_OK)
		log_warnx("prune idempotency keys: %s", db_error(w->c));
	else if (n > 0)
		log_info("pruned %llu idempotency keys older than %d h",
		    (unsigned long long)n, w->s->cfg->idem_ttl_hours);
}

/* Before the answers of a batch go out: what they report of other
 * transactions' rows is made durable, or they become 503. */
static void
store_settle(struct worker *w, struct job **jobs, size_t n)
{
	char name[DURABLE_NAME_MAX];
	size_t i;
	int rc;

	if (!w->unsure)
		return;
	w->unsure = 0;
	snprintf(name, sizeof(name), "app:%d", w->index);
	if ((rc = durable_barrier(w->c, name)) == DB_OK)
		return;
	if (rc == DB_ECONN)
		store_db_failed(w->s, w->c, "durability barrier");
	else
		log_warnx("durability barrier: %s", db_error(w->c));
	for (i = 0; i < n; i++) {
		if (jobs[i]->derived && jobs[i]->status < 500)
			job_error(jobs[i], 503, "database unavailable");
	}
}

/* ---- the pool ------------------------------------------------------ */

static void *
store_thread(void *arg)
{
	struct worker *w = arg;
	struct store *s = w->s;
	struct job **batch, *creates[1000], *j;
	size_t n, nc, i, max = (size_t)s->cfg->group_max;
	struct timespec until;
	int prune;

	batch = calloc(max, sizeof(*batch));
	if (batch == NULL)
		fatalx("out of memory");
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (s->head == NULL && !s->stopping) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&s->cv, &s->mu, &until);
			if (s->head == NULL && w->index == 0 &&
			    time(NULL) - s->last_prune >= STORE_PRUNE_EVERY)
				break;
		}
		if (s->head == NULL && s->stopping) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		prune = 0;
		if (s->head == NULL) {
			s->last_prune = time(NULL);
			prune = 1;
		}
		for (n = 0; n < max && s->head != NULL; n++) {
			batch[n] = s->head;
			s->head = s->head->next;
			s->qlen--;
		}
		if (s->head == NULL)
			s->tail = NULL;
		pthread_mutex_unlock(&s->mu);

		if (prune && store_db_gate(s))
			store_prune(w);
		for (i = nc = 0; i < n; i++) {
			j = batch[i];
			if (j->kind == JOB_CREATE)
				creates[nc++] = j;
			else if (j->kind == JOB_GET)
				store_get(w, j);
			else
				store_ping(w, j);
		}
		if (nc > 0)
			store_creates(w, creates, nc);
		store_settle(w, batch, n);
		for (i = 0; i < n; i++)
			job_finish(s, batch[i]);
	}
	free(batch);
	db_free(w->c);
	free(w);
	return NULL;
}

struct store *
store_new(const struct app_config *cfg)
{
	struct store *s;
	struct worker *w;
	int i;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->cfg = cfg;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_mutex_init(&s->hmu, NULL);
	backoff_init(&s->bo, 100, 2000);
	s->last_prune = 0;
	s->threads = calloc((size_t)cfg->db_pool, sizeof(*s->threads));
	if (s->threads == NULL) {
		free(s);
		return NULL;
	}
	for (i = 0; i < cfg->db_pool; i++) {
		if ((w = calloc(1, sizeof(*w))) == NULL)
			fatalx("out of memory");
		if ((w->c = db_new(&cfg->db)) == NULL)
			fatalx("out of memory");
		w->s = s;
		w->index = i;
		if (pthread_create(&s->threads[i], NULL, store_thread, w) != 0)
			fatalx("pthread_create failed");
		s->nthreads++;
	}
	return s;
}

void
store_submit(struct store *s, struct job *j)
{
	pthread_mutex_lock(&s->mu);
	if (s->stopping || s->qlen >= (unsigned)s->cfg->queue_max) {
		int stopping = s->stopping;

		pthread_mutex_unlock(&s->mu);
		job_error(j, 503, stopping ? "shutting down" :
		    "server busy, try again");
		j->done(j);
		return;
	}
	j->next = NULL;
	if (s->tail != NULL)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->qlen++;
	s->pending++;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int
store_db_up(void *ud)
{
	struct store *s = ud;
	int up;

	pthread_mutex_lock(&s->hmu);
	up = !s->down;
	pthread_mutex_unlock(&s->hmu);
	return up;
}

unsigned
store_pending(struct store *s)
{
	unsigned n;

	pthread_mutex_lock(&s->mu);
	n = s->pending;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void
store_free(struct store *s)
{
	int i;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	/* Threads drain what is queued before they exit: every job gets
	 * its answer. */
	for (i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	free(s->threads);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->hmu);
	free(s);
}
