/*
 * committer.c - the database thread of the worker (committer.h).
 */
#include "committer.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "daemon.h"
#include "clock.h"
#include "db.h"
#include "durable.h"
#include "health.h"
#include "log.h"
#include "inbox.h"
#include "worker_metrics.h"

/* While idle, the database is pinged this often: readiness follows it
 * even when no message comes. */
#define IDLE_PING_MS 2000

struct committer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;   /* any change below; CLOCK_MONOTONIC */
	struct inbatch *batch; /* handed over, not reported yet */
	int running;         /* batch taken by the thread */
	int done;            /* verdict ready in rc */
	enum commit_rc rc;
	int cancel;          /* stop retrying the current batch */
	int quit;            /* the thread must exit */
	int done_fd;         /* written to with each verdict */
	/* Used by the thread only. */
	db_conn *db;
	struct backoff bo;
	struct item **cands;
	unsigned retries;
};

enum try_rc { TRY_OK, TRY_REFUSED, TRY_CANCELLED };

/* A write went through: an outage ends (common/health.h: the one
 * warning of an outage is shared with the pruner, inbox_retention.c). */
static void
db_answered(struct committer *c)
{
	if (health_outage_end(SERVER_DB))
		log_info("database reachable again after %u retries",
		    c->retries);
	c->retries = 0;
	backoff_reset(&c->bo);
}

/* Idle: is the database still (or again) there?  While an outage is
 * reported the look is a write, the durability barrier's own row (a
 * server that refuses writes answers pings: only a write ends the
 * outage, even when no message comes); otherwise a ping, for the
 * readiness flag only (the next batch reports a loss). */
static void
idle_check(struct committer *c)
{
	if (!health_outage(SERVER_DB)) {
		health_set(SERVER_DB, db_ping(c->db) == DB_OK);
		return;
	}
	if (durable_barrier(c->db, "worker") == DB_OK)
		db_answered(c);
	else
		health_set(SERVER_DB, 0);
}

static int
cancelled(struct committer *c)
{
	int v;

	pthread_mutex_lock(&c->mu);
	v = c->cancel || c->quit;
	pthread_mutex_unlock(&c->mu);
	return v;
}

