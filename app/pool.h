/*
 * pool.h - the app's database side: a fixed pool of threads, each with
 * its own connection, serving a bounded queue of jobs, and one thread
 * that prunes expired idempotency keys on a connection of its own.
 *
 * The HTTP thread never touches the database: it submits a job and is
 * called back (from a pool thread) when the job has its answer.  Create
 * jobs taken together by one thread are committed in ONE transaction
 * (group commit, app/customers.c); every client is answered only after
 * that commit.  An answer read from another transaction's rows (a 409, a
 * replay, a GET 200) is given only once those rows are durable
 * (common/durable.h).
 */
#ifndef OUTBOX_APP_POOL_H
#define OUTBOX_APP_POOL_H

#include "buf.h"
#include "trace.h"
#include "config.h"
#include "uid.h"
#include "validate.h"

enum job_kind { JOB_CREATE, JOB_GET, JOB_PING };

struct job;
typedef void (*job_done_fn)(struct job *j);

struct job {
	enum job_kind kind;
	/* in */
	struct new_customer req;        /* JOB_CREATE */
	char idem_key[IDEM_KEY_MAX + 1]; /* JOB_CREATE, "" when none */
	char id[UID_LEN + 1];           /* JOB_GET */
	char traceparent[TRACE_LEN + 1]; /* JOB_CREATE: stored with the event */
	job_done_fn done;
	void *ud;
	/* out: HTTP status, JSON body, Location for 201 */
	int status;
	struct buf body;
	char location[64];
	/* private to the pool */
	struct job *next;
	int replay;  /* look the Idempotency-Key up again after the commit */
	int derived; /* the answer was read from another transaction */
};

struct pool;

/* Starts the pool threads.  Connections are made lazily, so the app
 * starts even while the database is down.  Returns NULL on failure
 * (logged). */
struct pool *pool_new(const struct app_config *cfg);
/* Queues j; j->done(j) is called exactly once, from a pool thread or,
 * when the queue is full or the pool stops, from this call.  The caller
 * keeps ownership of j and must not touch it until done is called. */
void pool_submit(struct pool *p, struct job *j);
/* 1 unless the last database call found it unavailable (thread-safe;
 * ud is the pool: usable as a readiness callback). */
int pool_db_up(void *ud);
/* The shutdown deadline came: stops taking jobs (pool_submit answers
 * 503 from then on), answers the queued ones 503, and ends the database
 * sessions of the threads at work (KILL, waited for until they left):
 * their transactions are rolled back and answered 503, unless a COMMIT
 * was on its way (then its outcome is found out, see pool_resolve).
 * The threads answer every job they hold soon after.  Then pool_free. */
void pool_abort(struct pool *p);
/* Stops taking jobs (pool_submit answers 503 from then on), lets the
 * threads answer every job already queued, joins them, closes their
 * connections, frees.  NULL is a no-op. */
void pool_free(struct pool *p);

/* The pool's gate for groups of creates: open (1) when none of the n
 * groups that began at since[i] (clock_ms; -1: none) is in its first
 * alone_ms, or alone_ms is 0; else 0 and *wait_ms is how long until it
 * opens unless a group ends first.  One group at a time makes larger
 * groups and fewer commits; the next ones go alongside only when it is
 * slow (a row lock held elsewhere, a slow disk). */
int pool_gate_open(const long long *since, size_t n, long long now,
    int alone_ms, long long *wait_ms);

/* Initialises/clears a job's output buffer. */
void job_init(struct job *j, enum job_kind kind);
void job_clear(struct job *j);
/* Sets the job's answer to status with the body {"error": msg}. */
void job_error(struct job *j, int status, const char *msg);

#endif
