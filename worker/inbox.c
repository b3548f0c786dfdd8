/*
 * inbox.c - the inbox: one transaction per batch records the message ids
 * in processed_messages and applies the effects of the new ones.
 */
#include "inbox.h"

#include <stdlib.h>
#include <string.h>

#include "durable.h"
#include "handlers.h"
#include "log.h"
#include "rows.h"

static const struct rows_sql store_seen = {
	"SELECT message_id FROM processed_messages WHERE message_id IN (",
	"?",
	")",
	1,
};

static const struct rows_sql store_insert = {
	"INSERT INTO processed_messages (message_id, event_name, "
	    "processed_at) VALUES ",
	"(?, ?, UTC_TIMESTAMP(6))",
	"",
	2,
};

struct store_seen_ud {
	struct item *const *items;
	struct item **sorted; /* by id, for bsearch */
	size_t n;
};

static int
store_cmp_id(const void *a, const void *b)
{
	const struct item *x = *(const struct item *const *)a;
	const struct item *y = *(const struct item *const *)b;

	return memcmp(x->ev.id, y->ev.id, UID_LEN);
}

static int
store_cmp_key(const void *key, const void *elem)
{
	const struct item *y = *(const struct item *const *)elem;

	return memcmp(key, y->ev.id, UID_LEN);
}

/* A row of store_seen: marks the item with that id. */
static int
store_seen_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct store_seen_ud *u = ud;
	struct item **hit;

	if (ncols < 1 || cols[0].is_null || cols[0].len != UID_LEN)
		return 0;
	hit = bsearch(cols[0].s, u->sorted, u->n, sizeof(*u->sorted),
	    store_cmp_key);
	if (hit != NULL)
		(*hit)->seen_before = 1;
	return 0;
}

/* The statements of the transaction, between BEGIN and COMMIT.
 *
 * Optimistic (careful 0): redeliveries are rare, so the ids are inserted
 * without looking first; a duplicate key (DB_EDUP) sends the caller back
 * to a careful attempt in a new transaction.  Careful: the ids already
 * in processed_messages are looked up first and skipped. */
static int
store_body(db_conn *db, struct item *const *items, size_t n, int careful,
    struct db_val *vals, struct handled *hs, struct item **sorted,
    int *wrote)
{
	struct store_seen_ud u = { items, sorted, n };
	const struct handler *h;
	size_t i, k, hi;
	int rc;

	*wrote = 0;
	for (i = 0; i < n; i++)
		items[i]->seen_before = 0;
	if (careful) {
		for (i = 0; i < n; i++) {
			sorted[i] = items[i];
			vals[i] = DB_STRN(items[i]->ev.id, UID_LEN);
		}
		qsort(sorted, n, sizeof(*sorted), store_cmp_id);
		if ((rc = rows_query(db, &store_seen, vals, n, store_seen_row,
		    &u)) != DB_OK)
			return rc;
	}

	for (i = 0, k = 0; i < n; i++) {
		if (items[i]->seen_before)
			continue;
		vals[k * 2] = DB_STRN(items[i]->ev.id, UID_LEN);
		vals[k * 2 + 1] = DB_STR(items[i]->ev.event_name);
		k++;
	}
	if (k == 0)
		return DB_OK;
	/* Careful, a duplicate means another worker inserted the id after
	 * our look: the retry will see it as processed. */
	rc = rows_exec(db, &store_insert, vals, k, NULL);
	if (rc == DB_EDUP && careful)
		return DB_ERETRY;
	if (rc != DB_OK)
		return rc;
	*wrote = 1;

	for (hi = 0; hi < handler_count(); hi++) {
		h = handler_at(hi);
		for (i = 0, k = 0; i < n; i++) {
			if (items[i]->seen_before || items[i]->h != h)
				continue;
			hs[k].message_id = items[i]->ev.id;
			hs[k].data = items[i]->data;
			k++;
		}
		/* A handler's own duplicate key is not a redelivery: it must
		 * not send us to the careful attempt. */
		if (k > 0 && (rc = h->apply(db, hs, k)) != DB_OK)
			return rc == DB_EDUP ? DB_EOTHER : rc;
	}
	return DB_OK;
}

/* How long the answer to a lost COMMIT may take to find out (the old
 * session killed and gone, the ids looked up). */
#define INBOX_RESOLVE_MS 10000

struct inbox_probe {
	struct item *const *items;
	size_t n;
	struct db_val *vals;
	size_t found;
};

static int
inbox_probe_row(void *ud, const struct db_col *cols, size_t ncols)
{
	(void)cols;
	(void)ncols;
	((struct inbox_probe *)ud)->found++;
	return 0;
}

