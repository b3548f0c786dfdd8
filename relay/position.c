/*
 * position.c - the binlog mode's stored position (position.h).
 */
#include "position.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_LOAD[] =
    "SELECT gtid, last_seq FROM outbox_relay_position WHERE id = 1";

static const char SQL_STORE[] =
    "INSERT INTO outbox_relay_position (id, gtid, last_seq, updated_at) "
    "VALUES (1, ?, ?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE "
    "gtid = VALUES(gtid), last_seq = VALUES(last_seq), "
    "updated_at = VALUES(updated_at)";

struct loaded {
	char *gtid;
	size_t len;
	int64_t *last_seq;
};

static int
position_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct loaded *l = ud;
	char *end;

	if (ncols != 2 || cols[0].is_null || cols[0].len >= l->len)
		return -1;
	snprintf(l->gtid, l->len, "%s", cols[0].s);
	*l->last_seq = -1;
	if (!cols[1].is_null) {
		*l->last_seq = strtoll(cols[1].s, &end, 10);
		if (*end != '\0' || *l->last_seq < 0)
			return -1;
	}
	return 0;
}

int
position_load(db_conn *c, char *gtid, size_t len, int64_t *last_seq)
{
	struct loaded l;
	size_t n = 0;
	int rc;

	/* Set before the pointers are handed on (cppcheck's ctuuninitvar
	 * followed them from a caller's uninitialized variable). */
	gtid[0] = '\0';
	*last_seq = -1;
	l.gtid = gtid;
	l.len = len;
	l.last_seq = last_seq;
	rc = db_query(c, SQL_LOAD, NULL, 0, position_row, &l, &n);
	if (rc != DB_OK)
		return rc;
	return n > 0 ? 1 : 0;
}

int
position_store(db_conn *c, const char *gtid, int64_t last_seq)
{
	struct db_val v[2] = { DB_STR(gtid), DB_NULL };

	if (last_seq >= 0)
		v[1] = DB_INT(last_seq);
	return db_exec(c, SQL_STORE, v, 2, NULL);
}
