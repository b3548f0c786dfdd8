/*
 * parked.c - outbox-admin parked list / release: the outbox rows the
 * relay gave up on after RELAY_MAX_ATTEMPTS refusals (parked_at set,
 * next_attempt_at far in the future: no poll reaches them), and their
 * release for a new try: parked_at NULL, attempts 0, next_attempt_at the
 * release time (a retry due now: the poll relay's next poll takes it; in
 * binlog mode the relay reads the release from the binary log, and the
 * retention keeps the row until the stored position covers that time:
 * relay/retention.c), in one UPDATE.  The admin's
 * login may update those three columns of outbox and nothing else
 * (migration 012).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "buf.h"
#include "log.h"

/* The most rows parked list shows. */
#define PARKED_LIST_MAX 1000

/* Through ix_outbox_due: parked rows are unpublished ones, with
 * next_attempt_at 9999-12-31 (relay/publish.c, relay/binlog_loop.c;
 * migration 010).  In binlog
 * mode every row has published_at NULL: next_attempt_at keeps the read
 * to the parked ones. */
static const char SQL_PARKED[] =
    "SELECT seq, message_id, event_name, created_at, attempts, "
    "last_error, parked_at FROM outbox WHERE published_at IS NULL AND "
    "next_attempt_at >= '9999-12-31' AND parked_at IS NOT NULL "
    "ORDER BY seq LIMIT 1000";

/* The same range: in binlog mode "published_at IS NULL" alone is every
 * row, which the UPDATE would read and lock (the app's inserts into that
 * range would wait for it). */
static const char SQL_RELEASE_ALL[] =
    "UPDATE outbox SET parked_at = NULL, attempts = 0, next_attempt_at = "
    "UTC_TIMESTAMP(6) WHERE published_at IS NULL AND next_attempt_at >= "
    "'9999-12-31' "
    "AND parked_at IS NOT NULL";

struct parked_list {
	json_t *rows;
	int json;
};

static int
parked_row(void *ud, const struct db_col *c, size_t n)
{
	struct parked_list *l = ud;
	json_t *r;

	if (n < 7)
		return -1;
	if (l->json) {
		r = json_object();
		json_object_set_new(r, "seq",
		    json_integer(strtoll(c[0].s, NULL, 10)));
		json_object_set_new(r, "message_id", json_string(c[1].s));
		json_object_set_new(r, "event", json_string(c[2].s));
		json_object_set_new(r, "created_at", json_string(c[3].s));
		json_object_set_new(r, "attempts",
		    json_integer(strtoll(c[4].s, NULL, 10)));
		json_object_set_new(r, "last_error", c[5].is_null ?
		    json_null() : json_string(c[5].s));
		json_object_set_new(r, "parked_at", json_string(c[6].s));
		json_array_append_new(l->rows, r);
	} else {
		printf("%-10s %-36s %-16s %s  attempts %s, parked %s\n"
		    "           last error: %s\n", c[0].s, c[1].s, c[2].s,
		    c[3].s, c[4].s, c[6].s, c[5].is_null ? "-" : c[5].s);
	}
	return 0;
}

static int
parked_list(db_conn *c, const struct admin_args *a)
{
	struct parked_list l = { json_array(), a->json };
	json_t *doc;
	size_t n = 0;

	if (db_query(c, SQL_PARKED, NULL, 0, parked_row, &l, &n) != DB_OK) {
		fflush(stdout);
		log_warnx("parked list: %s", db_error(c));
		json_decref(l.rows);
		return ADMIN_NO_SERVER;
	}
	if (a->json) {
		doc = json_object();
		json_object_set_new(doc, "count", json_integer((json_int_t)n));
		json_object_set_new(doc, "truncated",
		    json_boolean(n == PARKED_LIST_MAX));
		json_object_set_new(doc, "rows", l.rows);
		admin_print_json(doc);
	} else {
		json_decref(l.rows);
		printf("%zu parked row%s%s\n", n, n == 1 ? "" : "s",
		    n == PARKED_LIST_MAX ? " (the first 1000)" : "");
	}
	return ADMIN_OK;
}

/* The parked ones among the given seqs, marked in found[]. */
struct parked_found {
	const struct admin_args *a;
	unsigned char *found;
};

static int
parked_found_row(void *ud, const struct db_col *c, size_t n)
{
	struct parked_found *f = ud;
	int64_t seq;
	size_t i;

	if (n < 1)
		return -1;
	seq = strtoll(c[0].s, NULL, 10);
	for (i = 0; i < f->a->n; i++)
		if (f->a->seqs[i] == seq)
			f->found[i] = 1;
	return 0;
}