/* Sleeps ms, or less when cancelled.  1 when cancelled. */
static int
sleep_or_cancel(struct committer *c, unsigned ms)
{
	struct timespec ts;
	int v, e = 0;

	clock_deadline(&ts, ms);
	pthread_mutex_lock(&c->mu);
	while (!c->cancel && !c->quit && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	v = c->cancel || c->quit;
	pthread_mutex_unlock(&c->mu);
	return v;
}

/* Runs the transaction for items[0..n) until it commits, the data of a
 * message is refused, or the consumer cancels.  held: the deliveries of
 * the batch, for the log. */
static enum try_rc
try_commit(struct committer *c, struct item *const *items, size_t n,
    size_t held)
{
	int rc, quiet = !health_outage(SERVER_DB);
	double t0;

	for (;;) {
		t0 = clock_s();
		rc = inbox_apply(c->db, items, n);
		if (rc == DB_OK) {
			worker_metrics_commit(clock_s() - t0);
			db_answered(c);
			return TRY_OK;
		}
		if (rc == DB_EOTHER && inbox_refused_by_data(c->db))
			return TRY_REFUSED;
		/* A connection closed while idle (wait_timeout, a restart
		 * long ago) is reopened at once, without a word. */
		if (rc == DB_ECONN && quiet) {
			quiet = 0;
			continue;
		}
		if (rc == DB_ERETRY) {
			log_info("transaction conflict (%s); retrying",
			    db_error(c->db));
		} else if (health_outage_begin(SERVER_DB)) {
			/* Once per outage; the retries go to debug. */
			log_warnx("database %s: %s; holding %zu messages "
			    "unacknowledged, retrying with backoff",
			    rc == DB_ECONN ? "unavailable" : "error",
			    db_error(c->db), held);
		} else {
			log_debug("database still unavailable: %s",
			    db_error(c->db));
		}
		c->retries++;
		worker_metrics_retry();
		if (cancelled(c) || sleep_or_cancel(c, backoff_next(&c->bo)))
			return TRY_CANCELLED;
	}
}

/* The data of a message was refused and the whole transaction rolled
 * back: one transaction per message finds which. */
static enum try_rc
isolate(struct committer *c, struct item *const *cands, size_t nc,
    size_t held)
{
	char reason[INBATCH_REASON_MAX];
	struct item *it;
	enum try_rc r;
	size_t i;

	log_warnx("database refused a message of the batch (%s); handling "
	    "its %zu messages one by one", db_error(c->db), nc);
	for (i = 0; i < nc; i++) {
		it = cands[i];
		r = try_commit(c, &it, 1, held);
		if (r == TRY_REFUSED) {
			snprintf(reason, sizeof(reason), "database refused the "
			    "effect: %s", db_error(c->db));
			inbatch_set_bad(it, reason);
			it->dead = DEAD_DB_REFUSED;
			continue;
		}
		if (r == TRY_CANCELLED)
			return r;
	}
	return TRY_OK;
}

static enum commit_rc
commit_batch(struct committer *c, struct inbatch *b)
{
	size_t nc = inbatch_candidates(b, c->cands);
	enum try_rc r;

	if (nc == 0)
		return COMMIT_OK;
	r = try_commit(c, c->cands, nc, b->n);
	if (r == TRY_REFUSED)
		r = isolate(c, c->cands, nc, b->n);
	return r == TRY_OK ? COMMIT_OK : COMMIT_CANCELLED;
}

static void *
committer_main(void *arg)
{
	struct committer *c = arg;
	const uint64_t one = 1;
	struct timespec ts;
	enum commit_rc rc;
	struct inbatch *b;
	int e;

	/* Not fatal: the first batch waits for the database. */
	if (db_connect(c->db) != DB_OK) {
		if (health_outage_begin(SERVER_DB))
			log_warnx("database unavailable: %s; messages wait in "
			    "the queue until it answers", db_error(c->db));
	} else {
		health_set(SERVER_DB, 1);
	}
	pthread_mutex_lock(&c->mu);
	for (;;) {
		clock_deadline(&ts, IDLE_PING_MS);
		e = 0;
		while (!c->quit && (c->batch == NULL || c->running) &&
		    e != ETIMEDOUT)
			e = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		if (c->quit)
			break;
		if (c->batch == NULL || c->running) {
			pthread_mutex_unlock(&c->mu);
			idle_check(c);
			pthread_mutex_lock(&c->mu);
			continue;
		}
		b = c->batch;
		c->running = 1;
		pthread_mutex_unlock(&c->mu);
		rc = commit_batch(c, b);
		pthread_mutex_lock(&c->mu);
		c->rc = rc;
		c->done = 1;
		pthread_cond_broadcast(&c->cv);
		/* Wakes the consumer's poll (consume.c).  Only a counter
		 * at its maximum refuses a write: it is read back long
		 * before. */
		if (write(c->done_fd, &one, sizeof(one)) == -1)
			log_warn("the committers' eventfd");
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

struct committer *
committer_new(const struct worker_config *cfg, int done_fd)
{
	pthread_condattr_t ca;
	struct committer *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto oom;
	c->done_fd = done_fd;
	c->db = db_new(&cfg->db);
	c->cands = calloc((size_t)cfg->batch_max, sizeof(*c->cands));
	if (c->db == NULL || c->cands == NULL)
		goto oom;
	backoff_init(&c->bo, (unsigned)cfg->retry_base_ms,
	    (unsigned)cfg->retry_max_ms);
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (daemon_thread(&c->thread, committer_main, c) == -1) {
		log_warn("cannot start the database thread");
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		db_free(c->db);
		free(c->cands);
		free(c);
		return NULL;
	}
	return c;
oom:
	log_warnx("out of memory");
	if (c != NULL) {
		db_free(c->db);
		free(c->cands);
		free(c);
	}
	return NULL;
}

void
committer_free(struct committer *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->quit = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	db_free(c->db);
	free(c->cands);
	free(c);
}

void
committer_submit(struct committer *c, struct inbatch *b)
{
	pthread_mutex_lock(&c->mu);
	c->batch = b;
	c->running = 0;
	c->done = 0;
	c->cancel = 0;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

int
committer_wait(struct committer *c, int timeout_ms, enum commit_rc *rc)
{
	struct timespec ts;
	int e = 0, got = 0;

	clock_deadline(&ts, (unsigned)timeout_ms);
	pthread_mutex_lock(&c->mu);
	/* 0: a look, as the consumer takes one per delivery (reap): a
	 * timed wait on a deadline already past is still a system call. */
	while (timeout_ms > 0 && !c->done && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	if (c->done) {
		*rc = c->rc;
		c->done = 0;
		c->batch = NULL;
		c->running = 0;
		got = 1;
	}
	pthread_mutex_unlock(&c->mu);
	return got;
}

void
committer_cancel(struct committer *c)
{
	pthread_mutex_lock(&c->mu);
	c->cancel = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}
