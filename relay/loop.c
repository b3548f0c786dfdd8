/*
 * loop.c - the relay's main loop.
 *
 * A batch: BEGIN; lock up to RELAY_BATCH_SIZE due rows (FOR UPDATE SKIP
 * LOCKED, so that relays running side by side never take the same row);
 * wait for a durability barrier (common/durable.h: the rows just read
 * may belong to a transaction that is visible but not yet on disk, and
 * would vanish in a crash of the database after their event was out);
 * publish them all pipelined; wait for the confirms; mark the acked rows
 * published and reschedule the refused ones; COMMIT.  The row locks are
 * held while the messages are in flight: that is what makes several
 * relays safe.  No row is published before it is durable, and none is
 * marked before its confirm.
 *
 * Up to RELAY_INFLIGHT_BATCHES batches overlap, each on a database
 * connection of its own, all on one broker channel: while the broker
 * works on the batches in flight, the next one is read (SKIP LOCKED
 * passes over the rows the others hold, so it takes the rows after
 * theirs) and published behind them; then the oldest batch's confirms
 * are collected and it is committed, and so on.  The broker is not left
 * waiting for the database, and messages still go out in sequence order.
 * A full batch is followed at once by the next; an empty outbox is looked
 * at every RELAY_POLL_MS, servicing the broker connection (heartbeats) in
 * between.
 *
 * A lost database or broker: what is confirmed is committed, the rest
 * rolled back or left unmarked; the loss is logged once; reconnection
 * with capped exponential backoff and jitter.  On stop, the batches in
 * flight are finished (or rolled back) before returning.
 */
#include "loop.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backlog.h"
#include "backoff.h"
#include "outbatch.h"
#include "clock.h"
#include "db.h"
#include "durable.h"
#include "health.h"
#include "log.h"
#include "mq.h"
#include "poll.h"
#include "publish.h"
#include "relay_metrics.h"
#include "retention.h"

/* First delay before reconnecting; doubles up to RELAY_RECONNECT_MAX_MS. */
#define RELAY_RECONNECT_BASE_MS 100
/* Longest sleep without servicing the broker connection. */
#define RELAY_SERVICE_MS 1000

/* Health of one server: down since the first failure, until a success. */
struct link {
	const char *name;
	enum server srv;
	int down;
	unsigned failures;
	struct backoff bo;
};

/* A database connection and the batch whose rows it holds locked. */
struct slot {
	db_conn *db;
	struct outbatch b;
	double sent;      /* monotonic time of its first publish */
};

struct relay {
	const struct relay_config *cfg;
	volatile sig_atomic_t *stop;
	struct slot slot[RELAY_INFLIGHT_MAX];
	int nslots;    /* RELAY_INFLIGHT_BATCHES */
	int head;      /* oldest batch in flight */
	int count;     /* batches in flight: slot[head .. head + count) */
	db_conn *barrier; /* autocommit: the durability barrier */
	int checked;      /* the server's durability settings were logged */
	mq_conn *mq;
	struct publisher *pub;
	struct retention ret;
	struct backlog backlog;
	struct link dbl, mql;
	int redeclare; /* messages came back unroutable: declare again */
};

/* What went wrong while finishing a batch. */
#define FAIL_DB 1
#define FAIL_MQ 2

static void
link_init(struct link *l, const char *name, enum server srv,
    unsigned cap_ms)
{
	memset(l, 0, sizeof(*l));
	l->name = name;
	l->srv = srv;
	backoff_init(&l->bo, RELAY_RECONNECT_BASE_MS, cap_ms);
}

/* Records a failure; returns how long to wait before the next try. */
static unsigned
link_failed(struct link *l, const char *why)
{
	unsigned ms = backoff_next(&l->bo);

	l->failures++;
	if (!l->down)
		log_warnx("%s unavailable (%s); retrying with backoff",
		    l->name, why);
	else
		log_debug("%s still unavailable (%s); next try in %u ms",
		    l->name, why, ms);
	l->down = 1;
	health_set(l->srv, 0);
	return ms;
}

static void
link_ok(struct link *l)
{
	if (l->down) {
		log_info("%s reachable again after %u failed attempts",
		    l->name, l->failures);
		health_reconnected(l->srv);
	}
	health_set(l->srv, 1);
	l->down = 0;
	l->failures = 0;
	backoff_reset(&l->bo);
}

/* Sleeps ms (less on stop), keeping the broker connection serviced.
 * Only while no batch is in flight. */
static void
relay_pause(struct relay *r, unsigned ms)
{
	unsigned step;

	while (ms > 0 && !*r->stop) {
		/* A loss seen here is logged now; the reconnection comes
		 * at the next turn of the loop. */
		if (mq_is_connected(r->mq) && mq_service(r->mq) == -1)
			(void)link_failed(&r->mql, mq_error(r->mq));
		step = ms < RELAY_SERVICE_MS ? ms : RELAY_SERVICE_MS;
		backoff_sleep(step, r->stop);
		ms -= step;
	}
}

