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

/* One transaction for the n create jobs.  DB_OK: committed, every job
 * has its answer (201, 409, a replay, 422, or 503 when a replay could not
 * be found).  Any other db_rc: rolled back, nothing written.  *unsure is
 * set to 1 when an answer was read from another transaction's rows that
 * no commit of ours with rows followed (they may not be durable yet), and
 * to 0 when this commit wrote rows after every such read. */
int customers_create(db_conn *c, struct job **jobs, size_t n,
    int *unsure);

/* Reads the customer j->id: DB_OK with 200 and its JSON (*unsure = 1),
 * or 404; another db_rc when the read failed. */
int customers_get(db_conn *c, struct job *j, int *unsure);

/* Deletes up to a small chunk of idempotency keys older than ttl_hours;
 * *deleted receives how many.  A db_rc. */
int customers_prune_keys(db_conn *c, int ttl_hours, unsigned long long *deleted);

#endif
