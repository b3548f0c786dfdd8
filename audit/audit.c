/*
 * audit.c - outbox-audit: reconciles the database and the broker and
 * prints a report.  Exit status 0 when every check holds, 1 on any
 * violation, 2 when the database or the broker cannot be asked.
 *
 * The checks are the system's promises (README, "Audit"):
 *   - every customer has its outbox row (or, once that row was pruned by
 *     the relay's retention, its effect);
 *   - no outbox row stays unpublished longer than AUDIT_GRACE_S;
 *   - no outbox row is parked (the relay gave up on it after
 *     RELAY_MAX_ATTEMPTS refusals: an operator fixes and releases it);
 *   - every customer older than the grace has exactly one welcome email;
 *   - no effect without a customer, and none without its processed id
 *     (while the worker's inbox retention keeps it);
 *   - every processed id has its outbox row (within retention);
 *   - the inbox retention (WORKER_PROCESSED_RETENTION_HOURS, read from
 *     the worker's own variable) is not shorter than the outbox's plus
 *     1 h: a message the relay may still publish again must find its id;
 *   - the dead-letter queue is empty.
 * Rows younger than AUDIT_GRACE_S are in flight, not violations.
 *
 * Published: a row marked by a poll relay (published_at), or, once the
 * binlog relay has stored a position (the row of outbox_relay_position,
 * migration 013: that row is how the audit knows the mode), a row not
 * parked whose seq is at or below the position's last_seq.  Parked rows
 * are unpublished in both modes.  What that cannot prove: README, "What
 * published means in binlog mode".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "mq.h"
#include "timefmt.h"

struct audit_config {
	struct db_params db;
	struct mq_params mq;
	int grace_s;
	int retention_hours;
	int inbox_hours;
};

#define T struct audit_config
static const struct cfg_opt audit_opts[] = {
	DB_CFG_ROWS(T, db),
	MQ_CFG_ROWS(T, mq),
	CFG_ROW_INT("AUDIT_GRACE_S", T, grace_s, "60", 0, 86400,
	    "seconds a row may be in flight before it counts as a violation"),
	CFG_ROW_INT("AUDIT_RETENTION_HOURS", T, retention_hours, "24", 0,
	    87600, "the relay's RELAY_RETENTION_HOURS (0: rows never pruned)"),
	/* The worker's own variable: one env file configures both. */
	CFG_ROW_INT("WORKER_PROCESSED_RETENTION_HOURS", T, inbox_hours, "168",
	    0, 87600, "the worker's inbox retention (0: ids never pruned)"),
};
#undef T
#define NOPTS (sizeof(audit_opts) / sizeof(audit_opts[0]))

/* The cutoff timestamp a check takes (its last placeholder). */
enum audit_cut {
	CUT_NONE,
	CUT_GRACE,     /* now - AUDIT_GRACE_S */
	CUT_KEPT,      /* outbox rows surely kept: the retention - 1 h */
	CUT_INBOX_KEPT, /* processed ids surely kept: the inbox's - 1 h */
	CUT_INBOX_OLD, /* processed ids past the inbox retention */
	CUT_COUNT
};

/* A count query. */
struct audit_check {
	const char *what;
	const char *sql;
	enum audit_cut args;
	int is_fact;  /* informational: never a violation */
	/* The query once the binlog relay stored a position (NULL: the
	 * same), its first placeholder the position's last_seq. */
	const char *binlog_sql;
};

/* Binlog mode's unpublished rows: published_at stays NULL on the rows
 * the binlog relay published, which are those at or below last_seq (the
 * placeholder; 0 while it is NULL), parked ones aside.  published_at
 * set: a poll relay published it (before a switch of mode). */
#define UNPUBLISHED_BINLOG "published_at IS NULL AND (parked_at IS NOT " \
	"NULL OR seq > ?)"

