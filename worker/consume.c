/*
 * consume.c - the batching loop (consume.h).
 *
 * The main thread owns the broker: the consumer connection (manual acks,
 * prefetch WORKER_PREFETCH) and the dead-letter publisher (dlq.c).  The
 * database transactions run on WORKER_DB_POOL committer threads
 * (committer.c), one batch each: while they run theirs, the loop
 * collects and decodes the next batch.  Each turn:
 *
 *   collect  wait for a delivery; after the first, take more until the
 *            batch has WORKER_BATCH_MAX or WORKER_BATCH_WAIT_MS passed
 *            (what has already arrived is still taken, up to the max);
 *            the wait applies only while a batch is in flight: with
 *            none, the batch goes as soon as nothing more has arrived
 *            (a lone message is not held); meanwhile complete (below)
 *            the batches in flight whose committers are done, in
 *            order: an ack gives the broker room (prefetch) to send
 *            more;
 *   prepare  decode everything before any transaction (inbatch.c) and
 *            dead-letter what cannot be handled (those are acked alone);
 *   finish   if WORKER_DB_POOL batches are in flight, wait for the
 *            oldest (sending heartbeats while the database is down) and
 *            complete it;
 *   submit   hand the new batch to a free committer.
 *
 * Completing a batch: dead-letter what the database refused, log
 * "Handling [<event>] - Payload: '<payload>'" per new message (followed
 * by " traceparent=<value>" when the message carries a valid one) and
 * "Duplicate message ..." per repeat, then ONE multiple-ack.
 *
 * Acks go out in delivery order: a batch is acked only after every one
 * before it, so a multiple-ack never covers a delivery still in a
 * transaction; a batch that commits before the one ahead of it waits.
 * Two batches in flight may hold the same id (the relay published it
 * twice): the second transaction waits for the first one's row lock and
 * then finds the id processed.  The broker lost at any point: every
 * batch is dropped (the broker requeues what was not acked; a batch
 * committed but not acked comes back and is seen as duplicates), then
 * reconnect with backoff, redeclare, resume.
 */
#include "consume.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "inbatch.h"
#include "clock.h"
#include "committer.h"
#include "dlq.h"
#include "health.h"
#include "log.h"
#include "mq.h"
#include "trace.h"
#include "worker_metrics.h"

/* Longest wait for a first delivery while nothing else is pending: how
 * soon an idle worker sees a stop request. */
#define IDLE_WAIT_MS 100
/* While waiting for the committer, the consumer connection sends a
 * heartbeat this often, so that the broker keeps it (and the deliveries
 * it holds) however long the database is away. */
#define HOLD_HEARTBEAT_MS 500
/* A batch handed to a committer, until it is acked or dropped. */
struct flight {
	struct inbatch *b;
	struct committer *c; /* NULL once its verdict is in */
	enum commit_rc rc;   /* the verdict, once c is NULL */
};

struct worker {
	const struct worker_config *cfg;
	volatile sig_atomic_t *stop;
	mq_conn *mq;
	struct dlq *dlq;
	size_t pool;         /* WORKER_DB_POOL: committers */
	struct committer *committer[WORKER_DB_POOL_MAX]; /* database threads */
	struct inbatch bat[WORKER_DB_POOL_MAX + 1];
	struct inbatch *next;  /* being collected */
	struct flight fl[WORKER_DB_POOL_MAX]; /* in delivery order, from fl_head */
	size_t fl_head, fl_n;
	int done_fd;         /* eventfd: a committer has a verdict */
	struct backoff mq_bo;
	int mq_down;         /* a broker outage is being reported */
	unsigned long long n_handled, n_dup, n_dead;
};

enum outcome { OUT_OK, OUT_STOPPED, OUT_BROKER_LOST };

/* ---- broker ---- */

/* Connects, declares the topology, starts consuming.  0 or -1. */
static int
broker_up(struct worker *w)
{
	if (mq_connect(w->mq, 0) == 0 && mq_declare_topology(w->mq) == 0 &&
	    mq_consume(w->mq, MQ_QUEUE, w->cfg->prefetch) == 0) {
		if (w->mq_down) {
			log_info("broker reachable again: consuming %s",
			    MQ_QUEUE);
			health_reconnected(SERVER_MQ);
		} else
			log_info("consuming %s (prefetch %d, batches of up to "
			    "%d messages or %d ms)", MQ_QUEUE,
			    w->cfg->prefetch, w->cfg->batch_max,
			    w->cfg->batch_wait_ms);
		w->mq_down = 0;
		backoff_reset(&w->mq_bo);
		health_set(SERVER_MQ, 1);
		health_broker(mq_host_index(w->mq, NULL));
		return 0;
	}
	health_set(SERVER_MQ, 0);
	health_broker(-1);
	if (!w->mq_down)
		log_warnx("broker unavailable: %s; retrying with backoff",
		    mq_error(w->mq));
	else
		log_debug("broker still unavailable: %s", mq_error(w->mq));
	w->mq_down = 1;
	mq_disconnect(w->mq);
	return -1;
}

