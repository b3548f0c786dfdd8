/*
 * pruner.h - a thread that deletes old rows a small chunk at a time, on
 * a database connection of its own: chunk after chunk while whole chunks
 * go (so that it keeps up with any rate of inserts), with an optional
 * pause between two of them (so that it never starves the daemon's own
 * statements of the server), then a rest until the next sweep.  The app
 * prunes its expired idempotency keys with it, the worker its old
 * processed ids.
 *
 * A failure: a lost database or one that refuses writes (DB_ECONN) goes
 * to the daemon's outage report (spec.down; without one, the daemon's
 * other threads report it), anything else is a warning of the pruner's;
 * either way it rests fail_ms and tries again.  A sweep that deleted
 * rows ends with one log line: how many, in how long.
 */
#ifndef OUTBOX_PRUNER_H
#define OUTBOX_PRUNER_H

#include <stdint.h>

#include "db.h"

struct pruner_spec {
	/* For the log: "idempotency keys older than 48 h" (what a sweep
	 * deleted), "keys" (its rate's unit), "prune idempotency keys" (a
	 * failure's warning).  Copied. */
	char what[96];
	char unit[16];
	char task[64];
	/* Deletes one chunk on c (called on the pruner's thread only):
	 * *deleted the rows deleted; a db_rc. */
	int (*chunk)(void *ud, db_conn *c, uint64_t *deleted);
	uint64_t chunk_rows; /* a chunk this full: more to delete at once */
	unsigned gap_ms;     /* pause between two whole chunks (0: none) */
	unsigned rest_ms;    /* pause after a sweep (a chunk not full) */
	unsigned fail_ms;    /* pause after a failure */
	/* Optional (NULL: none).  gate: 0 while the database must not be
	 * tried (an outage being waited out), the chunk then counts as
	 * DB_ECONN; down: a chunk met DB_ECONN; wrote: a chunk deleted
	 * rows (the database takes writes); pruned: rows deleted, for the
	 * daemon's counter. */
	int (*gate)(void *ud);
	void (*down)(void *ud, db_conn *c);
	void (*wrote)(void *ud);
	void (*pruned)(uint64_t n);
	void *ud;
};

struct pruner;

/* Starts the thread (signals blocked in it: they are the main
 * thread's), which connects on its first chunk; db and spec are copied.
 * NULL on failure (logged). */
struct pruner *pruner_start(const struct db_params *db,
    const struct pruner_spec *spec);
/* Stops the thread (a chunk in progress ends first; a pause is cut
 * short), joins it, closes its connection, frees.  NULL is a no-op. */
void pruner_free(struct pruner *p);

#endif