static const struct audit_check audit_checks[] = {
	{ "customers", "SELECT COUNT(*) FROM customers", CUT_NONE, 1, NULL },
	{ "outbox rows", "SELECT COUNT(*) FROM outbox", CUT_NONE, 1, NULL },
	{ "outbox rows unpublished", "SELECT COUNT(*) FROM outbox WHERE "
	    "published_at IS NULL", CUT_NONE, 1, "SELECT COUNT(*) FROM outbox "
	    "WHERE " UNPUBLISHED_BINLOG },
	{ "processed messages", "SELECT COUNT(*) FROM processed_messages",
	    CUT_NONE, 1, NULL },
	{ "welcome emails", "SELECT COUNT(*) FROM welcome_emails", CUT_NONE,
	    1, NULL },
	{ "customers without an outbox row (nor an effect)",
	    "SELECT COUNT(*) FROM customers c "
	    /* Cast to the key's character set and collation (migration
	     * 009: ascii_bin) and grouped, so that the derived table is
	     * built once, with its own index, instead of a JSON evaluation
	     * per (customer, row) pair; another collation leaves the index
	     * unused (a block nested loop over both). */
	    "LEFT JOIN (SELECT CAST(JSON_VALUE(payload, '$.id') AS CHAR(36) "
	    "CHARACTER SET ascii) COLLATE ascii_bin AS cid FROM outbox "
	    "WHERE event_name = 'CustomerCreated' GROUP BY cid) o "
	    "ON o.cid = c.id "
	    "LEFT JOIN welcome_emails w ON w.customer_id = c.id "
	    "WHERE o.cid IS NULL AND w.customer_id IS NULL", CUT_NONE, 0,
	    NULL },
	{ "outbox rows unpublished longer than the grace",
	    "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND "
	    "created_at < ?", CUT_GRACE, 0, "SELECT COUNT(*) FROM outbox "
	    "WHERE " UNPUBLISHED_BINLOG " AND created_at < ?" },
	{ "outbox rows parked (RELAY_MAX_ATTEMPTS refusals)",
	    "SELECT COUNT(*) FROM outbox WHERE parked_at IS NOT NULL",
	    CUT_NONE, 0, NULL },
	{ "customers without their welcome email",
	    "SELECT COUNT(*) FROM customers c LEFT JOIN welcome_emails w ON "
	    "w.customer_id = c.id WHERE w.customer_id IS NULL AND "
	    "c.created_at < ?", CUT_GRACE, 0, NULL },
	{ "welcome emails without a customer",
	    "SELECT COUNT(*) FROM welcome_emails w LEFT JOIN customers c ON "
	    "c.id = w.customer_id WHERE c.id IS NULL", CUT_NONE, 0, NULL },
	/* The effect and the id are written in one transaction: an email
	 * younger than the inbox retention (minus the worker's margin of
	 * 1 h) must still have its id; an older one may have lost it. */
	{ "welcome emails without their processed id",
	    "SELECT COUNT(*) FROM welcome_emails w LEFT JOIN "
	    "processed_messages p ON p.message_id = w.message_id "
	    "WHERE p.message_id IS NULL AND w.created_at >= ?",
	    CUT_INBOX_KEPT, 0, NULL },
	{ "welcome emails not from their customer's event",
	    "SELECT COUNT(*) FROM welcome_emails w JOIN outbox o ON "
	    "o.message_id = w.message_id WHERE JSON_VALUE(o.payload, '$.id') "
	    "<> w.customer_id", CUT_NONE, 0, NULL },
	{ "processed ids without an outbox row",
	    "SELECT COUNT(*) FROM processed_messages p LEFT JOIN outbox o ON "
	    "o.message_id = p.message_id WHERE o.seq IS NULL AND "
	    "p.processed_at >= ?", CUT_KEPT, 0, NULL },
	{ "processed ids older than the inbox retention (not pruned yet)",
	    "SELECT COUNT(*) FROM processed_messages WHERE processed_at < ?",
	    CUT_INBOX_OLD, 1, NULL },
};
#define NCHECKS (sizeof(audit_checks) / sizeof(audit_checks[0]))

/* The binlog relay's position (migration 013), when it stored one. */
struct audit_position {
	int found;
	long long last_seq;  /* -1: NULL (nothing published yet) */
	char updated_at[TIMEFMT_LEN]; /* DATETIME(6) text */
};

