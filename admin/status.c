/*
 * status.c - outbox-admin status: how the outbox and the queues stand,
 * read with the admin's login (SELECT on outbox and processed_messages;
 * passive declares of the queues).
 *
 * Every count of unpublished rows goes through ix_outbox_due (migration
 * 010: published_at first), the last times through the indexes on
 * published_at and processed_at: status never scans the history.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "log.h"

/* One figure: a label, its JSON key, the query (one row, one column). */
struct status_fig {
	const char *label;
	const char *key;
	const char *sql;
	int is_time; /* a DATETIME text (UTC), else an integer */
};

static const struct status_fig status_figs[] = {
	{ "backlog (unpublished, not parked)", "backlog",
	    "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND "
	    "parked_at IS NULL", 0 },
	/* As the relay's outbox_oldest_unpublished_age_seconds: parked
	 * rows count, they are stuck too. */
	{ "oldest unpublished row, age (ms)", "oldest_unpublished_age_ms",
	    "SELECT COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), "
	    "UTC_TIMESTAMP(6)) DIV 1000, 0) FROM outbox WHERE published_at "
	    "IS NULL", 0 },
	{ "waiting for a retry (refused before)", "retry_waiting",
	    "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND "
	    "parked_at IS NULL AND attempts > 0", 0 },
	{ "parked (the relay gave up)", "parked",
	    "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND "
	    "parked_at IS NOT NULL", 0 },
	{ "last published (UTC)", "last_published_at",
	    "SELECT MAX(published_at) FROM outbox", 1 },
	{ "last handled (UTC)", "last_handled_at",
	    "SELECT MAX(processed_at) FROM processed_messages", 1 },
};
#define NFIGS (sizeof(status_figs) / sizeof(status_figs[0]))

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

int
admin_status(const struct admin_config *cfg, const struct admin_args *a)
{
	json_t *doc = json_object(), *queues = json_object();
	char v[64];
	db_conn *c;
	mq_conn *m = NULL;
	size_t i;
	int rc = ADMIN_NO_SERVER;

	if ((c = admin_db(cfg)) == NULL)
		goto out;
	if (!a->json)
		printf("outbox status\n");
	for (i = 0; i < NFIGS; i++) {
		const struct status_fig *f = &status_figs[i];

		v[0] = '\0';
		if (db_query(c, f->sql, NULL, 0, status_cell, v, NULL) !=
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
