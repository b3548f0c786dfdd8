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
 * connection of its own (a slot), all on one broker channel: while the
 * broker works on the batches in flight, the next one is read (SKIP
 * LOCKED passes over the rows the others hold, so it takes the rows after
 * theirs) and published behind them; then the oldest batch's confirms
 * are collected and it is committed, and so on.  The broker is not left
 * waiting for the database, and messages still go out in sequence order.
 *
 * Each turn of the loop, in named steps (as worker/consume.c):
 *
 *   connect  with nothing in flight: the broker connected and the
 *            topology declared (again, after a message came back
 *            unroutable);
 *   fill     read and send batches into free slots while the outbox
 *            gives full ones (an empty or partial batch ends the fill);
 *   finish   collect the oldest batch's confirms, record them, commit;
 *   idle     nothing due and nothing in flight: look again after
 *            RELAY_POLL_MS, servicing the broker connection meanwhile.
 *
 * A message the broker refuses by closing the channel (over its
 * max_message_size, a forbidden exchange...) would stall the outbox: its
 * batch is never confirmed and the next batch starts with it again.  So
 * after such a refusal the relay publishes one message at a time, each
 * confirmed before the next (careful mode), until the rows that were in
 * flight have gone through: the one the broker refuses again is the
 * culprit, and only it is rescheduled (attempts + 1, parked after
 * RELAY_MAX_ATTEMPTS); the others flow.  Three refusals in a row are
 * not about one message: the broker is backed off from instead.
 *
 * Every step reports one enum outcome.  A lost database or broker:
 * what is confirmed is committed, the rest rolled back or left unmarked;
 * the loss is logged once; reconnection with capped exponential backoff
 * and jitter.  On stop, the batches in flight are finished (or rolled
 * back) before returning.  The state (enum state) changes are logged at
 * debug level.
 */
#include "loop.h"

#include <stdio.h>
#include <string.h>

#include "backlog.h"
#include "backoff.h"
#include "clock.h"
#include "db.h"
#include "durable.h"
#include "health.h"
#include "link.h"
#include "log.h"
#include "mq.h"
#include "outbatch.h"
#include "poll.h"
#include "publish.h"
#include "relay_metrics.h"
#include "retention.h"
#include "unmarked.h"


/* What a step of the loop came to. */
enum outcome {
	OUT_OK,      /* go on */
	OUT_IDLE,    /* nothing due, nothing in flight */
	OUT_DB_LOST, /* the database failed: nothing of ours is in flight */
	OUT_MQ_LOST, /* the broker failed (batches may still be in flight) */
	OUT_REFUSED, /* the broker closed the channel over a message: the
	              * connection is up, nothing in flight has a confirm */
	OUT_BLOCKED, /* the broker blocked publishing (an alarm): nothing in
	              * flight, nothing started */
};

/* Refusals of single messages in a row that mean the broker refuses
 * everything, not one message. */
#define RELAY_REFUSALS_SYSTEMIC 3
/* How long a stop goes on marking the rows the broker confirmed when the
 * database refuses the marks at first (a lock wait, a refused write):
 * within the 10 s a container manager gives by default, after the
 * second of the last confirms. */
#define RELAY_STOP_MARK_MS 5000
/* Between two tries of the marks at stop (mark_at_stop) when the
 * database failed at once (a lock wait takes its own 2 s). */
#define RELAY_STOP_MARK_PAUSE_MS 250

/* Marks in a row that a lock wait or a deadlock cut short before the
 * relay says so (each is tried again at once: a short lock of another
 * session now and then is normal, one that holds them back for long is
 * not). */
#define RELAY_MARK_WAITS_WARN 3

/* Seconds between two moves to the next broker over a batch wholly
 * nacked (finish_slot). */
#define RELAY_NACK_MOVE_S 5.0

