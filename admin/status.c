/*
 * status.c - outbox-admin status: how the outbox and the queues stand,
 * read with the admin's login (SELECT on outbox, processed_messages and
 * outbox_relay_position; passive declares of the queues).
 *
 * Unpublished: published_at IS NULL, and, once the binlog relay stored a
 * position (the row of outbox_relay_position, migration 013: how the
 * admin knows the mode), a seq above its last_seq or a parked row (the
 * binlog relay leaves published_at NULL; README, "What published means
 * in binlog mode").  Without a position every figure is the poll mode's.
 *
 * Every count of unpublished rows goes through ix_outbox_due (migrations
 * 010 and 014: published_at first, descending) or, in binlog mode where
 * published_at is NULL on every row, through the primary key above the
 * position, and the parked rows through ix_outbox_due's next_attempt_at
 * (9999-12-31 on every parked row: relay/publish.c); the last times
 * through the indexes on published_at and processed_at: status never
 * scans the history (tests/it_admin.c, status_reads_no_history).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "log.h"

/* One figure: a label, its JSON key, the query (one row, one column);
 * in binlog mode binlog_sql when not NULL, its first nlast placeholders
 * the position's last_seq (0 while it is NULL). */
struct status_fig {
	const char *label;
	const char *key;
	const char *sql;
	int is_time; /* a DATETIME text (UTC), else an integer */
	const char *binlog_sql;
	int nlast;
};

static const struct status_fig status_figs[] = {
	{ "backlog (unpublished, not parked)", "backlog",
	    "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND "
	    "parked_at IS NULL", 0,
	    "SELECT COUNT(*) FROM outbox WHERE seq > ? AND published_at IS "
	    "NULL AND parked_at IS NULL", 1 },
	/* As the relay's outbox_relay_oldest_unpublished_seconds (and, in
	 * binlog mode, in the same way: relay/backlog.c): parked rows
	 * count, they are stuck too. */
	{ "oldest unpublished row, age (ms)", "oldest_unpublished_age_ms",
	    "SELECT COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), "
	    "UTC_TIMESTAMP(6)) DIV 1000, 0) FROM outbox WHERE published_at "
	    "IS NULL", 0,
	    "SELECT COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), "
	    "UTC_TIMESTAMP(6)) DIV 1000, 0) FROM ("
	    "SELECT created_at FROM outbox WHERE seq > ? AND published_at IS "
	    "NULL UNION ALL "
	    "SELECT created_at FROM outbox WHERE seq <= ? AND published_at IS "
	    "NULL AND next_attempt_at >= '9999-12-31' AND parked_at IS NOT "
	    "NULL) u", 2 },
	{ "waiting for a retry (refused before)", "retry_waiting",
	    "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND "
	    "parked_at IS NULL AND attempts > 0", 0,
	    "SELECT COUNT(*) FROM outbox WHERE seq > ? AND published_at IS "
	    "NULL AND parked_at IS NULL AND attempts > 0", 1 },
	{ "parked (the relay gave up)", "parked",
	    "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND "
	    "parked_at IS NOT NULL", 0,
	    "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND "
	    "next_attempt_at >= '9999-12-31' AND parked_at IS NOT NULL", 0 },
	/* A poll relay's marks only: the binlog relay's time is its
	 * position's (below).  The first entry of ix_outbox_due, which
	 * sorts published_at descending (migration 014): MAX() would read
	 * the whole index. */
	{ "last published (UTC)", "last_published_at",
	    "SELECT (SELECT published_at FROM outbox WHERE published_at IS "
	    "NOT NULL ORDER BY published_at DESC LIMIT 1)", 1, NULL, 0 },
	{ "last handled (UTC)", "last_handled_at",
	    "SELECT MAX(processed_at) FROM processed_messages", 1, NULL, 0 },
};
#define NFIGS (sizeof(status_figs) / sizeof(status_figs[0]))

/* The binlog relay's position, when it stored one. */
struct status_position {
	int found;
	char last_seq[32]; /* "" when NULL: nothing published up to it */
	char updated_at[64];
};

static int
status_position_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct status_position *p = ud;

	if (ncols != 2 || cols[1].is_null)
		return -1;
	snprintf(p->last_seq, sizeof(p->last_seq), "%s",
	    cols[0].is_null ? "" : cols[0].s);
	snprintf(p->updated_at, sizeof(p->updated_at), "%s", cols[1].s);
	p->found = 1;
	return 0;
}

/* The first column of the one row, copied; "" when NULL. */
static int
status_cell(void *ud, const struct db_col *cols, size_t ncols)
{
	char *out = ud;

	if (ncols > 0 && !cols[0].is_null)
		snprintf(out, 64, "%s", cols[0].s);
	return 0;
}

