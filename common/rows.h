/*
 * rows.h - multi-row statements over prepared statements: one INSERT
 * ... VALUES (...),(...) or one SELECT ... IN (?,?,...) for many rows.
 *
 * The SQL text comes only from the constant parts of a struct rows_sql,
 * repeated; values are always bound as parameters.  A statement carries
 * all the rows (up to ROWS_CHUNK_MAX, and to the binds db.c allows): one
 * round trip per statement and batch.  Under load batches are full, so
 * the full-size texts stay in the connection's prepared-statement cache;
 * a smaller batch costs one more round trip to prepare its text.
 */
#ifndef OUTBOX_COMMON_ROWS_H
#define OUTBOX_COMMON_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* Most rows in one statement. */
#define ROWS_CHUNK_MAX 256

struct rows_sql {
	const char *head;  /* "INSERT INTO t (a, b) VALUES " */
	const char *row;   /* "(?, ?)"; rows are joined with "," */
	const char *tail;  /* "" or " ON DUPLICATE KEY UPDATE ..." or ")" */
	size_t nparams;    /* placeholders in row */
};

/* The rows of the first statement for n rows of q: n, or the most one
 * statement may carry. */
size_t rows_chunk(const struct rows_sql *q, size_t n);

/* Writes the text for nrows rows into out.  0, or -1 if it does not fit
 * or nrows is 0. */
int rows_text(const struct rows_sql *q, size_t nrows, char *out,
    size_t outlen);

/* Runs q for nrows rows; vals holds nrows * q->nparams values, row after
 * row.  *affected (may be NULL) receives the total affected rows.
 * Returns a db_rc; stops at the first failing chunk. */
int rows_exec(db_conn *db, const struct rows_sql *q, const struct db_val *vals,
    size_t nrows, uint64_t *affected);

/* Runs the query q for nrows "rows" of parameters (an IN list) and calls
 * fn for each result row.  Returns a db_rc. */
int rows_query(db_conn *db, const struct rows_sql *q, const struct db_val *vals,
    size_t nrows, db_row_fn fn, void *ud);

#endif