static struct flight *
fl_at(struct worker *w, size_t i)
{
	return &w->fl[(w->fl_head + i) % w->pool];
}

/* Asks every committer that holds a batch to stop retrying it. */
static void
cancel_flights(struct worker *w)
{
	size_t i;

	for (i = 0; i < w->fl_n; i++) {
		if (fl_at(w, i)->c != NULL)
			committer_cancel(fl_at(w, i)->c);
	}
}

/* Lets go of every batch in flight, each once its committer has (the
 * committers cancelled first, so that none goes on retrying): none is
 * acked, the broker delivers them again. */
static void
drop_flights(struct worker *w)
{
	struct flight *f;
	size_t i;

	cancel_flights(w);
	for (i = 0; i < w->fl_n; i++) {
		f = fl_at(w, i);
		while (f->c != NULL && !committer_wait(f->c, 1000, &f->rc))
			;
		f->c = NULL;
		inbatch_clear(f->b);
	}
	w->fl_head = 0;
	w->fl_n = 0;
}

/* Drops the connection and every batch (in flight or being collected):
 * what was not acked goes back to the queue. */
static void
broker_lost(struct worker *w)
{
	log_warnx("broker connection lost: %s; the messages not acked return "
	    "to the queue; reconnecting", mq_error(w->mq));
	drop_flights(w);
	inbatch_clear(w->next);
	w->mq_down = 1;
	health_set(SERVER_MQ, 0);
	health_broker(-1);
	mq_disconnect(w->mq);
}

/* ---- a batch ---- */

static int
has_unsettled_bad(const struct inbatch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (b->items[i].state == ITEM_BAD && !b->items[i].settled)
			return 1;
	}
	return 0;
}

/* The original's line, once per effect committed, then the trace
 * context when the message has one.  The payload's text is made for the
 * line only. */
static void
log_handling(struct item *it)
{
	const char *tp = it->d.traceparent;

	if (!log_on(LOG_LVL_INFO))
		return;
	if (msg_event_payload(&it->ev) == NULL)
		log_info("Handling [%s] - Payload: (out of memory)",
		    it->ev.event_name);
	else if (trace_valid(tp, strlen(tp)) == 0)
		log_info("Handling [%s] - Payload: '%s' traceparent=%s",
		    it->ev.event_name, it->ev.payload, tp);
	else
		log_info("Handling [%s] - Payload: '%s'",
		    it->ev.event_name, it->ev.payload);
}

static void
log_results(struct worker *w, struct inbatch *b)
{
	struct item *it;
	size_t i;

	for (i = 0; i < b->n; i++) {
		it = &b->items[i];
		if (it->state == ITEM_BAD) {
			w->n_dead++;
			continue;
		}
		if (it->dup_in_batch || it->seen_before) {
			log_info("Duplicate message %s [%s]: %s, acked without "
			    "effect", it->ev.id, it->ev.event_name,
			    it->dup_in_batch ? "repeated in the batch" :
			    "already processed");
			w->n_dup++;
			worker_metrics_duplicate();
			continue;
		}
		log_handling(it);
		w->n_handled++;
		worker_metrics_handled(it->ev.has_created ?
		    (double)it->ev.created.tv_sec +
		    (double)it->ev.created.tv_nsec / 1e9 : 0);
	}
}

/* The committer is done with the oldest batch in flight: dead-letters
 * what the database refused, logs, acks.  The batch is let go whatever
 * happens: a batch rolled back (OUT_STOPPED) or whose connection is gone
 * stays unacked, for the broker to deliver again. */
static enum outcome
complete(struct worker *w)
{
	struct flight *f = fl_at(w, 0);
	struct inbatch *b = f->b;
	enum outcome o = OUT_OK;
	uint64_t tag;

	if (f->rc == COMMIT_CANCELLED) {
		log_info("stopping: batch of %zu messages left "
		    "unacknowledged (its transaction rolled back)", b->n);
		o = OUT_STOPPED;
		goto out;
	}
	if (has_unsettled_bad(b) && dlq_settle(w->dlq, w->mq, b) == -1) {
		o = OUT_BROKER_LOST;
		goto out;
	}
	log_results(w, b);
	worker_metrics_batch(b->n);
	tag = inbatch_ack_tag(b);
	if (tag != 0 && mq_ack(w->mq, tag, 1) == -1)
		o = OUT_BROKER_LOST;
out:
	inbatch_clear(b);
	w->fl_head = (w->fl_head + 1) % w->pool;
	w->fl_n--;
	return o;
}