/* Where the relay is, for the debug log of its transitions. */
enum state {
	ST_STARTING,
	ST_PUBLISHING, /* batches in flight, or being read */
	ST_IDLE,       /* polling an empty outbox */
	ST_DB_DOWN,    /* backing off from the database */
	ST_MQ_DOWN,    /* backing off from the broker */
	ST_BLOCKED,    /* the broker blocked publishing */
	ST_STOPPING,
};

static const char *const state_names[] = {
	[ST_STARTING] = "starting", [ST_PUBLISHING] = "publishing",
	[ST_IDLE] = "idle", [ST_DB_DOWN] = "database down",
	[ST_MQ_DOWN] = "broker down", [ST_BLOCKED] = "blocked by the broker",
	[ST_STOPPING] = "stopping",
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
	enum state state;
	struct slot slot[RELAY_INFLIGHT_MAX];
	int nslots;    /* RELAY_INFLIGHT_BATCHES */
	int head;      /* oldest batch in flight */
	int count;     /* batches in flight: slot[head .. head + count) */
	int more;      /* the last batch read was full: more rows are due */
	db_conn *barrier; /* autocommit: the durability barrier */
	int checked;      /* the server's durability settings were logged */
	db_conn *failed;  /* the connection of the last OUT_DB_LOST */
	struct unmarked unmarked; /* confirmed rows whose mark failed */
	mq_conn *mq;
	struct publisher *pub;
	struct backlog backlog;
	struct link dbl, mql;
	int redeclare; /* messages came back unroutable: declare again */
	size_t careful;  /* messages still to publish one at a time */
	size_t refused_rows; /* rows of batches refused, not yet careful */
	int blocked;     /* the broker blocks publishing: said once */
	int refused_in_row; /* single messages refused in a row (careful) */
	double nack_moved; /* when a batch wholly nacked last moved us on */
	size_t unconfirmed; /* sent while stopping, no confirm by the end */
	int mark_waits;     /* marks cut short by a lock wait in a row */
};

static void
enter(struct relay *r, enum state s)
{
	if (r->state != s)
		log_debug("relay: %s -> %s", state_names[r->state],
		    state_names[s]);
	r->state = s;
}

/* Sleeps ms (less on stop), keeping the broker connection serviced.
 * Only while no batch is in flight. */
static void
pause_serviced(struct relay *r, unsigned ms)
{
	link_pause(&r->mql, r->mq, ms, r->stop);
}

/* Only while no batch is in flight (no transaction open). */
static void
db_down(struct relay *r, db_conn *db)
{
	char why[600];
	int i;

	enter(r, ST_DB_DOWN);
	snprintf(why, sizeof(why), "%s", db_error(db));
	/* The other connections most likely went with it: all start
	 * afresh, so that the loss is seen (and logged) once. */
	for (i = 0; i < r->nslots; i++)
		db_disconnect(r->slot[i].db);
	db_disconnect(r->barrier);
	pause_serviced(r, link_failed(&r->dbl, why));
}

static void note_blocked(struct relay *r);

static void
mq_down(struct relay *r)
{
	char why[600];

	snprintf(why, sizeof(why), "%s", mq_error(r->mq));
	if (mq_blocked(r->mq, NULL)) {
		/* Lost while the broker blocked publishing: the next
		 * connection publishes one message at a time, which fits
		 * in the socket's buffers, so that the wait for the alarm's
		 * end is a wait for a confirm, not a write cut short. */
		note_blocked(r);
		if (r->careful == 0)
			r->careful = 1;
		pause_serviced(r, backoff_next(&r->mql.bo));
		return;
	}
	enter(r, ST_MQ_DOWN);
	pause_serviced(r, link_failed(&r->mql, why));
}

/* ---- between batches ------------------------------------------------ */

/* A sample of the backlog for the gauges, every few seconds, on a
 * connection outside any transaction.  A failure is left to the next
 * batch to notice and report. */
