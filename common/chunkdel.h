/*
 * chunkdel.h - deletes the oldest rows of a table past an age, one small
 * chunk per statement, without ever waiting for a row lock another
 * session holds: a consistent (non-locking) read of the keys of the
 * oldest rows past the age, then a delete of exactly those rows by key
 * with the age condition repeated (a row changed meanwhile so that it is
 * no longer past the age stays).  Short statements, few locks: it runs
 * beside a daemon's own traffic.  The relay's outbox retention and the
 * worker's inbox retention use it.
 */
#ifndef OUTBOX_CHUNKDEL_H
#define OUTBOX_CHUNKDEL_H

#include <stdint.h>

#include "db.h"

/* Rows deleted per statement at most.  Short statements interleave
 * with the daemons' own commits: at 1,000 requests/s with 10 million
 * rows of history and a row deleted per request, chunks of 500 added
 * 0.7-1.1 ms to the end-to-end median over chunks of 100 in two rounds
 * of three (README, "The relay"). */
#define CHUNKDEL_ROWS 100
/* The read's limit (struct chunkdel), as SQL text: "LIMIT 100". */
#define CHUNKDEL_LIMIT "LIMIT " DB_SQL_NUM(CHUNKDEL_ROWS)
/* Longest key, as text (a UUID: 36; a BIGINT: 20). */
#define CHUNKDEL_KEY_MAX 40
/* Longest head of the delete (below). */
#define CHUNKDEL_HEAD_MAX 512

struct chunkdel {
	/* The read: one placeholder, the age in hours; one column, the
	 * key; "ORDER BY <age column> " CHUNKDEL_LIMIT. */
	const char *select_old;
	/* The delete up to its key list: "DELETE FROM t WHERE <age column>
	 * < UTC_TIMESTAMP(6) - INTERVAL ? HOUR AND <key> IN (", one
	 * placeholder, the same age. */
	const char *delete_head;
	int int_keys; /* keys bound as integers, else as text */
	/* The whole delete text, built on first use. */
	char sql[CHUNKDEL_HEAD_MAX + 2 * CHUNKDEL_ROWS + 2];
};

/* Deletes at most CHUNKDEL_ROWS rows older than hours on c, outside a
 * transaction (each statement commits by itself); *deleted the rows
 * deleted: fewer than CHUNKDEL_ROWS when no more were past the age.  A
 * db_rc.  Uses d from one thread at a time. */
int chunkdel_step(struct chunkdel *d, db_conn *c, int hours,
    uint64_t *deleted);

#endif