/* Takes the verdicts that are in, without waiting, and completes the
 * batches in delivery order as far as they go: an ack gives the broker
 * room (prefetch) to send more while the next batch fills. */
static enum outcome
reap(struct worker *w)
{
	struct flight *f;
	enum outcome o;
	size_t i;

	for (i = 0; i < w->fl_n; i++) {
		f = fl_at(w, i);
		if (f->c != NULL && committer_wait(f->c, 0, &f->rc))
			f->c = NULL;
	}
	while (w->fl_n > 0 && fl_at(w, 0)->c == NULL) {
		if ((o = complete(w)) != OUT_OK)
			return o;
	}
	return OUT_OK;
}

/* Waits for the verdict on the oldest batch in flight, keeping the
 * consumer connection alive meanwhile, then completes it. */
static enum outcome
finish(struct worker *w)
{
	struct flight *f = fl_at(w, 0);
	int stopping = 0;

	while (f->c != NULL &&
	    !committer_wait(f->c, HOLD_HEARTBEAT_MS, &f->rc)) {
		/* A transaction in progress still commits; only the waits
		 * between retries end. */
		if (*w->stop && !stopping) {
			stopping = 1;
			cancel_flights(w);
		}
		/* Committed or not, the deliveries are gone with the
		 * connection: broker_lost lets go of every batch. */
		if (mq_heartbeat(w->mq) == -1)
			return OUT_BROKER_LOST;
	}
	f->c = NULL;
	return complete(w);
}

