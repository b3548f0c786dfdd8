/*
 * chunkdel.c - chunked deletion of old rows by key (chunkdel.h).
 */
#include "chunkdel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "<head>?,?,...,?)": one prepared text for every chunk (a short chunk
 * repeats its first key), so that it stays in the statement cache. */
static const char *
chunkdel_sql(struct chunkdel *d)
{
	size_t i, n;

	if (d->sql[0] != '\0')
		return d->sql;
	n = strlen(d->delete_head);
	if (n > CHUNKDEL_HEAD_MAX)
		return NULL;
	memcpy(d->sql, d->delete_head, n);
	d->sql[n++] = '?';
	for (i = 1; i < CHUNKDEL_ROWS; i++) {
		d->sql[n++] = ',';
		d->sql[n++] = '?';
	}
	d->sql[n++] = ')';
	d->sql[n] = '\0';
	return d->sql;
}

struct old_keys {
	const struct chunkdel *d;
	struct db_val *vals; /* [0]: the hours, then the keys */
	char (*text)[CHUNKDEL_KEY_MAX + 1];
	size_t n;
};

static int
old_key(void *ud, const struct db_col *cols, size_t ncols)
{
	struct old_keys *o = ud;
	char *t;

	if (ncols != 1 || cols[0].is_null || cols[0].len > CHUNKDEL_KEY_MAX ||
	    o->n >= CHUNKDEL_ROWS)
		return -1;
	if (o->d->int_keys) {
		o->vals[1 + o->n++] = DB_INT(strtoll(cols[0].s, NULL, 10));
		return 0;
	}
	t = o->text[o->n];
	memcpy(t, cols[0].s, cols[0].len);
	t[cols[0].len] = '\0';
	o->vals[1 + o->n++] = DB_STRN(t, cols[0].len);
	return 0;
}

int
chunkdel_step(struct chunkdel *d, db_conn *c, int hours, uint64_t *deleted)
{
	char text[CHUNKDEL_ROWS][CHUNKDEL_KEY_MAX + 1]; /* 4 KiB */
	struct db_val vals[1 + CHUNKDEL_ROWS];
	struct old_keys o = { d, vals, text, 0 };
	const char *sql = chunkdel_sql(d);
	size_t i;
	int rc;

	*deleted = 0;
	if (sql == NULL)
		return DB_EOTHER;
	vals[0] = DB_INT(hours);
	rc = db_query(c, d->select_old, vals, 1, old_key, &o, NULL);
	if (rc != DB_OK || o.n == 0)
		return rc;
	for (i = 1 + o.n; i < 1 + CHUNKDEL_ROWS; i++)
		vals[i] = vals[1];
	return db_exec(c, sql, vals, 1 + CHUNKDEL_ROWS, deleted);
}