static void
sample_backlog(struct relay *r, db_conn *db)
{
	if (!backlog_due(&r->backlog, clock_ms()))
		return;
	if (backlog_step(&r->backlog, db, clock_ms()) != DB_OK)
		log_debug("backlog sample: %s", db_error(db));
}

/* Once, on the first connection: says whether the server keeps what it
 * commits (the barrier relies on it). */
static void
check_durability(struct relay *r, db_conn *db)
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

/* The broker blocks publishing (a memory or disk alarm): nothing new is
 * published, the relay says it is not ready, and waits, reading the
 * connection (mq_service) until the broker unblocks it. */
static void
note_blocked(struct relay *r)
{
	const char *why;

	if (!r->blocked) {
		(void)mq_blocked(r->mq, &why);
		log_warnx("the broker blocked publishing (%s); waiting until it "
		    "unblocks", why[0] != '\0' ? why : "an alarm");
		r->blocked = 1;
		relay_metrics_blocked(1);
		health_set(SERVER_MQ, 0);
	}
	enter(r, ST_BLOCKED);
}

/* The broker confirmed, or told the relay it unblocked publishing. */
static void
note_unblocked(struct relay *r)
{
	if (!r->blocked || mq_blocked(r->mq, NULL))
		return;
	log_info("the broker unblocked publishing");
	r->blocked = 0;
	relay_metrics_blocked(0);
	if (mq_is_connected(r->mq))
		health_set(SERVER_MQ, 1);
}

static void
blocked(struct relay *r)
{
	note_blocked(r);
	pause_serviced(r, (unsigned)r->cfg->poll_ms);
	note_unblocked(r);
}

struct marked_probe {
	struct publisher *pub;
	const struct outbatch *b;
};

/* durable_resolve's probe: are the rows of the batch marked? */
static int
probe_marked(db_conn *c, void *ud)
{
	struct marked_probe *m = ud;

	return publish_recorded(m->pub, c, m->b);
}

/* Commits s's batch.  When the reply to the COMMIT is lost, finds out
 * what became of it (the old session killed and gone, then the marks
 * looked for, on the barrier's connection): committed counts as
 * committed, so that the counters and the log stay true; rolled back or
 * unknown, as a failed commit (the rows confirmed are remembered and
 * marked later). */
static int
commit_batch(struct relay *r, struct slot *s)
{
	unsigned long session = db_session_id(s->db);
	long long started = db_server_started(s->db);
	enum durable_outcome o;
	struct marked_probe ud = { r->pub, &s->b };
	int rc;

	if ((rc = db_commit(s->db)) != DB_ECONN)
		return rc;
	o = durable_resolve(r->barrier, session, started, probe_marked, &ud,
	    "relay",
	    r->cfg->confirm_timeout_ms);
	log_info("the reply to the COMMIT of a published batch was lost; it "
	    "%s", o == DURABLE_COMMITTED ? "committed" :
	    o == DURABLE_ROLLED_BACK ? "did not commit (its rows are marked "
	    "again)" : "is of unknown outcome (its rows are marked again)");
	return o == DURABLE_COMMITTED ? DB_OK : rc;
}

/* ---- the steps ------------------------------------------------------- */

/* connect: only while no batch is in flight (a declaration is an RPC on
 * the channel the confirms arrive on). */
static enum outcome
step_connect(struct relay *r)
{
	if (!mq_is_connected(r->mq) || r->redeclare) {
		if ((!mq_is_connected(r->mq) && mq_connect(r->mq, 1) == -1) ||
		    mq_declare_topology(r->mq) == -1) {
			health_broker(-1);
			return OUT_MQ_LOST;
		}
		health_broker(mq_host_index(r->mq, NULL));
		r->redeclare = 0;
	}
	if (mq_blocked(r->mq, NULL))
		return OUT_BLOCKED;
	/* The broker counts as back (its backoff reset) only once a
	 * message is confirmed, or nothing is due: a connection that the
	 * broker drops at every publish must not be retried at once. */
	return OUT_OK;
}