/* head "?, ?, ...)" for n values into b (not NUL-terminated).  0 or
 * -1. */
static int
parked_in_list(struct buf *b, const char *head, size_t n)
{
	size_t i;

	if (buf_append(b, head, strlen(head)) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (buf_append(b, i == 0 ? "?" : ", ?", i == 0 ? 1 : 3) == -1)
			return -1;
	return buf_append(b, ")", 1);
}

/* Releases the given seqs that are parked, in one transaction: those
 * rows locked (FOR UPDATE: another release waits), then one UPDATE.
 * Seqs not parked (unknown, published, or never parked) are reported
 * and counted in *nmissing.  0, or -1 (logged). */
static int
parked_release_some(db_conn *c, const struct admin_args *a, json_t *doc,
    uint64_t *released, size_t *nmissing)
{
	struct buf sel, upd;
	struct db_val *args = calloc(a->n, sizeof(*args));
	unsigned char *found = calloc(a->n, 1);
	struct parked_found f = { a, found };
	json_t *missing = json_array();
	size_t i;
	int rc = -1;

	buf_init(&sel, 16 * ARGS_MAX_IDS);
	buf_init(&upd, 16 * ARGS_MAX_IDS);
	if (args == NULL || found == NULL ||
	    parked_in_list(&sel, "SELECT seq FROM outbox WHERE published_at "
	    "IS NULL AND parked_at IS NOT NULL AND seq IN (", a->n) == -1 ||
	    buf_append(&sel, " FOR UPDATE", 12) == -1 ||
	    parked_in_list(&upd, "UPDATE outbox SET parked_at = NULL, "
	    "attempts = 0, next_attempt_at = UTC_TIMESTAMP(6) WHERE "
	    "published_at IS NULL AND parked_at IS NOT NULL AND seq IN (",
	    a->n) == -1 ||
	    buf_append(&upd, "", 1) == -1) {
		log_warnx("parked release: out of memory");
		goto out;
	}
	for (i = 0; i < a->n; i++)
		args[i] = DB_INT(a->seqs[i]);
	if (db_begin(c) != DB_OK ||
	    db_query(c, sel.data, args, a->n, parked_found_row, &f, NULL) !=
	    DB_OK ||
	    db_exec(c, upd.data, args, a->n, released) != DB_OK ||
	    db_commit(c) != DB_OK) {
		log_warnx("parked release: %s", db_error(c));
		db_rollback(c);
		goto out;
	}
	for (i = 0; i < a->n; i++) {
		if (found[i])
			continue;
		(*nmissing)++;
		json_array_append_new(missing, json_integer(a->seqs[i]));
		if (!a->json)
			printf("seq %" PRId64 ": not parked (unknown, published "
			    "or never parked): left as it is\n", a->seqs[i]);
	}
	rc = 0;
out:
	json_object_set_new(doc, "not_parked", missing);
	buf_free(&sel);
	buf_free(&upd);
	free(args);
	free(found);
	return rc;
}

int
admin_parked(const struct admin_config *cfg, const struct admin_args *a)
{
	json_t *doc;
	uint64_t released = 0;
	size_t nmissing = 0;
	db_conn *c;
	int rc;

	if ((c = admin_db(cfg)) == NULL)
		return ADMIN_NO_SERVER;
	if (a->cmd == CMD_PARKED_LIST) {
		rc = parked_list(c, a);
		db_free(c);
		return rc;
	}
	doc = json_object();
	if (a->all) {
		rc = db_exec(c, SQL_RELEASE_ALL, NULL, 0, &released) == DB_OK ?
		    0 : -1;
		if (rc == -1)
			log_warnx("parked release: %s", db_error(c));
	} else {
		rc = parked_release_some(c, a, doc, &released, &nmissing);
	}
	db_free(c);
	if (rc == -1) {
		json_decref(doc);
		return ADMIN_NO_SERVER;
	}
	if (a->json) {
		json_object_set_new(doc, "released",
		    json_integer((json_int_t)released));
		admin_print_json(doc);
	} else {
		json_decref(doc);
		printf("released %" PRIu64 " row%s for a new try by the relay\n",
		    released, released == 1 ? "" : "s");
	}
	/* Nothing released, or not all that was asked: 1. */
	if (released == 0 || nmissing > 0)
		return ADMIN_REFUSED;
	return ADMIN_OK;
}
