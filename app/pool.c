/*
 * pool.c - the app's database pool: the job queue, the threads that
 * serve it (each with its own connection), the database health shared
 * by them (answer 503 at once while it is down, try again with backoff),
 * the durability of answers read from other transactions, and the
 * periodic pruning of idempotency keys.  The statements themselves are
 * app/customers.c's.
 */
#include "pool.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app_metrics.h"
#include "backoff.h"
#include "clock.h"
#include "customers.h"
#include "db.h"
#include "durable.h"
#include "log.h"

/* How often (s) the idempotency keys past their TTL are deleted. */
#define POOL_PRUNE_EVERY 60
/* Attempts at a transaction that hit a deadlock before answering 503. */
#define POOL_DEADLOCK_TRIES 5

/* A thread keeps the create jobs of one group on its stack. */
_Static_assert(APP_GROUP_MAX_LIMIT * sizeof(struct job *) <= 16 * 1024,
    "a group's create jobs must fit on a pool thread's stack");

struct pool {
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

/* One thread of the pool and what it owns. */
struct pool_thread {
	struct pool *p;
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

void
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
job_finish(struct pool *p, struct job *j)
{
	j->done(j);
	pthread_mutex_lock(&p->mu);
	p->pending--;
	pthread_mutex_unlock(&p->mu);
}

/* ---- database health ---------------------------------------------- */

/* 1 when the database may be tried now: it is up, or its retry time came. */
static int
pool_db_gate(struct pool *p)
{
	struct timespec now;
	int ok;

	pthread_mutex_lock(&p->hmu);
	clock_gettime(CLOCK_MONOTONIC, &now);
	ok = !p->down || !clock_before(&now, &p->retry_at);
	pthread_mutex_unlock(&p->hmu);
	return ok;
}

static void
pool_db_failed(struct pool *p, db_conn *c, const char *what)
{
	unsigned ms;

	pthread_mutex_lock(&p->hmu);
	ms = backoff_next(&p->bo);
	if (!p->down)
		app_metrics_db_outage();
	if (!p->down)
		log_warnx("database unavailable (%s: %s); answering 503, "
		    "retrying with backoff", what, db_error(c));
	else
		log_debug("database still unavailable (%s: %s); next try in "
		    "%u ms", what, db_error(c), ms);
	p->down = 1;
	clock_deadline(&p->retry_at, ms);
	pthread_mutex_unlock(&p->hmu);
}

static void
pool_db_ok(struct pool *p)
{
	pthread_mutex_lock(&p->hmu);
	if (p->down)
		log_info("database reachable again");
	p->down = 0;
	backoff_reset(&p->bo);
	pthread_mutex_unlock(&p->hmu);
}

/* ---- the jobs ------------------------------------------------------ */

/* The create jobs a thread took: one transaction; if it fails for
 * another reason than a lost database (a deadlock, one bad request),
 * each job alone, so that the others still succeed. */
static void
pool_creates(struct pool_thread *t, struct job **jobs, size_t n)
{
	size_t i;
	int rc = DB_ECONN, tries;

	if (pool_db_gate(t->p)) {
		app_metrics_group(n);
		rc = customers_create(t->c, jobs, n, &t->unsure);
	}
	if (rc == DB_OK) {
		pool_db_ok(t->p);
		return;
	}
	if (rc == DB_ECONN) {
		if (pool_db_gate(t->p))
			pool_db_failed(t->p, t->c, "create customers");
		for (i = 0; i < n; i++)
			job_error(jobs[i], 503, "database unavailable");
		return;
	}
	if (n > 1)
		log_debug("group of %zu failed (%s); retrying one by one", n,
		    db_error(t->c));
	for (i = 0; i < n; i++) {
		for (tries = 0; tries < POOL_DEADLOCK_TRIES; tries++) {
			app_metrics_retry();
			rc = customers_create(t->c, &jobs[i], 1, &t->unsure);
			if (rc != DB_ERETRY)
				break;
		}
		if (rc == DB_OK)
			continue;
		if (rc == DB_ECONN) {
			pool_db_failed(t->p, t->c, "create customer");
			job_error(jobs[i], 503, "database unavailable");
		} else if (rc == DB_ERETRY) {
			job_error(jobs[i], 503, "database busy, try again");
		} else {
			log_warnx("create customer: %s", db_error(t->c));
			job_error(jobs[i], 500, "internal error");
		}
	}
}

static void
pool_get(struct pool_thread *t, struct job *j)
{
	int rc = DB_ECONN;

	if (pool_db_gate(t->p))
		rc = customers_get(t->c, j, &t->unsure);
	if (rc == DB_ECONN) {
		if (pool_db_gate(t->p))
			pool_db_failed(t->p, t->c, "get customer");
		job_error(j, 503, "database unavailable");
		return;
	}
	if (rc != DB_OK) {
		log_warnx("get customer %s: %s", j->id, db_error(t->c));
		job_error(j, 500, "internal error");
		return;
	}
	pool_db_ok(t->p);
}

static void
pool_ping(struct pool_thread *t, struct job *j)
{
	int rc = DB_ECONN;

	if (pool_db_gate(t->p)) {
		rc = db_ping(t->c);
		if (rc == DB_ECONN)
			rc = db_ping(t->c);
	}
	if (rc != DB_OK) {
		if (pool_db_gate(t->p))
			pool_db_failed(t->p, t->c, "readiness ping");
		job_error(j, 503, "database unavailable");
		return;
	}
	pool_db_ok(t->p);
	j->status = 200;
	buf_reset(&j->body);
	buf_append(&j->body, "{\"status\":\"ready\"}", 18);
}

/* Deletes idempotency keys past their TTL, a small chunk at a time. */
static void
pool_prune(struct pool_thread *t)
{
	unsigned long long n = 0;

	if (customers_prune_keys(t->c, t->p->cfg->idem_ttl_hours, &n) != DB_OK)
		log_warnx("prune idempotency keys: %s", db_error(t->c));
	else if (n > 0)
		log_info("pruned %llu idempotency keys older than %d h", n,
		    t->p->cfg->idem_ttl_hours);
}

/* Before the answers of a batch go out: what they report of other
 * transactions' rows is made durable, or they become 503. */
static void
pool_settle(struct pool_thread *t, struct job **jobs, size_t n)
{
	char name[DURABLE_NAME_MAX];
	size_t i;
	int rc;

	if (!t->unsure)
		return;
	t->unsure = 0;
	snprintf(name, sizeof(name), "app:%d", t->index);
	if ((rc = durable_barrier(t->c, name)) == DB_OK)
		return;
	if (rc == DB_ECONN)
		pool_db_failed(t->p, t->c, "durability barrier");
	else
		log_warnx("durability barrier: %s", db_error(t->c));
	for (i = 0; i < n; i++) {
		if (jobs[i]->derived && jobs[i]->status < 500)
			job_error(jobs[i], 503, "database unavailable");
	}
}

/* ---- the threads --------------------------------------------------- */

/* Takes up to max jobs (into batch) or, for thread 0 on an idle minute,
 * nothing and *prune = 1.  Returns the jobs taken; 0 with *prune == 0:
 * the pool stops. */
static size_t
pool_take(struct pool_thread *t, struct job **batch, size_t max, int *prune)
{
	struct pool *p = t->p;
	struct timespec until;
	size_t n;

	*prune = 0;
	pthread_mutex_lock(&p->mu);
	while (p->head == NULL && !p->stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&p->cv, &p->mu, &until);
		if (p->head == NULL && t->index == 0 &&
		    time(NULL) - p->last_prune >= POOL_PRUNE_EVERY) {
			p->last_prune = time(NULL);
			*prune = 1;
			break;
		}
	}
	for (n = 0; n < max && p->head != NULL; n++) {
		batch[n] = p->head;
		p->head = p->head->next;
		p->qlen--;
	}
	if (p->head == NULL)
		p->tail = NULL;
	pthread_mutex_unlock(&p->mu);
	return n;
}

static void *
pool_thread_main(void *arg)
{
	struct pool_thread *t = arg;
	struct pool *p = t->p;
	struct job **batch, *creates[APP_GROUP_MAX_LIMIT], *j;
	size_t n, nc, i, max = (size_t)p->cfg->group_max;
	int prune;

	batch = calloc(max, sizeof(*batch));
	if (batch == NULL)
		fatalx("out of memory");
	while ((n = pool_take(t, batch, max, &prune)) > 0 || prune) {
		if (prune && pool_db_gate(p))
			pool_prune(t);
		for (i = nc = 0; i < n; i++) {
			j = batch[i];
			if (j->kind == JOB_CREATE)
				creates[nc++] = j;
			else if (j->kind == JOB_GET)
				pool_get(t, j);
			else
				pool_ping(t, j);
		}
		if (nc > 0)
			pool_creates(t, creates, nc);
		pool_settle(t, batch, n);
		for (i = 0; i < n; i++)
			job_finish(p, batch[i]);
	}
	free(batch);
	db_free(t->c);
	free(t);
	return NULL;
}

/* Stops and joins the threads started so far. */
static void
pool_join(struct pool *p)
{
	int i;

	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	/* Threads answer what is queued before they exit. */
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
}

static void
pool_destroy(struct pool *p)
{
	free(p->threads);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->hmu);
	free(p);
}