/* After a failed broker call (publish_refused). */
static enum outcome
broker_failed(struct relay *r)
{
	return publish_refused(r->mq) ? OUT_REFUSED : OUT_MQ_LOST;
}

/* Reads the next batch into s, waits until its rows are durable, and
 * sends it.  OUT_OK with s->b empty: nothing due.  OUT_DB_LOST: nothing
 * of s in flight (r->failed says which connection failed).  OUT_MQ_LOST:
 * s is in flight and must still be finished (its messages stay
 * unconfirmed). */
static enum outcome
read_and_send(struct relay *r, struct slot *s)
{
	struct outbatch *b = &s->b;
	double t0;

	r->failed = s->db;
	if (poll_batch(s->db, r->careful > 0 ? 1 : r->cfg->batch_size,
	    &r->unmarked, b) != DB_OK)
		return OUT_DB_LOST;
	if (!r->checked)
		check_durability(r, s->db);
	if (outbatch_taken(b) == 0) {
		/* Nothing due: the database answered, nothing to write. */
		db_rollback(s->db);
		link_ok(&r->dbl);
		return OUT_OK;
	}
	if (b->n > 0) {
		t0 = clock_s();
		if (durable_barrier(r->barrier, "relay") != DB_OK) {
			r->failed = r->barrier;
			db_rollback(s->db);
			outbatch_reset(b);
			return OUT_DB_LOST;
		}
		relay_metrics_barrier(clock_s() - t0);
	}
	s->sent = clock_s();
	if (b->n > 0 && publish_start(r->pub, r->mq, b) == -1)
		return broker_failed(r);
	return OUT_OK;
}

/* fill: batches into free slots while the outbox gives full ones (and
 * nothing came back unroutable: the topology is declared again once the
 * pipeline is empty).  A batch that went out is in flight whatever the
 * outcome. */
static enum outcome
step_fill(struct relay *r)
{
	struct slot *s;
	enum outcome o;
	size_t n;

	/* Careful mode: one message in flight at a time; none started while
	 * the broker blocks publishing. */
	while (r->count < (r->careful > 0 ? 1 : r->nslots) && !*r->stop &&
	    !mq_blocked(r->mq, NULL) &&
	    ((r->more && !r->redeclare) || r->count == 0)) {
		s = &r->slot[(r->head + r->count) % r->nslots];
		sample_backlog(r, s->db);
		o = read_and_send(r, s);
		n = outbatch_taken(&s->b);
		if (n > 0)
			r->count++;
		r->more = n >= (size_t)r->cfg->batch_size ||
		    (n > 0 && s->b.full);
		if (o != OUT_OK)
			return o;
		if (n == 0 || !r->more)
			break;
	}
	if (r->count == 0)
		return OUT_IDLE;
	enter(r, ST_PUBLISHING);
	return OUT_OK;
}

/* The confirmed rows of b whose mark did not go through: remembered, so
 * that they are marked, not published again, when locked next. */
static void
remember_unmarked(struct relay *r, const struct outbatch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (b->msgs[i].result == MQ_ACKED)
			unmarked_add(&r->unmarked, &b->rows[i].seq, 1);
	}
	unmarked_add(&r->unmarked, b->sent, b->nsent);
}

/* Collects the confirms of s's batch, records the outcome and commits.
 * A record or commit that fails is a database failure (OUT_DB_LOST,
 * unless the broker failed too): the confirmed rows are remembered and
 * marked later without a new publish. */