/* Reads the committers' eventfd back to 0 (reap then looks at each). */
static void
done_clear(struct worker *w)
{
	uint64_t n;

	if (read(w->done_fd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("the committers' eventfd");
}

/* Fills w->next: waits for a first delivery, then takes more until the
 * batch is full or WORKER_BATCH_WAIT_MS passed (what has arrived by then
 * is still taken, up to the max), or, with no batch in flight, until
 * nothing more has arrived.  Meanwhile completes the batches in flight
 * as soon as their committers are done with them.  Returns with w->next
 * empty when nothing came (or a stop was requested) and no batch is in
 * flight. */
static enum outcome
collect(struct worker *w)
{
	struct inbatch *b = w->next;
	struct mq_delivery d;
	long long deadline = 0, left;
	enum outcome o;
	int r, wait;

	for (;;) {
		if ((o = reap(w)) != OUT_OK)
			return o;
		if (inbatch_full(b) || *w->stop)
			return OUT_OK;
		if (b->n == 0) {
			wait = IDLE_WAIT_MS;
		} else if (w->fl_n == 0) {
			/* The committers are idle: take only what has
			 * already arrived. */
			wait = 0;
		} else {
			left = deadline - clock_ms();
			wait = left > 0 ? (int)left : 0;
		}
		/* One poll, which a committer done with its batch ends too
		 * (the eventfd) while batches are in flight; then a look
		 * that takes what came (and sends the heartbeats due). */
		if (wait > 0) {
			r = mq_wait(w->mq, w->fl_n > 0 ? w->done_fd : -1,
			    wait);
			if (r < 0)
				return OUT_BROKER_LOST;
			if (r & MQ_WAIT_FD)
				done_clear(w);
		}
		r = mq_next(w->mq, &d, 0);
		if (r < 0)
			return OUT_BROKER_LOST;
		if (r == 1) {
			worker_metrics_consumed();
			if (b->n == 0)
				deadline = clock_ms() + w->cfg->batch_wait_ms;
			inbatch_add(b, &d);
			/* Decoded while the rest arrives, not after. */
			inbatch_decode_item(&b->items[b->n - 1]);
			continue;
		}
		if (b->n > 0 && (w->fl_n == 0 || clock_ms() >= deadline))
			return OUT_OK;
		if (b->n == 0 && w->fl_n == 0)
			return OUT_OK;
	}
}

/* 1 when a batch in flight is at committer c or is batch b (either
 * may be NULL). */
static int
held(struct worker *w, const struct committer *c, const struct inbatch *b)
{
	struct flight *f;
	size_t i;

	for (i = 0; i < w->fl_n; i++) {
		f = fl_at(w, i);
		if ((c != NULL && f->c == c) || (b != NULL && f->b == b))
			return 1;
	}
	return 0;
}

/* Hands w->next to a free committer and takes a free batch to collect
 * the next: fewer batches are in flight than there are committers, and
 * there is one batch more than committers, so both searches end. */
static void
submit(struct worker *w)
{
	struct flight *f = fl_at(w, w->fl_n);
	size_t k;

	for (k = 0; held(w, w->committer[k], NULL); k++)
		;
	f->c = w->committer[k];
	f->b = w->next;
	w->fl_n++;
	committer_submit(f->c, f->b);
	for (k = 0; held(w, NULL, &w->bat[k]); k++)
		;
	w->next = &w->bat[k];
}

/* One turn of the loop.  OUT_STOPPED ends the loop. */
static enum outcome
turn(struct worker *w)
{
	enum outcome o;

	if ((o = collect(w)) != OUT_OK)
		return o;
	if (w->next->n == 0) {
		if (w->fl_n == 0)
			dlq_service(w->dlq);
		return OUT_OK;
	}
	if (inbatch_prepare(w->next, w->cfg->retention_hours,
	    (int64_t)(clock_wall_s() * 1000.0)) > 0 &&
	    dlq_settle(w->dlq, w->mq, w->next) == -1)
		return OUT_BROKER_LOST;
	/* At most WORKER_DB_POOL batches between the acks and the one
	 * collected: a committer is free. */
	if (w->fl_n == w->pool && (o = finish(w)) != OUT_OK)
		return o;
	if (*w->stop)
		return OUT_OK;
	submit(w);
	return OUT_OK;
}

/* ---- the loop ---- */

static void
worker_free(struct worker *w)
{
	size_t k;

	/* The committers let go of their batches before the batches go. */
	for (k = 0; k < WORKER_DB_POOL_MAX; k++)
		committer_free(w->committer[k]);
	for (k = 0; k <= WORKER_DB_POOL_MAX; k++)
		inbatch_free(&w->bat[k]);
	/* Closing the channel returns unacked deliveries to the queue. */
	mq_free(w->mq);
	dlq_free(w->dlq);
	if (w->done_fd >= 0)
		close(w->done_fd);
}

int
consume_run(const struct worker_config *cfg, volatile sig_atomic_t *stop)
{
	struct worker w;
	enum outcome o = OUT_OK;
	size_t k;
	int ok;

	memset(&w, 0, sizeof(w));
	w.done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w.cfg = cfg;
	w.stop = stop;
	w.pool = (size_t)cfg->db_pool;
	w.mq = mq_new(&cfg->mq);
	w.dlq = dlq_new(&cfg->mq, cfg->dlq_timeout_ms);
	ok = w.mq != NULL && w.dlq != NULL && w.done_fd >= 0;
	if (w.done_fd < 0)
		log_warn("eventfd");
	for (k = 0; ok && k <= w.pool; k++)
		ok = inbatch_init(&w.bat[k], (size_t)cfg->batch_max) == 0;
	for (k = 0; ok && k < w.pool; k++)
		ok = (w.committer[k] = committer_new(cfg,
		    w.done_fd)) != NULL;
	if (!ok) {
		log_warnx("cannot start");
		worker_free(&w);
		return -1;
	}
	w.next = &w.bat[0];
	/* Once stopping, no broker call takes more than another second. */
	mq_watch_stop(stop);
	backoff_init(&w.mq_bo, (unsigned)cfg->retry_base_ms,
	    (unsigned)cfg->retry_max_ms);

	while (!*stop) {
		if (!mq_is_connected(w.mq) && broker_up(&w) == -1) {
			backoff_sleep(backoff_next(&w.mq_bo), stop);
			continue;
		}
		o = turn(&w);
		if (o == OUT_BROKER_LOST)
			broker_lost(&w);
		if (o == OUT_STOPPED)
			break;
	}
	/* Finish the batches in flight, in order: commit and ack each, or
	 * roll it back and leave it unacked; after one left unacked, the
	 * rest stay unacked too (a multiple-ack would cover it: committed,
	 * they come back as duplicates).  A batch collected but not
	 * submitted stays unacked: the broker requeues it when the channel
	 * closes. */
	o = o == OUT_STOPPED ? o : OUT_OK;
	while (w.fl_n > 0 && o == OUT_OK)
		o = finish(&w);
	if (o == OUT_BROKER_LOST)
		broker_lost(&w);
	else if (w.fl_n > 0) {
		log_info("stopping: %zu more batches left unacknowledged "
		    "(after one rolled back)", w.fl_n);
		drop_flights(&w);
	}
	log_info("shutting down: %llu messages handled, %llu duplicates, "
	    "%llu dead-lettered", w.n_handled, w.n_dup, w.n_dead);
	worker_free(&w);
	return 0;
}