/* Only while no batch is in flight (no transaction open). */
static void
relay_db_failed(struct relay *r, db_conn *db)
{
	char why[600];
	int i;

	snprintf(why, sizeof(why), "%s", db_error(db));
	/* The other connections most likely went with it: all start
	 * afresh, so that the loss is seen (and logged) once. */
	for (i = 0; i < r->nslots; i++)
		db_disconnect(r->slot[i].db);
	db_disconnect(r->barrier);
	relay_pause(r, link_failed(&r->dbl, why));
}

static void
relay_mq_failed(struct relay *r)
{
	char why[600];

	snprintf(why, sizeof(why), "%s", mq_error(r->mq));
	relay_pause(r, link_failed(&r->mql, why));
}

/* Connects to the broker and declares the topology, if needed.  Only
 * while no batch is in flight (a declaration is an RPC on the channel
 * the confirms arrive on). */
static int
relay_mq_ready(struct relay *r)
{
	if (mq_is_connected(r->mq) && !r->redeclare)
		return 0;
	if (!mq_is_connected(r->mq) && mq_connect(r->mq, 1) == -1)
		return -1;
	if (mq_declare_topology(r->mq) == -1)
		return -1;
	r->redeclare = 0;
	return 0;
}

/* One step of retention on a connection outside any transaction. */
static void
relay_retention(struct relay *r, db_conn *db)
{
	int rc;

	if (!retention_due(&r->ret, clock_ms()) || poll_connect(db) != DB_OK)
		return;
	rc = retention_step(&r->ret, db, clock_ms());
	if (rc != DB_OK)
		log_warnx("retention: %s; trying again later", db_error(db));
}

/* A sample of the backlog for the gauges, every few seconds, on a
 * connection outside any transaction.  A failure is left to the next
 * batch to notice and report. */
static void
relay_backlog(struct relay *r, db_conn *db)
{
	if (!backlog_due(&r->backlog, clock_ms()) ||
	    poll_connect(db) != DB_OK)
		return;
	if (backlog_step(&r->backlog, db, clock_ms()) != DB_OK)
		log_debug("backlog sample: %s", db_error(db));
}

/* Once, on the first connection: says whether the server keeps what it
 * commits (the barrier relies on it). */
static void
relay_check_durability(struct relay *r, db_conn *db)
{
	char desc[256];
	int rc;

	rc = durable_check_server(db, desc, sizeof(desc));
	if (rc < 0)
		return; /* asked again at the next batch */
	r->checked = 1;
	if (rc == 1)
		log_info("database durability: %s", desc);
	else
		log_warnx("database durability: %s", desc);
}

/* Reads the next batch into s, waits until its rows are durable, and
 * sends it.  Returns the rows taken (0: none due, nothing in flight), or
 * -1 on a database error (nothing in flight; *failed is the connection
 * that failed).  *mq_failed is set when the send failed: s must still be
 * finished (its messages stay unconfirmed). */
static int
relay_fetch(struct relay *r, struct slot *s, int *mq_failed,
    db_conn **failed)
{
	struct outbatch *b = &s->b;
	double t0;

	*failed = s->db;
	if (poll_batch(s->db, r->cfg->batch_size, b) != DB_OK)
		return -1;
	link_ok(&r->dbl);
	if (!r->checked)
		relay_check_durability(r, s->db);
	if (b->n == 0 && b->nbad == 0) {
		db_rollback(s->db);
		return 0;
	}
	if (b->n > 0) {
		t0 = clock_s();
		if (durable_barrier(r->barrier, "relay") != DB_OK) {
			*failed = r->barrier;
			db_rollback(s->db);
			outbatch_reset(b);
			return -1;
		}
		relay_metrics_barrier(clock_s() - t0);
	}
	s->sent = clock_s();
	if (publish_start(r->pub, r->mq, b) == -1)
		*mq_failed = 1;
	return (int)(b->n + b->nbad);
}

/* Collects the confirms of s's batch, records the outcome and commits.
 * Returns 0 or FAIL_DB | FAIL_MQ. */
