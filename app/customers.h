/*
 * customers.h - what the app does with the database: create customers
 * (the customer row and its outbox row in one transaction, a group of
 * requests per transaction, Idempotency-Key replays), read one back,
 * prune expired idempotency keys.  Every function sets the jobs' answers
 * and returns a db_rc; what an outage means (503, backoff, readiness) is
 * app/pool.c's business.
 */
#ifndef OUTBOX_APP_CUSTOMERS_H
#define OUTBOX_APP_CUSTOMERS_H

#include <stddef.h>

#include "db.h"
#include "pool.h"

/* How far customers_create got when it failed. */
enum create_phase {
	CREATE_NOT_BEGUN,   /* no transaction: nothing was written */
	CREATE_IN_TXN,      /* failed inside the transaction, before COMMIT */
	CREATE_COMMIT_SENT, /* the COMMIT went out and its reply did not
	                     * come: committed or not, unknown */
};

/* One transaction for the n create jobs.  DB_OK: committed, every job
 * has its answer (201, 409, a replay, 422, or 503 when a replay could not
 * be found).  Any other db_rc: not committed (rolled back), nothing
 * written, unless *phase is CREATE_COMMIT_SENT: then the jobs hold the
 * answers they would get had it committed, and whether it did is for
 * the caller to find out (durable_resolve with customers_probe, then
 * customers_after_commit).  *unsure is set to 1 when an answer was read
 * from another transaction's rows that no commit of ours with rows
 * followed (they may not be durable yet), and to 0 when this commit
 * wrote rows after every such read. */
int customers_create(db_conn *c, struct job **jobs, size_t n,
    int *unsure, enum create_phase *phase);

/* What follows a commit of customers_create: the replays whose key was
 * taken by a concurrent request are looked up again (or answered 503).
 * Sets *unsure when it read anything. */
void customers_after_commit(db_conn *c, struct job **jobs, size_t n,
    int *unsure);

/* The jobs of a group whose COMMIT went unanswered (ud: a struct
 * customers_group): a durable_probe_fn that tells whether its rows are
 * there (1), not (0), or a db_rc.  A group that wrote no row of its own
 * counts as there: only its reads need to be durable. */
struct customers_group {
	struct job **jobs;
	size_t n;
};
int customers_probe(db_conn *c, void *ud);

/* Reads the customer j->id: DB_OK with 200 and its JSON (*unsure = 1),
 * or 404; another db_rc when the read failed. */
int customers_get(db_conn *c, struct job *j, int *unsure);

/* Deletes up to chunk idempotency keys older than ttl_hours, oldest
 * first, in one short transaction of its own; *deleted receives how
 * many.  A db_rc. */
int customers_prune_keys(db_conn *c, int ttl_hours, int chunk,
    unsigned long long *deleted);

#endif
