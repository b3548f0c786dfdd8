/*
 * pruner.h - a thread that deletes old rows a small chunk at a time, on
 * a database connection of its own: chunk after chunk while whole chunks
 * go, with a pause between two of them, then a rest until the next
 * sweep.  The app prunes its expired idempotency keys with it, the relay
 * its old published rows, the worker its old processed ids.
 *
 * The pause (pruner_pause_ms) paces a sweep: at least gap_ms, and at
 * least pace times as long as the chunk just took, so that a sweep takes
 * at most 1/(pace + 1) of its connection's time.  A sweep at full speed
 * is a burst that slows every other statement of the server while it
 * lasts: measured in make bench's history part, the relay's sweep of
 * 29,000 rows aged past the retention (2 s at full speed, its chunks
 * reading old pages from disk) took the end-to-end latency of those
 * seconds' requests from 8 to 20-47 ms on average, 154 ms at worst;
 * paced at a tenth of the time, the same deletes cost no latency seen.
 * Paced, a sweep can still fall behind rows that age faster than it
 * deletes them; one still under way rest_ms after its first chunk is
 * behind, and its pace is halved then and at each further rest_ms, down
 * to gap_ms alone: every sweep catches up (the next starts paced again).
 *
 * A failure: a lost database or one that refuses writes (DB_ECONN) goes
 * to the daemon's outage report (spec.down; without one, the daemon's
 * other threads report it), anything else is a warning of the pruner's;
 * either way it rests fail_ms and tries again.  A sweep that deleted
 * rows ends with one log line: how many, in how long.
 *
 * Its session is READ COMMITTED: a chunk locks the rows it deletes, never
 * a gap another session's insert would wait for.
 */
#ifndef OUTBOX_PRUNER_H
#define OUTBOX_PRUNER_H

#include <stdint.h>

#include "db.h"

/* The pace of the retention sweeps (the relay's, the worker's): at most a
 * tenth of the connection's time while not behind. */
#define PRUNER_RETENTION_PACE 9

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
	unsigned pace;       /* and at least pace times the chunk's own time
	                      * (0: gap_ms alone): pruner_pause_ms */
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
/* The pause after a whole chunk that took chunk_ms, sweep_ms since the
 * sweep's first chunk began (above): max(gap_ms, pace' * chunk_ms), with
 * pace' the pace halved once per whole rest_ms of sweep_ms, and at most
 * rest_ms. */
unsigned pruner_pause_ms(const struct pruner_spec *s, long long chunk_ms,
    long long sweep_ms);
/* Stops the thread (a chunk in progress ends first; a pause is cut
 * short), joins it, closes its connection, frees.  NULL is a no-op. */
void pruner_free(struct pruner *p);

#endif