struct pool *
pool_new(const struct app_config *cfg)
{
	struct pool_thread *t;
	struct pool *p;
	int i;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		log_warnx("database pool: out of memory");
		return NULL;
	}
	p->cfg = cfg;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_mutex_init(&p->hmu, NULL);
	backoff_init(&p->bo, 100, 2000);
	p->threads = calloc((size_t)cfg->db_pool, sizeof(*p->threads));
	if (p->threads == NULL) {
		log_warnx("database pool: out of memory");
		pool_destroy(p);
		return NULL;
	}
	for (i = 0; i < cfg->db_pool; i++) {
		t = calloc(1, sizeof(*t));
		if (t == NULL || (t->c = db_new(&cfg->db)) == NULL) {
			log_warnx("database pool: out of memory");
			free(t);
			goto fail;
		}
		t->p = p;
		t->index = i;
		if (pthread_create(&p->threads[i], NULL, pool_thread_main,
		    t) != 0) {
			log_warnx("database pool: cannot start thread %d", i);
			db_free(t->c);
			free(t);
			goto fail;
		}
		p->nthreads++;
	}
	return p;
fail:
	pool_join(p);
	pool_destroy(p);
	return NULL;
}

void
pool_submit(struct pool *p, struct job *j)
{
	int stopping;

	pthread_mutex_lock(&p->mu);
	if (p->stopping || p->qlen >= (unsigned)p->cfg->queue_max) {
		stopping = p->stopping;
		pthread_mutex_unlock(&p->mu);
		job_error(j, 503, stopping ? "shutting down" :
		    "server busy, try again");
		j->done(j);
		return;
	}
	j->next = NULL;
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->qlen++;
	p->pending++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

int
pool_db_up(void *ud)
{
	struct pool *p = ud;
	int up;

	pthread_mutex_lock(&p->hmu);
	up = !p->down;
	pthread_mutex_unlock(&p->hmu);
	return up;
}

unsigned
pool_pending(struct pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->mu);
	n = p->pending;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_join(p);
	pool_destroy(p);
}