static int
relay_finish(struct relay *r, struct slot *s)
{
	struct outbatch *b = &s->b;
	struct outbatch_tally t;
	double confirmed, took;
	size_t i;
	int fail = 0;

	if (publish_wait(r->pub, r->mq, b) == -1)
		fail |= FAIL_MQ;
	took = clock_s() - s->sent;
	confirmed = clock_wall_s();
	/* Acked messages are recorded even when the connection then broke:
	 * fewer duplicates after the reconnect. */
	if (publish_record(r->pub, s->db, b) != DB_OK) {
		log_warnx("cannot record a published batch (%s); rolled back, "
		    "its messages will be published again", db_error(s->db));
		db_rollback(s->db);
		fail |= FAIL_DB;
	} else if (db_commit(s->db) != DB_OK) {
		log_warnx("commit of a published batch failed (%s); its "
		    "messages may be published again", db_error(s->db));
		fail |= FAIL_DB;
	} else {
		publish_log(r->pub, b);
	}
	outbatch_tally(b, &t);
	if (!(fail & FAIL_DB)) {
		relay_metrics_batch(t.acked, t.nacked, t.returned, t.pending,
		    t.nacked + t.returned + b->nbad, took);
		for (i = 0; i < b->n; i++) {
			if (b->msgs[i].result == MQ_ACKED &&
			    b->rows[i].created > 0)
				relay_metrics_lag(confirmed -
				    b->rows[i].created);
		}
	}
	if (t.returned > 0)
		r->redeclare = 1;
	outbatch_reset(b);
	return fail;
}

/* Finishes the oldest batch in flight. */
static int
relay_finish_oldest(struct relay *r)
{
	struct slot *s = &r->slot[r->head];

	r->head = (r->head + 1) % r->nslots;
	r->count--;
	return relay_finish(r, s);
}

/* Finishes every batch in flight, oldest first (after a failure, or to
 * stop). */
static int
relay_finish_all(struct relay *r)
{
	int fail = 0;

	while (r->count > 0)
		fail |= relay_finish_oldest(r);
	return fail;
}

static void
relay_loop(struct relay *r)
{
	struct slot *s;
	db_conn *failed;
	int n, more = 1, mq_failed, fail;

	for (;;) {
		if (r->count == 0) {
			if (*r->stop)
				break;
			if (relay_mq_ready(r) == -1) {
				relay_mq_failed(r);
				continue;
			}
			link_ok(&r->mql);
		} else if (*r->stop) {
			relay_finish_all(r);
			break;
		}
		/* Fill the pipeline while the outbox gives full batches (and
		 * nothing came back unroutable: the topology is declared
		 * again once the pipeline is empty). */
		if (r->count < r->nslots &&
		    ((more && !r->redeclare) || r->count == 0)) {
			s = &r->slot[(r->head + r->count) % r->nslots];
			relay_retention(r, s->db);
			relay_backlog(r, s->db);
			mq_failed = 0;
			n = relay_fetch(r, s, &mq_failed, &failed);
			if (n > 0)
				r->count++;
			more = n >= r->cfg->batch_size || (n > 0 && s->b.full);
			if (mq_failed) {
				relay_finish_all(r);
				relay_mq_failed(r);
				more = 1;
				continue;
			}
			if (n == -1) {
				if (relay_finish_all(r) & FAIL_MQ)
					relay_mq_failed(r);
				else
					relay_db_failed(r, failed);
				more = 1;
				continue;
			}
			if (n > 0 && more && r->count < r->nslots)
				continue;
		}
		if (r->count == 0) {
			/* Nothing due and nothing in flight. */
			relay_pause(r, (unsigned)r->cfg->poll_ms);
			more = 1;
			continue;
		}
		fail = relay_finish_oldest(r);
		if (fail & FAIL_MQ) {
			relay_finish_all(r);
			relay_mq_failed(r);
			more = 1;
		}
	}
}

int
relay_run(const struct relay_config *cfg, volatile sig_atomic_t *stop)
{
	struct relay r;
	int i, rc = -1;

	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.stop = stop;
	r.mq = mq_new(&cfg->mq);
	r.pub = publisher_new(cfg);
	r.barrier = db_new(&cfg->db);
	if (r.mq == NULL || r.pub == NULL || r.barrier == NULL)
		goto nomem;
	r.nslots = cfg->inflight_batches;
	for (i = 0; i < r.nslots; i++) {
		r.slot[i].db = db_new(&cfg->db);
		if (r.slot[i].db == NULL ||
		    outbatch_init(&r.slot[i].b, (size_t)cfg->batch_size) == -1)
			goto nomem;
	}
	link_init(&r.dbl, "database", SERVER_DB,
	    (unsigned)cfg->reconnect_max_ms);
	link_init(&r.mql, "broker", SERVER_MQ,
	    (unsigned)cfg->reconnect_max_ms);
	backlog_init(&r.backlog, clock_ms());
	retention_init(&r.ret, cfg->retention_hours,
	    cfg->retention_interval_s, clock_ms());
	relay_loop(&r);
	rc = 0;
	goto out;
nomem:
	log_warnx("out of memory");
out:
	for (i = 0; i < RELAY_INFLIGHT_MAX; i++) {
		outbatch_free(&r.slot[i].b);
		db_free(r.slot[i].db);
	}
	db_free(r.barrier);
	publisher_free(r.pub);
	mq_free(r.mq);
	return rc;
}