static int
audit_position_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	struct audit_position *p = ud;
	char *end;

	if (ncols != 2 || cols[1].is_null)
		return -1;
	p->last_seq = -1;
	if (!cols[0].is_null) {
		p->last_seq = strtoll(cols[0].s, &end, 10);
		if (*end != '\0' || p->last_seq < 0)
			return -1;
	}
	snprintf(p->updated_at, sizeof(p->updated_at), "%s", cols[1].s);
	p->found = 1;
	return 0;
}

/* The position as a line of the report, or as a JSON value. */
static void
audit_position_print(const struct audit_position *p, int json)
{
	if (json && !p->found)
		printf("null");
	else if (json && p->last_seq < 0)
		printf("{\"last_seq\": null, \"updated_at\": \"%s\"}",
		    p->updated_at);
	else if (json)
		printf("{\"last_seq\": %lld, \"updated_at\": \"%s\"}",
		    p->last_seq, p->updated_at);
	else if (p->last_seq < 0)
		printf("binlog mode: position stored %s UTC, nothing "
		    "published up to it yet\n", p->updated_at);
	else
		printf("binlog mode: position at seq %lld, stored %s UTC "
		    "(published: at or below it and not parked, or marked "
		    "published_at)\n", p->last_seq, p->updated_at);
}

static int
audit_count_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	long long *v = ud;

	if (ncols > 0 && !cols[0].is_null)
		*v = strtoll(cols[0].s, NULL, 10);
	return 0;
}

/* now - back_s into out; back_s < 0: the epoch (nothing is older). */
static void
audit_cutoff(time_t back_s, char *out, size_t outlen)
{
	struct timespec ts;

	if (back_s < 0) {
		snprintf(out, outlen, "1970-01-01 00:00:00");
		return;
	}
	timefmt_now(&ts);
	ts.tv_sec -= back_s;
	timefmt_sql(&ts, out, outlen);
}

static void
audit_line(int json, int *first, const char *what, long long v,
    const char *state)
{
	if (json) {
		printf("%s\n    {\"check\": \"%s\", \"count\": %lld, "
		    "\"state\": \"%s\"}", *first ? "" : ",", what, v, state);
		*first = 0;
	} else {
		printf("  %-5s %-52s %lld\n", state, what, v);
	}
}

