/*
 * publish.c - from a locked batch to confirmed messages and marked rows.
 */
#include "publish.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"
#include "relay_metrics.h"

static const char SQL_RESCHEDULE[] =
    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
    "next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND "
    "WHERE seq = ?";
/* Parked: no poll reaches next_attempt_at 9999 (migration 010) until an
 * operator releases the row. */
static const char SQL_PARK[] =
    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
    "next_attempt_at = '9999-12-31 23:59:59', "
    "parked_at = UTC_TIMESTAMP(6) WHERE seq = ?";

struct publisher {
	const struct relay_config *cfg;
	/* "UPDATE ... WHERE seq IN (?, ..., ?)" with batch_size
	 * placeholders: one prepared statement for every batch, padded by
	 * repeating a seq. */
	char *mark_sql;
	/* "SELECT seq ... WHERE published_at IS NOT NULL AND seq IN (...)"
	 * alike: which of them are marked (after a lost COMMIT). */
	char *marked_sql;
	struct db_val *mark_args;
	size_t mark_n;
	struct backoff retry; /* delays of refused messages */
	struct buf line;
};

/* head followed by n placeholders and ")", malloc'd; NULL without
 * memory.  The text depends on the configured size only, never on data. */
static char *
in_list_sql(const char *head, size_t n)
{
	struct buf sql;
	size_t i;
	int rc;

	buf_init(&sql, strlen(head) + 2 * n + 8);
	rc = buf_append(&sql, head, strlen(head));
	for (i = 0; i < n && rc == 0; i++)
		rc = buf_append(&sql, i == 0 ? "?" : ",?", i == 0 ? 1 : 2);
	if (rc == 0)
		rc = buf_append(&sql, ")", 1);
	if (rc != 0) {
		buf_free(&sql);
		return NULL;
	}
	return sql.data;
}

struct publisher *
publisher_new(const struct relay_config *cfg)
{
	struct publisher *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->cfg = cfg;
	p->mark_n = (size_t)cfg->batch_size;
	p->mark_sql = in_list_sql("UPDATE outbox SET published_at = "
	    "UTC_TIMESTAMP(6) WHERE seq IN (", p->mark_n);
	p->marked_sql = in_list_sql("SELECT seq FROM outbox WHERE "
	    "published_at IS NOT NULL AND seq IN (", p->mark_n);
	p->mark_args = calloc(p->mark_n, sizeof(*p->mark_args));
	if (p->mark_sql == NULL || p->marked_sql == NULL ||
	    p->mark_args == NULL) {
		publisher_free(p);
		return NULL;
	}
	backoff_init(&p->retry, (unsigned)cfg->retry_base_ms,
	    (unsigned)cfg->retry_max_ms);
	buf_init(&p->line, 64 * 1024);
	return p;
}

void
publisher_free(struct publisher *p)
{
	if (p == NULL)
		return;
	free(p->mark_sql);
	free(p->marked_sql);
	free(p->mark_args);
	buf_free(&p->line);
	free(p);
}

int
publish_start(struct publisher *p, mq_conn *mq, struct outbatch *b)
{
	return mq_publish_start(mq, "", p->cfg->routing_key, b->msgs, b->n);
}

int
publish_wait(struct publisher *p, mq_conn *mq, struct outbatch *b)
{
	/* 1: blocked, still in flight (the caller waits on). */
	return mq_publish_wait(mq, b->msgs, b->n, p->cfg->confirm_timeout_ms);
}

/* One refused row: attempts + 1, why, and when to try again; parked
 * when that was its last attempt and may_park.  A nack never parks: it is
 * the broker's state (a queue at its max-length with reject-publish, a
 * quorum queue between leaders or without its majority), not something
 * of the message's, and it lasts as long as that state; the row is tried
 * again with the capped backoff until the broker takes it. */
static int
publish_reschedule(struct publisher *p, db_conn *db, int64_t seq,
    unsigned attempts, const char *reason, int may_park)
{
	struct db_val a[3];
	unsigned delay_ms;
	int rc;

	if (may_park && attempts + 1 >= (unsigned)p->cfg->max_attempts) {
		a[0] = DB_STR(reason);
		a[1] = DB_INT(seq);
		if ((rc = db_exec(db, SQL_PARK, a, 2, NULL)) != DB_OK)
			return rc;
		log_warnx("outbox row %lld parked after %u attempts (last: "
		    "%s); it stays unpublished until released (README, "
		    "\"Parked rows\")", (long long)seq, attempts + 1, reason);
		relay_metrics_parked();
		return DB_OK;
	}

	p->retry.attempt = attempts < 64 ? attempts : 64;
	delay_ms = backoff_next(&p->retry);
	a[0] = DB_STR(reason);
	a[1] = DB_INT((long long)delay_ms * 1000);
	a[2] = DB_INT(seq);
	return db_exec(db, SQL_RESCHEDULE, a, 3, NULL);
}