static enum outcome
finish_slot(struct relay *r, struct slot *s)
{
	struct outbatch *b = &s->b;
	struct outbatch_tally t;
	double confirmed, took;
	enum outcome o = OUT_OK;
	long long end;
	int db_failed = 0, rc;
	size_t i;

	if (b->n > 0) {
		/* While the broker blocks publishing, what it read is held:
		 * wait for it, saying so (not ready), up to the confirm
		 * timeout in all (the batch's transaction stays open
		 * meanwhile); a stop ends the wait within a second. */
		end = clock_ms() + r->cfg->confirm_timeout_ms;
		while ((rc = publish_wait(r->pub, r->mq, b)) == 1) {
			note_blocked(r);
			if (clock_ms() >= end)
				rc = mq_give_up(r->mq, "no confirm within "
				    "RELAY_CONFIRM_TIMEOUT_MS: the broker blocks "
				    "publishing");
		}
		if (rc == -1)
			o = broker_failed(r);
		else
			note_unblocked(r);
	}
	if (r->careful > 0 && b->n == 1) {
		r->careful--;
		if (o == OUT_REFUSED) {
			/* Alone in flight: it is the one. */
			b->msgs[0].result = MQ_REFUSED;
			snprintf(b->refused_why, sizeof(b->refused_why), "%s",
			    mq_error(r->mq));
			log_warnx("outbox row %lld (message %s) refused by the "
			    "broker: %s", (long long)b->rows[0].seq,
			    b->rows[0].id, mq_error(r->mq));
			relay_metrics_refused();
			r->refused_in_row++;
		} else if (o == OUT_OK) {
			r->refused_in_row = 0;
		}
		if (r->careful == 0)
			log_info("publishing in batches again");
	} else if (o == OUT_REFUSED) {
		r->refused_rows += b->n;
	}
	took = clock_s() - s->sent;
	confirmed = clock_wall_s();
	/* Acked messages are recorded even when the connection then broke:
	 * fewer duplicates after the reconnect. */
	if ((rc = publish_record(r->pub, s->db, b)) != DB_OK) {
		log_debug("cannot record a published batch (%s); rolled back",
		    db_error(s->db));
		db_rollback(s->db);
		db_failed = 1;
	} else if ((rc = commit_batch(r, s)) != DB_OK) {
		log_debug("commit of a published batch failed (%s)",
		    db_error(s->db));
		db_failed = 1;
	} else {
		publish_log(r->pub, b);
		unmarked_del(&r->unmarked, b->sent, b->nsent);
		link_ok(&r->dbl);
		if (r->mark_waits >= RELAY_MARK_WAITS_WARN)
			log_info("marks go through again");
		r->mark_waits = 0;
	}
	outbatch_tally(b, &t);
	if (t.acked > 0)
		link_ok(&r->mql);
	if (*r->stop)
		r->unconfirmed += t.pending;
	if (db_failed) {
		remember_unmarked(r, b);
		r->failed = s->db;
		/* A lock wait cut short or a deadlock is no outage: the rows
		 * are locked and marked again at once. */
		if (o == OUT_OK && rc != DB_ERETRY)
			o = OUT_DB_LOST;
		if (rc == DB_ERETRY &&
		    ++r->mark_waits == RELAY_MARK_WAITS_WARN)
			log_warnx("marks of confirmed batches held back by "
			    "locks %d times in a row (%s): another session "
			    "holds rows or index ranges of the outbox; trying "
			    "again", r->mark_waits, db_error(s->db));
	}
	if (!db_failed) {
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
	/* Every message of a batch nacked: the node refuses everything.  After
	 * a quorum queue's leader was killed, the node the relay moved to was
	 * seen nacking every publish of its channel for minutes while the
	 * queue had a new leader and its majority, until the connection was
	 * new: with several brokers, the next one, at most every
	 * RELAY_NACK_MOVE_S (a queue full by policy nacks on every node). */
	if (o == OUT_OK && b->n > 0 && t.nacked == b->n &&
	    clock_s() - r->nack_moved >= RELAY_NACK_MOVE_S &&
	    mq_move_on(r->mq, "every message of a batch nacked; trying the "
	    "next broker")) {
		r->nack_moved = clock_s();
		o = OUT_MQ_LOST;
	}
	outbatch_reset(b);
	return o;
}

/* finish: the oldest batch in flight. */
static enum outcome
step_finish(struct relay *r)
{
	struct slot *s = &r->slot[r->head];

	r->head = (r->head + 1) % r->nslots;
	r->count--;
	return finish_slot(r, s);
}

/* Every batch in flight, oldest first (after a failure, or to stop).
 * OUT_MQ_LOST if the broker failed for any of them, else OUT_DB_LOST if
 * the database did (r->failed says where). */
static enum outcome
finish_all(struct relay *r)
{
	enum outcome o = OUT_OK, f;

	while (r->count > 0) {
		f = step_finish(r);
		if (f == OUT_MQ_LOST || (f == OUT_DB_LOST && o == OUT_OK))
			o = f;
	}
	return o;
}

/* One turn: connect, fill, finish the oldest batch. */
static enum outcome
turn(struct relay *r)
{
	enum outcome o;

	if (r->count == 0 && (o = step_connect(r)) != OUT_OK)
		return o;
	if ((o = step_fill(r)) != OUT_OK)
		return o;
	return step_finish(r);
}

/* Rows of the batches in flight. */
static size_t
rows_in_flight(const struct relay *r)
{
	size_t n = 0;
	int i;

	for (i = 0; i < r->count; i++)
		n += r->slot[(r->head + i) % r->nslots].b.n;
	return n;
}

/* The broker closed the channel over a message (OUT_REFUSED): the
 * batches in flight are finished without their confirms, and the rows
 * that were in flight go out one at a time to find which it was; after
 * RELAY_REFUSALS_SYSTEMIC single messages refused in a row, the broker
 * refuses everything: back off as from an outage. */
static void
refused(struct relay *r)
{
	char why[512];
	size_t n = rows_in_flight(r) + r->refused_rows;

	snprintf(why, sizeof(why), "%s", mq_error(r->mq));
	finish_all(r);
	r->refused_rows = 0;
	if (!mq_is_connected(r->mq)) {
		mq_down(r);
		return;
	}
	if (r->refused_in_row >= RELAY_REFUSALS_SYSTEMIC) {
		r->refused_in_row = 0;
		r->careful = 0;
		mq_disconnect(r->mq);
		mq_down(r);
		return;
	}
	if (r->careful == 0) {
		log_warnx("the broker refused a message (%s); publishing the %zu "
		    "messages that were in flight one at a time to find which",
		    why, n > 0 ? n : 1);
		r->careful = n > 0 ? n : 1;
	}
}

/* At stop, after the last batches: the rows the broker confirmed whose
 * mark failed (a lock wait, a refused write, a lost connection; no later
 * batch will lock them again) are marked in statements of their own,
 * tried again for RELAY_STOP_MARK_MS; then what the stop leaves to be
 * published again is said, once. */
static void
mark_at_stop(struct relay *r)
{
	db_conn *db = r->slot[r->head].db;
	long long end = clock_ms() + RELAY_STOP_MARK_MS, t0;
	size_t n, left = r->unmarked.n;
	int rc, said = 0;

	while (r->unmarked.n > 0) {
		n = r->unmarked.n < (size_t)r->cfg->batch_size ?
		    r->unmarked.n : (size_t)r->cfg->batch_size;
		t0 = clock_ms();
		if ((rc = publish_mark(r->pub, db, r->unmarked.seq, n)) ==
		    DB_OK) {
			unmarked_forget_first(&r->unmarked, n);
			continue;
		}
		if (!said) {
			log_warnx("stopping: %zu confirmed messages not marked "
			    "published yet (%s); trying again for up to %d s",
			    r->unmarked.n, db_error(db),
			    RELAY_STOP_MARK_MS / 1000);
			said = 1;
		}
		if (clock_ms() >= end)
			break;
		if (clock_ms() - t0 < RELAY_STOP_MARK_PAUSE_MS)
			backoff_sleep(RELAY_STOP_MARK_PAUSE_MS, NULL);
	}
	if (said && r->unmarked.n == 0)
		log_info("stopping: the %zu confirmed messages are marked "
		    "published", left);
	if (r->unmarked.n > 0 || r->unconfirmed > 0)
		log_warnx("stopped with %zu confirmed messages not marked "
		    "published and %zu sent without a confirm: the next start "
		    "publishes %s again (the worker absorbs the duplicates)",
		    r->unmarked.n, r->unconfirmed,
		    r->unmarked.n + r->unconfirmed == 1 ? "it" : "them");
}

static void
relay_loop(struct relay *r)
{
	enum outcome o;

	r->more = 1;
	while (!*r->stop) {
		switch ((o = turn(r))) {
		case OUT_OK:
			break;
		case OUT_IDLE:
			/* Connected, nothing due: as good as progress. */
			if (mq_is_connected(r->mq))
				link_ok(&r->mql);
			enter(r, ST_IDLE);
			pause_serviced(r, (unsigned)r->cfg->poll_ms);
			r->more = 1;
			break;
		case OUT_REFUSED:
			refused(r);
			r->more = 1;
			break;
		case OUT_BLOCKED:
			blocked(r);
			break;
		case OUT_MQ_LOST:
			finish_all(r);
			mq_down(r);
			r->more = 1;
			break;
		case OUT_DB_LOST:
			/* The batches before it still get their confirms;
			 * a broker lost meanwhile is the first to mend. */
			if (finish_all(r) == OUT_MQ_LOST)
				mq_down(r);
			else
				db_down(r, r->failed);
			r->more = 1;
			break;
		}
	}
	enter(r, ST_STOPPING);
	finish_all(r);
	mark_at_stop(r);
}

int
relay_run(const struct relay_config *cfg, volatile sig_atomic_t *stop)
{
	struct relay r;
	struct pruner *pruner;
	int i, failed, rc = -1;

	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.stop = stop;
	r.state = ST_STARTING;
	r.mq = mq_new(&cfg->mq);
	r.pub = publisher_new(cfg);
	r.barrier = db_new(&cfg->db);
	if (r.mq == NULL || r.pub == NULL || r.barrier == NULL)
		goto nomem;
	/* No write to the broker outlasts the wait for a confirm. */
	mq_set_op_timeout(r.mq, cfg->confirm_timeout_ms);
	mq_watch_stop(stop);
	if (unmarked_init(&r.unmarked, (size_t)RELAY_INFLIGHT_MAX *
	    RELAY_BATCH_MAX) == -1)
		goto nomem;
	r.nslots = cfg->inflight_batches;
	for (i = 0; i < r.nslots; i++) {
		r.slot[i].db = db_new(&cfg->db);
		if (r.slot[i].db == NULL ||
		    outbatch_init(&r.slot[i].b, (size_t)cfg->batch_size) == -1)
			goto nomem;
		outbatch_set_max_body(&r.slot[i].b,
		    (size_t)cfg->max_message_bytes);
		poll_session(r.slot[i].db, relay_idle_transaction_s(cfg));
	}
	link_init(&r.dbl, "database", SERVER_DB,
	    (unsigned)cfg->reconnect_max_ms);
	link_init(&r.mql, "broker", SERVER_MQ,
	    (unsigned)cfg->reconnect_max_ms);
	backlog_init(&r.backlog, clock_ms());
	/* The retention's own thread and connection. */
	pruner = retention_start(cfg, 0, &failed);
	if (!failed) {
		relay_loop(&r);
		rc = 0;
	}
	pruner_free(pruner);
	goto out;
nomem:
	log_warnx("out of memory");
out:
	for (i = 0; i < RELAY_INFLIGHT_MAX; i++) {
		outbatch_free(&r.slot[i].b);
		db_free(r.slot[i].db);
	}
	db_free(r.barrier);
	unmarked_free(&r.unmarked);
	publisher_free(r.pub);
	mq_free(r.mq);
	return rc;
}