int
main(int argc, char **argv)
{
	char err[256], cut[CUT_COUNT][TIMEFMT_LEN];
	struct audit_config cfg;
	struct audit_position pos = { 0, -1, "" };
	uint32_t ready = 0, consumers = 0;
	struct db_val args[2];
	size_t nargs;
	size_t i;
	long long v;
	int json = 0, violations = 0, first = 1;
	db_conn *c;
	mq_conn *m;

	log_init("audit", LOG_LVL_WARN);
	if (daemon_help(argc, argv, "usage: outbox-audit [--json]", audit_opts,
	    NOPTS))
		return 0;
	json = argc > 1 && strcmp(argv[1], "--json") == 0;
	memset(&cfg, 0, sizeof(cfg));
	memset(cut, 0, sizeof(cut));
	if (cfg_load(audit_opts, NOPTS, &cfg, err, sizeof(err)) == -1 ||
	    mq_params_check(&cfg.mq, err, sizeof(err)) == -1)
		fatalx("config: %s", err);
	audit_cutoff(cfg.grace_s, cut[CUT_GRACE], TIMEFMT_LEN);
	/* An hour of margin: a row processed just before its outbox row
	 * was pruned is not a violation. */
	audit_cutoff(cfg.retention_hours > 0 ? (time_t)cfg.retention_hours *
	    3600 - 3600 : -1, cut[CUT_KEPT], TIMEFMT_LEN);
	/* The worker's margin (worker/inbox_retention.h): it applies no
	 * message older than its retention minus 1 h. */
	audit_cutoff(cfg.inbox_hours > 0 ? (time_t)cfg.inbox_hours * 3600 -
	    3600 : -1, cut[CUT_INBOX_KEPT], TIMEFMT_LEN);
	/* Retention 0: nothing is past it (the epoch). */
	audit_cutoff(cfg.inbox_hours > 0 ? (time_t)cfg.inbox_hours * 3600 :
	    -1, cut[CUT_INBOX_OLD], TIMEFMT_LEN);

	db_global_init();
	if ((c = db_new(&cfg.db)) == NULL || db_connect(c) != DB_OK) {
		log_warnx("audit: database %s:%d: %s", cfg.db.host, cfg.db.port,
		    c ? db_error(c) : "out of memory");
		db_free(c);
		return 2;
	}
	if (db_query(c, "SELECT last_seq, updated_at FROM "
	    "outbox_relay_position WHERE id = 1", NULL, 0, audit_position_cb,
	    &pos, NULL) != DB_OK) {
		log_warnx("audit: binlog position: %s", db_error(c));
		db_free(c);
		return 2;
	}
	printf(json ? "{\n  \"checks\": [" : "outbox audit (grace %d s, "
	    "retention %d h, inbox retention %d h)\n", cfg.grace_s,
	    cfg.retention_hours, cfg.inbox_hours);
	if (!json && pos.found)
		audit_position_print(&pos, 0);
	for (i = 0; i < NCHECKS; i++) {
		const struct audit_check *k = &audit_checks[i];
		const char *sql = k->sql;

		v = -1;
		nargs = 0;
		if (pos.found && k->binlog_sql != NULL) {
			sql = k->binlog_sql;
			args[nargs++] = DB_INT(pos.last_seq > 0 ?
			    pos.last_seq : 0);
		}
		if (k->args != CUT_NONE)
			args[nargs++] = DB_STR(cut[k->args]);
		if (db_query(c, sql, args, nargs, audit_count_cb, &v,
		    NULL) != DB_OK) {
			fflush(stdout);
			log_warnx("audit: %s: %s", k->what, db_error(c));
			db_free(c);
			return 2;
		}
		if (!k->is_fact && v != 0)
			violations++;
		audit_line(json, &first, k->what, v, k->is_fact ? "info" :
		    v == 0 ? "ok" : "FAIL");
	}
	db_free(c);
	db_global_end();
	/* A message the relay may publish again (its row kept) must find
	 * its processed id: the inbox keeps ids at least as long, plus the
	 * worker's margin. */
	v = cfg.inbox_hours > 0 && cfg.inbox_hours < cfg.retention_hours + 1;
	violations += (int)v;
	audit_line(json, &first, "inbox retention shorter than the outbox "
	    "retention + 1 h", v, v ? "FAIL" : "ok");

	fflush(stdout);
	if ((m = mq_new(&cfg.mq)) == NULL || mq_connect(m, 0) == -1) {
		log_warnx("audit: broker: %s",
		    m ? mq_error(m) : "out of memory");
		mq_free(m);
		return 2;
	}
	/* A queue nobody declared yet holds nothing: the passive declare
	 * fails and closes the connection, which is reopened. */
	if (mq_queue_depth(m, MQ_DLQ, &ready, &consumers) == -1) {
		ready = 0;
		if (mq_connect(m, 0) == -1) {
			log_warnx("audit: broker: %s", mq_error(m));
			mq_free(m);
			return 2;
		}
	}
	if (ready != 0)
		violations++;
	audit_line(json, &first, "messages in the dead-letter queue " MQ_DLQ,
	    (long long)ready, ready == 0 ? "ok" : "FAIL");
	if (mq_queue_depth(m, MQ_QUEUE, &ready, &consumers) == 0)
		audit_line(json, &first, "messages ready in queue " MQ_QUEUE,
		    (long long)ready, "info");
	mq_free(m);
	if (json) {
		printf("\n  ],\n  \"binlog_position\": ");
		audit_position_print(&pos, 1);
		printf(",\n  \"violations\": %d\n}\n", violations);
	}
	else
		printf("result: %s (%d violation%s)\n", violations ? "FAIL" :
		    "OK", violations, violations == 1 ? "" : "s");
	return violations ? 1 : 0;
}