/* mark_args[0..n) padded to the statement's mark_n placeholders by
 * repeating the first; n. */
static size_t
mark_args_pad(struct publisher *p, size_t n)
{
	size_t i;

	for (i = n; n > 0 && i < p->mark_n; i++)
		p->mark_args[i] = p->mark_args[0];
	return n;
}

/* The seqs of the rows b's transaction marks published, in mark_args
 * (padded); how many. */
static size_t
mark_args_fill(struct publisher *p, const struct outbatch *b)
{
	size_t i, n = 0;

	for (i = 0; i < b->n; i++) {
		if (b->msgs[i].result == MQ_ACKED)
			p->mark_args[n++] = DB_INT(b->rows[i].seq);
	}
	/* Confirmed in an earlier try: marked now, not published again. */
	for (i = 0; i < b->nsent; i++)
		p->mark_args[n++] = DB_INT(b->sent[i]);
	return mark_args_pad(p, n);
}

int
publish_mark(struct publisher *p, db_conn *db, const int64_t *seqs,
    size_t n)
{
	size_t i;

	if (n == 0 || n > p->mark_n)
		return DB_EOTHER;
	for (i = 0; i < n; i++)
		p->mark_args[i] = DB_INT(seqs[i]);
	mark_args_pad(p, n);
	return db_exec(db, p->mark_sql, p->mark_args, p->mark_n, NULL);
}

int
publish_recorded(struct publisher *p, db_conn *db, const struct outbatch *b)
{
	size_t n = mark_args_fill(p, b), seen = 0;
	int rc;

	if (n == 0)
		return DB_EOTHER;
	rc = db_query(db, p->marked_sql, p->mark_args, p->mark_n, NULL, NULL,
	    &seen);
	if (rc != DB_OK)
		return rc;
	if (seen == n)
		return 1;
	return seen == 0 ? 0 : DB_EOTHER;
}

int
publish_record(struct publisher *p, db_conn *db, const struct outbatch *b)
{
	uint64_t affected = 0;
	size_t i, n;
	int rc;

	n = mark_args_fill(p, b);
	if (n > 0) {
		rc = db_exec(db, p->mark_sql, p->mark_args, p->mark_n,
		    &affected);
		if (rc != DB_OK)
			return rc;
		if (affected != n)
			log_warnx("marked %llu rows published, expected %zu",
			    (unsigned long long)affected, n);
	}
	for (i = 0; i < b->n; i++) {
		if (b->msgs[i].result != MQ_NACKED &&
		    b->msgs[i].result != MQ_RETURNED &&
		    b->msgs[i].result != MQ_REFUSED)
			continue;
		rc = publish_reschedule(p, db, b->rows[i].seq,
		    b->rows[i].attempts, b->msgs[i].result == MQ_REFUSED &&
		    b->refused_why[0] != '\0' ? b->refused_why :
		    outbatch_result_reason(b->msgs[i].result),
		    b->msgs[i].result != MQ_NACKED);
		if (rc != DB_OK)
			return rc;
	}
	for (i = 0; i < b->nbad; i++) {
		rc = publish_reschedule(p, db, b->bad[i].seq,
		    b->bad[i].attempts, b->bad[i].reason, 1);
		if (rc != DB_OK)
			return rc;
	}
	return DB_OK;
}

void
publish_log(struct publisher *p, const struct outbatch *b)
{
	struct outbatch_tally t;
	size_t i;

	outbatch_tally(b, &t);
	if (t.acked > 0) {
		buf_reset(&p->line);
		if (outbatch_log_line(b, (size_t)p->cfg->log_ids, &p->line) == 0)
			log_info("%s", p->line.data);
	}
	if (t.nacked > 0 || t.returned > 0)
		log_warnx("%zu of %zu messages refused by the broker (%zu "
		    "nacked, %zu returned as unroutable by routing key "
		    "\"%s\"); they will be tried again", t.nacked + t.returned,
		    b->n, t.nacked, t.returned, p->cfg->routing_key);
	for (i = 0; i < b->nbad; i++)
		log_warnx("outbox row %lld cannot be published (%s); it will "
		    "be tried again", (long long)b->bad[i].seq,
		    b->bad[i].reason);
}

int
publish_refused(mq_conn *mq)
{
	return mq_take_refusal(mq) == 406 && mq_is_connected(mq);
}
