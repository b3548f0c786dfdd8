/*
 * pool.c - the app's database pool: the job queue, the threads that
 * serve it (each with its own connection), the database health shared
 * by them (answer 503 at once while it is down, try again with backoff),
 * the durability of answers read from other transactions, what became
 * of a group whose COMMIT got no reply, the rollback of what is left at
 * the shutdown deadline, and the pruning of expired idempotency keys by
 * a thread of its own.  The statements themselves are app/customers.c's.
 */
#include "pool.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
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
#include "pruner.h"

/* The pruner's pause (ms) once no expired key is left, and after a
 * failure. */
#define POOL_PRUNE_IDLE_MS 10000
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
	int stopping;
	int aborted; /* pool_abort ran: a lost session is its doing */
	pthread_t *threads;
	int nthreads;
	/* database health, shared by the pool threads */
	pthread_mutex_t hmu;
	int down;
	struct timespec retry_at;
	struct backoff bo;
	/* the threads, for pool_abort */
	struct pool_thread **ts;
	/* per thread (by index), under mu: when its group of creates began
	 * (clock_ms), -1 while it has none (pool_gate_open) */
	long long *group_since;
	/* threads in pool_take's timed wait, for creates behind the gate */
	int gate_waiters;
	/* the pruner of expired idempotency keys */
	struct pruner *pruner;
};