/* Ready messages and consumers of queue into the JSON object; a queue
 * that does not exist (nobody declared it yet: 404) is reported as such
 * and the connection opened again.  0, or -1 (logged). */
static int
status_queue(const struct admin_config *cfg, mq_conn **m, const char *queue,
    json_t *queues, int json)
{
	uint32_t ready = 0, consumers = 0;
	json_t *q = json_object();

	if (mq_queue_depth(*m, queue, &ready, &consumers) == -1) {
		if (strstr(mq_error(*m), "404") == NULL) {
			log_warnx("queue %s: %s", queue, mq_error(*m));
			json_decref(q);
			return -1;
		}
		mq_free(*m);
		if ((*m = admin_mq(cfg, 0)) == NULL) {
			json_decref(q);
			return -1;
		}
		json_object_set_new(q, "exists", json_false());
		if (!json)
			printf("  queue %-32s does not exist (yet)\n", queue);
	} else {
		json_object_set_new(q, "exists", json_true());
		json_object_set_new(q, "ready", json_integer(ready));
		json_object_set_new(q, "consumers", json_integer(consumers));
		if (!json)
			printf("  queue %-32s %u ready, %u consumer%s\n", queue,
			    ready, consumers, consumers == 1 ? "" : "s");
	}
	json_object_set_new(queues, queue, q);
	return 0;
}

/* The binlog position into doc ("binlog_position": null without one)
 * and, as text, two lines when there is one. */
static void
status_position(const struct status_position *p, json_t *doc, int json)
{
	json_t *o;

	if (!p->found) {
		json_object_set_new(doc, "binlog_position", json_null());
		return;
	}
	o = json_object();
	json_object_set_new(o, "last_seq", p->last_seq[0] != '\0' ?
	    json_integer(strtoll(p->last_seq, NULL, 10)) : json_null());
	json_object_set_new(o, "updated_at", json_string(p->updated_at));
	json_object_set_new(doc, "binlog_position", o);
	if (json)
		return;
	printf("  %-38s %s\n", "binlog position, last seq",
	    p->last_seq[0] != '\0' ? p->last_seq : "none yet");
	printf("  %-38s %s\n", "binlog position stored (UTC)", p->updated_at);
}

int
admin_status(const struct admin_config *cfg, const struct admin_args *a)
{
	json_t *doc = json_object(), *queues = json_object();
	struct status_position pos = { 0, "", "" };
	struct db_val last[2];
	char v[64];
	db_conn *c;
	mq_conn *m = NULL;
	size_t i;
	int rc = ADMIN_NO_SERVER;

	if ((c = admin_db(cfg)) == NULL)
		goto out;
	if (db_query(c, "SELECT last_seq, updated_at FROM "
	    "outbox_relay_position WHERE id = 1", NULL, 0, status_position_row,
	    &pos, NULL) != DB_OK) {
		log_warnx("binlog position: %s", db_error(c));
		goto out;
	}
	last[0] = DB_INT(strtoll(pos.last_seq, NULL, 10));
	last[1] = last[0];
	if (!a->json)
		printf("outbox status\n");
	for (i = 0; i < NFIGS; i++) {
		const struct status_fig *f = &status_figs[i];
		int binlog = pos.found && f->binlog_sql != NULL;

		v[0] = '\0';
		if (db_query(c, binlog ? f->binlog_sql : f->sql, last,
		    binlog ? (size_t)f->nlast : 0, status_cell, v, NULL) !=
		    DB_OK) {
			fflush(stdout);
			log_warnx("%s: %s", f->key, db_error(c));
			goto out;
		}
		if (f->is_time)
			json_object_set_new(doc, f->key, v[0] != '\0' ?
			    json_string(v) : json_null());
		else
			json_object_set_new(doc, f->key,
			    json_integer(strtoll(v, NULL, 10)));
		if (!a->json)
			printf("  %-38s %s\n", f->label, v[0] != '\0' ? v :
			    "never");
	}
	status_position(&pos, doc, a->json);
	if ((m = admin_mq(cfg, 0)) == NULL ||
	    status_queue(cfg, &m, MQ_QUEUE, queues, a->json) == -1 ||
	    status_queue(cfg, &m, MQ_DLQ, queues, a->json) == -1)
		goto out;
	json_object_set_new(doc, "queues", queues);
	queues = NULL;
	if (a->json) {
		admin_print_json(doc);
		doc = NULL;
	}
	rc = ADMIN_OK;
out:
	json_decref(queues);
	json_decref(doc);
	mq_free(m);
	db_free(c);
	return rc;
}