/* durable_resolve's probe: 1 when every id the lost transaction inserted
 * is in processed_messages, 0 when none is (a mix: DB_EOTHER, unknown). */
static int
inbox_probe(db_conn *c, void *ud)
{
	struct inbox_probe *p = ud;
	size_t i, k = 0;
	int rc;

	for (i = 0; i < p->n; i++) {
		if (!p->items[i]->seen_before)
			p->vals[k++] = DB_STRN(p->items[i]->ev.id, UID_LEN);
	}
	p->found = 0;
	rc = rows_query(c, &store_seen, p->vals, k, inbox_probe_row, p);
	if (rc != DB_OK)
		return rc;
	if (p->found == k)
		return 1;
	return p->found == 0 ? 0 : DB_EOTHER;
}

/* The reply to the COMMIT of a transaction that inserted ids was lost
 * (session: the id of the session that sent it): finds out whether it
 * committed.  DB_OK when it did (its rows are there and on disk), else
 * DB_ECONN (rolled back, or unknown: the retry sees what is there). */
static int
inbox_resolve(db_conn *db, unsigned long session, long long started,
    struct item *const *items, size_t n, struct db_val *vals)
{
	struct inbox_probe p = { items, n, vals, 0 };
	enum durable_outcome o;

	o = durable_resolve(db, session, started, inbox_probe, &p, "worker",
	    INBOX_RESOLVE_MS);
	log_info("the reply to a COMMIT was lost; the transaction %s",
	    o == DURABLE_COMMITTED ? "committed" : o == DURABLE_ROLLED_BACK ?
	    "did not commit: trying again" : "is of unknown outcome: trying "
	    "again (ids found processed then are duplicates)");
	return o == DURABLE_COMMITTED ? DB_OK : DB_ECONN;
}

int
inbox_apply(db_conn *db, struct item *const *items, size_t n)
{
	struct item **sorted;
	struct db_val *vals;
	struct handled *hs;
	unsigned long session;
	long long started;
	int rc, careful = 0, wrote = 0;

	if (n == 0)
		return DB_OK;
	vals = calloc(n * 2, sizeof(*vals));
	hs = calloc(n, sizeof(*hs));
	sorted = calloc(n, sizeof(*sorted));
	if (vals == NULL || hs == NULL || sorted == NULL) {
		rc = DB_EOTHER;
		goto out;
	}
	for (;;) {
		if ((rc = db_begin(db)) != DB_OK)
			goto out;
		rc = store_body(db, items, n, careful, vals, hs, sorted,
		    &wrote);
		if (rc == DB_OK) {
			/* A failed commit has rolled back, or lost the
			 * connection: then maybe committed, found out. */
			session = db_session_id(db);
			started = db_server_started(db);
			rc = db_commit(db);
			if (rc == DB_ECONN && wrote)
				rc = inbox_resolve(db, session, started, items,
				    n, vals);
			/* Only ids seen before: what said so must be on
			 * disk before the acks. */
			if (rc == DB_OK && !wrote)
				rc = durable_barrier(db, "worker");
			break;
		}
		db_rollback(db);
		/* Some id was processed before: again, looking first. */
		if (rc == DB_EDUP && !careful) {
			careful = 1;
			continue;
		}
		break;
	}
out:
	free(vals);
	free(hs);
	free(sorted);
	return rc;
}

int
inbox_refused_by_data(const db_conn *db)
{
	/* MariaDB/MySQL error codes (mysqld_error.h; only db.c includes the
	 * client headers). */
	switch (db_errno(db)) {
	case 1048: /* ER_BAD_NULL_ERROR */
	case 1062: /* ER_DUP_ENTRY (of a handler's effect) */
	case 1264: /* ER_WARN_DATA_OUT_OF_RANGE */
	case 1265: /* WARN_DATA_TRUNCATED */
	case 1292: /* ER_TRUNCATED_WRONG_VALUE */
	case 1300: /* ER_INVALID_CHARACTER_STRING */
	case 1366: /* ER_TRUNCATED_WRONG_VALUE_FOR_FIELD */
	case 1406: /* ER_DATA_TOO_LONG */
	case 1451: /* ER_ROW_IS_REFERENCED_2 */
	case 1452: /* ER_NO_REFERENCED_ROW_2 */
	case 1586: /* ER_DUP_ENTRY_WITH_KEY_NAME */
	case 1644: /* ER_SIGNAL_EXCEPTION (a trigger refused the row) */
	case 1977: /* ER_CANNOT_CONVERT_CHARACTER */
	case 4025: /* ER_CONSTRAINT_FAILED (CHECK) */
		return 1;
	}
	return 0;
}