/* One thread of the pool and what it owns. */
struct pool_thread {
	struct pool *p;
	int index;
	db_conn *c;
	/* An answer was read from another transaction's rows and no commit
	 * of ours that wrote rows followed: they may not be durable yet. */
	int unsure;
	/* Its session on the server (db_share_session_id) and whether it
	 * is working on jobs: pool_abort kills the sessions of busy ones. */
	_Atomic unsigned long sid;
	atomic_int busy;
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

/* 1 once pool_abort ran. */
static int
pool_aborted(struct pool *p)
{
	int a;

	pthread_mutex_lock(&p->mu);
	a = p->aborted;
	pthread_mutex_unlock(&p->mu);
	return a;
}

/* ---- the jobs ------------------------------------------------------ */

/* The create jobs a thread took: one transaction; if it fails for
 * another reason than a lost database (a deadlock, one bad request),
 * each job alone, so that the others still succeed. */
/* The group's COMMIT went out and its reply never came: the old session
 * is ended, then its rows looked for (durable_resolve).  201 (and the
 * rest of the group's answers) when they are there and durable; 503 when
 * they are not (nothing was written: a retry is safe) or when it cannot
 * be found out. */
static void
pool_resolve(struct pool_thread *t, struct job **jobs, size_t n)
{
	struct customers_group g = { jobs, n };
	char name[DURABLE_NAME_MAX];
	enum durable_outcome out;
	size_t i;

	snprintf(name, sizeof(name), "app:%d", t->index);
	out = durable_resolve(t->c, db_session_id(t->c), db_server_started(t->c),
	    customers_probe, &g, name, t->p->cfg->db.io_timeout_s * 1000);
	if (out == DURABLE_COMMITTED) {
		log_info("a COMMIT reply was lost: the group of %zu is "
		    "committed, answered as such", n);
		pool_db_ok(t->p);
		/* The barrier made everything read before it durable. */
		t->unsure = 0;
		customers_after_commit(t->c, jobs, n, &t->unsure);
		app_metrics_lost_commit(LOST_COMMITTED);
		return;
	}
	app_metrics_lost_commit(out == DURABLE_ROLLED_BACK ? LOST_ROLLED_BACK :
	    LOST_UNKNOWN);
	if (out == DURABLE_ROLLED_BACK) {
		log_warnx("a COMMIT reply was lost: the group of %zu was not "
		    "committed; answering 503", n);
	} else {
		log_warnx("a COMMIT reply was lost and its outcome cannot be "
		    "found out (%s); answering 503", db_error(t->c));
		pool_db_failed(t->p, t->c, "commit outcome");
	}
	for (i = 0; i < n; i++)
		job_error(jobs[i], 503, "database unavailable, try again "
		    "(with the same Idempotency-Key)");
}

static void
pool_creates(struct pool_thread *t, struct job **jobs, size_t n)
{
	enum create_phase phase = CREATE_NOT_BEGUN;
	size_t i;
	int rc = DB_ECONN, tries;

	if (pool_db_gate(t->p)) {
		app_metrics_group(n);
		rc = customers_create(t->c, jobs, n, &t->unsure, &phase);
	}
	if (rc == DB_OK) {
		pool_db_ok(t->p);
		return;
	}
	if (rc == DB_ECONN && phase == CREATE_COMMIT_SENT) {
		pool_resolve(t, jobs, n);
		return;
	}
	if (rc == DB_ECONN && pool_aborted(t->p)) {
		/* pool_abort ended the session: rolled back, not an outage. */
		for (i = 0; i < n; i++)
			job_error(jobs[i], 503, "shutting down");
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
			rc = customers_create(t->c, &jobs[i], 1, &t->unsure,
			    &phase);
			/* A deadlock is retried; a lock wait already
			 * waited its time. */
			if (rc != DB_ERETRY || db_lock_wait_timed_out(t->c))
				break;
		}
		if (rc == DB_OK)
			continue;
		if (rc == DB_ECONN && phase == CREATE_COMMIT_SENT) {
			pool_resolve(t, &jobs[i], 1);
			continue;
		}
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

/* The key pruner (common/pruner.h): deletes idempotency keys past their
 * TTL, APP_PRUNE_CHUNK per statement (one short transaction each, few
 * locks), back to back while a whole chunk goes, so that it keeps up with
 * any rate of keyed requests; then pauses.  Its own connection: it never
 * takes a pool thread from the requests.  A database down (or refusing
 * writes) is reported by the requests, once; the pruner only waits for
 * the pool's gate. */
static int
pool_prune_chunk(void *ud, db_conn *c, uint64_t *deleted)
{
	struct pool *p = ud;
	unsigned long long n = 0;
	int rc;

	rc = customers_prune_keys(c, p->cfg->idem_ttl_hours,
	    p->cfg->prune_chunk, &n);
	*deleted = n;
	return rc;
}

static int
pool_prune_gate(void *ud)
{
	return pool_db_gate(ud);
}

static void
pool_keys_pruned(uint64_t n)
{
	app_metrics_keys_pruned((unsigned long long)n);
}

static struct pruner *
pool_pruner_start(struct pool *p)
{
	struct pruner_spec s = { .chunk = pool_prune_chunk,
	    .chunk_rows = (uint64_t)p->cfg->prune_chunk,
	    .rest_ms = POOL_PRUNE_IDLE_MS, .fail_ms = POOL_PRUNE_IDLE_MS,
	    .gate = pool_prune_gate, .pruned = pool_keys_pruned, .ud = p };

	snprintf(s.what, sizeof(s.what), "idempotency keys older than %d h",
	    p->cfg->idem_ttl_hours);
	snprintf(s.unit, sizeof(s.unit), "keys");
	snprintf(s.task, sizeof(s.task), "prune idempotency keys");
	return pruner_start(&p->cfg->db, &s);
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

int
pool_gate_open(const long long *since, size_t n, long long now,
    int alone_ms, long long *wait_ms)
{
	long long left, most = 0;
	size_t i;

	for (i = 0; alone_ms > 0 && i < n; i++) {
		if (since[i] < 0)
			continue;
		left = since[i] + alone_ms - now;
		if (left > most)
			most = left;
	}
	*wait_ms = most;
	return most == 0;
}

/* Takes up to max jobs (into batch), oldest first; creates only while
 * the gate is open (pool_gate_open: no other group in its first
 * APP_GROUP_ALONE_MS), reads and pings always.  The thread's last group
 * is over: the gate may open, and this thread takes the creates itself
 * (the others are not woken: a hand-off to another thread costs a
 * wake-up per group).  Marks the thread busy when it took any, and its
 * group begun when it took creates.  Returns the jobs taken; 0: the
 * pool stops. */
static size_t
pool_take(struct pool_thread *t, struct job **batch, size_t max)
{
	struct pool *p = t->p;
	struct job *j, *prev, *next;
	struct timespec until;
	long long now, wait_ms;
	size_t n = 0;
	int open, creates = 0;

	pthread_mutex_lock(&p->mu);
	p->group_since[t->index] = -1;
	for (;;) {
		now = clock_ms();
		open = pool_gate_open(p->group_since, (size_t)p->cfg->db_pool,
		    now, p->cfg->group_alone_ms, &wait_ms);
		for (prev = NULL, j = p->head; j != NULL && n < max; j = next) {
			next = j->next;
			if (j->kind == JOB_CREATE && !open) {
				prev = j;
				continue;
			}
			if (prev != NULL)
				prev->next = next;
			else
				p->head = next;
			if (p->tail == j)
				p->tail = prev;
			p->qlen--;
			creates |= j->kind == JOB_CREATE;
			batch[n++] = j;
		}
		if (n > 0 || (p->head == NULL && p->stopping))
			break;
		if (p->head == NULL) {
			pthread_cond_wait(&p->cv, &p->mu);
		} else {
			/* Only creates wait, for the group at work. */
			clock_deadline(&until, (unsigned)wait_ms);
			p->gate_waiters++;
			pthread_cond_timedwait(&p->cv, &p->mu, &until);
			p->gate_waiters--;
		}
	}
	if (creates)
		p->group_since[t->index] = now;
	app_metrics_queue_depth(p->qlen);
	atomic_store(&t->busy, n > 0);
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

	batch = calloc(max, sizeof(*batch));
	if (batch == NULL)
		fatalx("out of memory");
	while ((n = pool_take(t, batch, max)) > 0) {
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
			batch[i]->done(batch[i]);
		atomic_store(&t->busy, 0);
	}
	free(batch);
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
	for (i = 0; i < p->nthreads; i++) {
		pthread_join(p->threads[i], NULL);
		db_free(p->ts[i]->c);
		free(p->ts[i]);
	}
	p->nthreads = 0;
	pruner_free(p->pruner);
	p->pruner = NULL;
}

static void
pool_destroy(struct pool *p)
{
	free(p->threads);
	free(p->ts);
	free(p->group_since);
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
	pthread_condattr_t ca;
	char lock_sql[80];
	int i;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		log_warnx("database pool: out of memory");
		return NULL;
	}
	p->cfg = cfg;
	/* A row lock held elsewhere (an administrator's transaction) costs
	 * one request a 503 after APP_LOCK_WAIT_TIMEOUT, not the socket
	 * timeout that would look like an outage. */
	snprintf(lock_sql, sizeof(lock_sql),
	    "SET SESSION innodb_lock_wait_timeout = %d", cfg->lock_wait_s);
	pthread_mutex_init(&p->mu, NULL);
	/* Its timed waits (pool_take) are on the monotonic clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&p->hmu, NULL);
	backoff_init(&p->bo, 100, 2000);
	p->threads = calloc((size_t)cfg->db_pool, sizeof(*p->threads));
	p->ts = calloc((size_t)cfg->db_pool, sizeof(*p->ts));
	p->group_since = calloc((size_t)cfg->db_pool, sizeof(*p->group_since));
	if (p->threads == NULL || p->ts == NULL || p->group_since == NULL) {
		log_warnx("database pool: out of memory");
		pool_destroy(p);
		return NULL;
	}
	for (i = 0; i < cfg->db_pool; i++)
		p->group_since[i] = -1;
	for (i = 0; i < cfg->db_pool; i++) {
		t = calloc(1, sizeof(*t));
		if (t == NULL || (t->c = db_new(&cfg->db)) == NULL) {
			log_warnx("database pool: out of memory");
			free(t);
			goto fail;
		}
		t->p = p;
		t->index = i;
		atomic_init(&t->sid, 0);
		atomic_init(&t->busy, 0);
		db_share_session_id(t->c, &t->sid);
		db_set_session(t->c, lock_sql);
		if (pthread_create(&p->threads[i], NULL, pool_thread_main,
		    t) != 0) {
			log_warnx("database pool: cannot start thread %d", i);
			db_free(t->c);
			free(t);
			goto fail;
		}
		p->ts[p->nthreads++] = t;
	}
	if ((p->pruner = pool_pruner_start(p)) == NULL)
		goto fail;
	return p;
fail:
	pool_join(p);
	pool_destroy(p);
	return NULL;
}

void
pool_submit(struct pool *p, struct job *j)
{
	long long wait_ms;
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
	app_metrics_queue_depth(p->qlen);
	/* A create behind the closed gate wakes nobody (a wake-up per
	 * request, for nothing, under load): the group at work takes it
	 * when it ends, a thread in the timed wait when the gate opens.  If
	 * none waits so, one is woken to. */
	if (j->kind != JOB_CREATE || p->gate_waiters == 0 ||
	    pool_gate_open(p->group_since, (size_t)p->cfg->db_pool,
	    clock_ms(), p->cfg->group_alone_ms, &wait_ms))
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

void
pool_abort(struct pool *p)
{
	struct job *j, *queued;
	db_conn *admin;
	unsigned long sid;
	int i, timeout_ms = p->cfg->db.io_timeout_s * 1000;

	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	p->aborted = 1;
	queued = p->head;
	p->head = p->tail = NULL;
	p->qlen = 0;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	/* Queued: never begun. */
	while ((j = queued) != NULL) {
		queued = j->next;
		job_error(j, 503, "shutting down");
		j->done(j);
	}
	/* Working: their sessions are killed, which rolls back what did not
	 * commit; a group whose COMMIT was on its way finds out what became
	 * of it (pool_resolve) like after any lost reply. */
	if ((admin = db_new(&p->cfg->db)) == NULL)
		return;
	for (i = 0; i < p->nthreads; i++) {
		if (!atomic_load(&p->ts[i]->busy))
			continue;
		sid = atomic_load(&p->ts[i]->sid);
		if (sid != 0 && durable_end_session(admin, sid, timeout_ms) != 0)
			log_warnx("shutdown: session %lu of pool thread %d not "
			    "ended: %s", sid, i, db_error(admin));
	}
	db_free(admin);
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_join(p);
	pool_destroy(p);
}
