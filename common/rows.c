/*
 * rows.c - multi-row statements in fixed chunk sizes (see rows.h).
 */
#include "rows.h"

#include <string.h>

/* Room for the longest statement text built here. */
#define ROWS_SQL_MAX 32768
/* db.c binds at most this many parameters per statement. */
#define ROWS_BINDS_MAX 1024

size_t
rows_chunk(const struct rows_sql *q, size_t n)
{
	size_t max = ROWS_BINDS_MAX / (q->nparams > 0 ? q->nparams : 1);

	if (max > ROWS_CHUNK_MAX)
		max = ROWS_CHUNK_MAX;
	return n < max ? n : max;
}

static int
rows_put(char *out, size_t outlen, size_t *pos, const char *s)
{
	size_t n = strlen(s);

	if (*pos + n >= outlen)
		return -1;
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
	return 0;
}

int
rows_text(const struct rows_sql *q, size_t nrows, char *out, size_t outlen)
{
	size_t i, pos = 0;

	if (nrows == 0 || outlen == 0)
		return -1;
	out[0] = '\0';
	if (rows_put(out, outlen, &pos, q->head) == -1)
		return -1;
	for (i = 0; i < nrows; i++) {
		if ((i > 0 && rows_put(out, outlen, &pos, ",") == -1) ||
		    rows_put(out, outlen, &pos, q->row) == -1)
			return -1;
	}
	return rows_put(out, outlen, &pos, q->tail);
}

int
rows_exec(db_conn *db, const struct rows_sql *q, const struct db_val *vals,
    size_t nrows, uint64_t *affected)
{
	char sql[ROWS_SQL_MAX];
	uint64_t a, total = 0;
	size_t done = 0, k;
	int rc;

	while (done < nrows) {
		k = rows_chunk(q, nrows - done);
		if (rows_text(q, k, sql, sizeof(sql)) == -1)
			return DB_EOTHER;
		rc = db_exec(db, sql, vals + done * q->nparams, k * q->nparams,
		    &a);
		if (rc != DB_OK)
			return rc;
		total += a;
		done += k;
	}
	if (affected != NULL)
		*affected = total;
	return DB_OK;
}

int
rows_query(db_conn *db, const struct rows_sql *q, const struct db_val *vals,
    size_t nrows, db_row_fn fn, void *ud)
{
	char sql[ROWS_SQL_MAX];
	size_t done = 0, k;
	int rc;

	while (done < nrows) {
		k = rows_chunk(q, nrows - done);
		if (rows_text(q, k, sql, sizeof(sql)) == -1)
			return DB_EOTHER;
		rc = db_query(db, sql, vals + done * q->nparams,
		    k * q->nparams, fn, ud, NULL);
		if (rc != DB_OK)
			return rc;
		done += k;
	}
	return DB_OK;
}
