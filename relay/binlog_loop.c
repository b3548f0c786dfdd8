/*
 * binlog_loop.c - the relay's binlog mode (binlog_loop.h).
 *
 * One relay leads: it holds a named database lock (GET_LOCK) on its
 * least-privilege session, whose wait_timeout is RELAY_LEADER_TIMEOUT_S,
 * so that the server ends the session, and frees the lock, of a leader
 * that froze or was cut off.  The others stand by: connected to the
 * broker, asking for the lock every second.  Before each publish the
 * leader makes sure that it still holds the lock (a lease: a round trip
 * on that session less than half the timeout ago); a leader that lost it
 * publishes nothing more and stands by.
 *
 * The leader reads the binary log from the stored position
 * (common/binlog.h): the outbox rows of each transaction, in commit
 * order, then the transaction's end.  Rows go into a batch (the poll
 * mode's struct outbatch: the same messages byte for byte); a batch is
 * sent at a transaction's end when the server has nothing more to send
 * right now, or when it is full; up to RELAY_INFLIGHT_BATCHES batches
 * are in flight on one channel, and their confirms are collected oldest
 * first, as they come while the reader waits for the server, and when
 * the slots are full.
 *
 * The position.  Each finished batch becomes an entry of a FIFO: the GTID
 * list after its last transaction (if it ended one), its highest seq,
 * and how many of its messages still wait for a retry.  The position
 * moves over the entries at the front whose messages are all confirmed
 * or parked, never past one that is neither; it is stored (one upsert,
 * position.h) at most every BL_STORE_MS, and when the log is idle.
 * Transactions without outbox rows (the worker's, the customers' alone)
 * move it too.
 *
 * A nacked, returned or invalid message (relay/outbatch.h's bad rows:
 * an oversized body, an id that is not a UUID) is retried with the poll
 * mode's backoff while the stream goes on, one message at a time; after
 * RELAY_MAX_ATTEMPTS a returned or invalid one is parked (a nack never
 * parks, as in poll mode); the retry list is bounded, and the reader
 * waits while it is full.  A message that makes the broker close the
 * channel (406) cannot be told from the others in flight: the stream
 * starts again from the position with the messages that were in flight
 * published one at a time, and the one refused alone is retried.
 *
 * Any other failure (the database, the broker, the reader) settles:
 * the confirms that can still come are collected, the position stored,
 * everything else dropped; after the backoff the stream starts again
 * from the position (what was published after it is published again:
 * at least once, the worker absorbs the duplicates).
 *
 * No stored position (first start), or one the server no longer has
 * (purged binary logs): the durable end of the binary log is taken,
 * every row of the table neither published by the poll mode nor parked
 * is published (the outbox keeps its rows longer than the binary log
 * keeps its files: checked at start), and the stream starts at that end.
 * From a purged position, only the rows it may not cover: above its
 * last_seq, or created or released within RETENTION_TXN_MARGIN_S before
 * it (retention.h: the rows the retention would not delete).
 */
#include "binlog_loop.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backlog.h"
#include "backoff.h"
#include "binlog.h"
#include "binlog_check.h"
#include "clock.h"
#include "db.h"
#include "durable.h"
#include "health.h"
#include "link.h"
#include "log.h"
#include "mq.h"
#include "outbatch.h"
#include "poll.h"
#include "posfifo.h"
#include "position.h"
#include "publish.h"
#include "relay_metrics.h"
#include "retention.h"

/* Messages waiting for a retry, and their bytes: past either the reader
 * waits.  The batches in flight and the one being filled may still add
 * theirs: the list has room for them. */
#define BL_RETRY_MAX 1000
#define BL_RETRY_BYTES (64u * 1024 * 1024)
#define BL_RETRY_CAP (BL_RETRY_MAX + (RELAY_INFLIGHT_MAX + 1) * RELAY_BATCH_MAX)
/* Entries of the position's FIFO (finished batches that hold a retry,
 * the ones between them merged): past BL_FIFO_WAIT the reader waits;
 * the batches in flight and a few more steps fit in the rest. */
#define BL_FIFO_MAX (2 * BL_RETRY_MAX + 4 * RELAY_INFLIGHT_MAX + 16)
#define BL_FIFO_WAIT (2 * BL_RETRY_MAX)
/* Least time between two stores of the position while busy, and while
 * only transactions without outbox rows pass. */
#define BL_STORE_MS 100
#define BL_STORE_IDLE_MS 10000
/* A read that waited this long for its event: the stream was quiet
 * (a lone request's transaction), not streaming. */
#define BL_QUIET_MS 5
/* Longest a transaction's rows wait, while more events stream in, for
 * the next transactions to share their batch. */
#define BL_FLUSH_MS 1
/* Single messages refused in a row that mean the broker refuses
 * everything, not one message (as loop.c). */
#define BL_REFUSALS_SYSTEMIC 3
/* Seconds between two checks of the server's settings while leading
 * (sync_binlog can be changed at run time). */
#define BL_CHECK_MS 10000
/* Longest time between two services of the broker connection. */
#define BL_SERVICE_MS 1000
/* While the binary log is quiet, it is waited on in slices of this, the
 * stop looked at between them (a read blocks until the next event: a
 * heartbeat, RELAY_BINLOG_HEARTBEAT_MS, away). */
#define BL_QUIET_SLICE_MS 200
/* Seconds a standby waits for the lock in one GET_LOCK. */
#define BL_STANDBY_WAIT_S 1
/* Rows whose failed attempts are remembered across restarts of the
 * stream (the binary log's row has the attempts of its insert). */
#define BL_MEMO 1024

/* Why leading stopped. */
enum bl_out {
	BL_OK,
	BL_STOP,      /* asked to stop */
	BL_LOST_LOCK, /* another relay leads now */
	BL_DB,        /* the database failed (r->dbl says why) */
	BL_MQ,        /* the broker failed */
	BL_REFUSED,   /* the broker closed the channel over a message */
	BL_READER,    /* the binary log's stream failed */
	BL_GONE,      /* the position is not in the binary log any more */
	BL_UNSAFE,    /* a setting the mode needs changed at run time */
};

/* A batch being filled or in flight. */
struct bslot {
	struct outbatch b;
	int ends;              /* its last row ended a transaction */
	char gtid[POSFIFO_GTID_LEN]; /* the position after it, when ends */
	int64_t max_seq;       /* -1: no row */
	int alone;             /* sent while careful: a refusal is its own */
	long long first_ms;    /* when its first row was read */
	int quiet;             /* the stream was quiet before that row */
	double sent;
};

/* A message tried again later. */
struct retry {
	int64_t seq;
	unsigned attempts;     /* failed tries so far */
	uint64_t entry;        /* the FIFO entry it holds back */
	long long due_ms;
	struct outbatch_row row; /* the message as first built */
	char *body;            /* its body; NULL: an invalid row, refused
	                        * without asking the broker */
	char reason[128];      /* of an invalid row */
};

struct brelay {
	const struct relay_config *cfg;
	volatile sig_atomic_t *stop;
	struct db_params rp;   /* the reader's login */
	db_conn *db;           /* the relay's login: lock, position, scans */
	binlog *bl;
	mq_conn *mq;
	struct publisher *pub;
	struct link dbl, mql, rdl;
	char lock_name[80];
	unsigned long lock_session; /* 0: not leading */
	long long lease_until;
	/* The pipeline: slot[head .. head + count) in flight, the next one
	 * being filled. */
	struct bslot slot[RELAY_INFLIGHT_MAX];
	int nslots, head, count;
	size_t careful;        /* rows to publish one at a time */
	int refused_in_row;    /* single messages refused in a row */
	long long serviced_ms; /* the broker connection last serviced */
	long long checked_ms;  /* the server's settings last checked */
	int unsafe;            /* they did not hold: said once */
	char why[512];
	size_t streamed;       /* rows read since the stream started */
	int redeclare;         /* a message came back unroutable */
	double nack_moved;
	/* The position: finished batches, and how far they are done. */
	struct posfifo pos;
	int gone;              /* the server no longer has it: recover */
	char stored[POSFIFO_GTID_LEN];
	int64_t stored_seq;
	long long stored_ms;
	long long deferred_ms; /* a due store first waited (0: none) */
	/* Retries. */
	struct retry *retries;
	size_t nretries, retry_bytes;
	struct backoff retry_bo;
	struct outbatch rb;    /* one retried message */
	struct {
		int64_t seq;
		unsigned attempts;
	} memo[BL_MEMO];
	size_t memo_next, memo_used;
	struct backlog backlog;
};

/* ---- the leader lock -------------------------------------------------- */

static void
lease_renew(struct brelay *r, long long t0)
{
	r->lease_until = t0 + (long long)r->cfg->leader_timeout_s * 500;
	/* Within a batch too: a leader frozen in the middle of one sends
	 * nothing more once it wakes after the lease. */
	mq_set_fence(r->mq, r->lease_until);
}

/* 1 while this session holds the lock (the lease renewed), 0 when it
 * does not, or a db_rc. */
static int
lock_held(struct brelay *r)
{
	struct db_val a = DB_STR(r->lock_name);
	long long t0 = clock_lease_ms(), owner = -1;
	int rc;

	if (r->lock_session == 0)
		return 0;
	/* NULL: nobody holds it. */
	rc = db_query(r->db, "SELECT COALESCE(IS_USED_LOCK(?), -1)", &a, 1,
	    db_count_row, &owner, NULL);
	if (rc != DB_OK)
		return rc;
	/* A session reconnected by db.c holds nothing. */
	if (owner < 0 || (unsigned long)owner != r->lock_session ||
	    db_session_id(r->db) != r->lock_session)
		return 0;
	lease_renew(r, t0);
	return 1;
}

/* Before a publish: BL_OK while leading, else why not.  renew_early: the
 * lease is renewed once less than a quarter of the timeout is left (a
 * round trip at most that often), so that what follows finishes inside
 * it. */
static enum bl_out
still_leading(struct brelay *r, int renew_early)
{
	long long now = clock_lease_ms();
	long long half = (long long)r->cfg->leader_timeout_s * 250;
	int rc;

	if (now < r->lease_until - (renew_early ? half : 0))
		return BL_OK;
	rc = lock_held(r);
	if (rc == 1)
		return BL_OK;
	if (rc == 0) {
		log_warnx("binlog mode: lost the leader lock %s (the session "
		    "holding it ended); publishing stops", r->lock_name);
		r->lock_session = 0;
		relay_metrics_binlog_leader(0);
		return BL_LOST_LOCK;
	}
	return BL_DB;
}

/* Waits up to wait_s for the lock.  1 taken, 0 not, or a db_rc. */
static int
lock_take(struct brelay *r, int wait_s)
{
	struct db_val a[2] = { DB_STR(r->lock_name), DB_INT(wait_s) };
	long long t0 = clock_lease_ms(), got = -1;
	int rc;

	/* NULL: an error (the session killed meanwhile): not taken. */
	rc = db_query(r->db, "SELECT COALESCE(GET_LOCK(?, ?), -1)", a, 2,
	    db_count_row, &got, NULL);
	if (rc != DB_OK)
		return rc;
	if (got != 1)
		return 0;
	r->lock_session = db_session_id(r->db);
	lease_renew(r, t0);
	return 1;
}

/* ---- the position ----------------------------------------------------- */

/* 1 when the position moved since it was last stored and a store is
 * due: at most every BL_STORE_MS unless forced. */
static int
store_due(struct brelay *r, int force)
{
	long long now = clock_ms();

	(void)posfifo_advance(&r->pos);
	if (!r->pos.have_pos || (strcmp(r->pos.pos, r->stored) == 0 &&
	    r->pos.pos_seq == r->stored_seq))
		return 0;
	if (!force && now - r->stored_ms < BL_STORE_MS)
		return 0;
	/* Only transactions without outbox rows passed (the worker's, and
	 * this relay's own stores, which would otherwise be stored at every
	 * heartbeat): stored now and then. */
	return r->pos.pos_seq != r->stored_seq || r->stored[0] == '\0' ||
	    now - r->stored_ms >= BL_STORE_IDLE_MS;
}

/* Stores the position (store_due said so).  A db_rc. */
static int
store_now(struct brelay *r)
{
	int rc;

	if ((rc = position_store(r->db, r->pos.pos, r->pos.pos_seq)) != DB_OK)
		return rc;
	snprintf(r->stored, sizeof(r->stored), "%s", r->pos.pos);
	r->stored_seq = r->pos.pos_seq;
	r->stored_ms = clock_ms();
	r->deferred_ms = 0;
	relay_metrics_binlog_position(r->stored_seq);
	return DB_OK;
}

/* Stores the position when store_due says so.  A db_rc. */
static int
store(struct brelay *r, int force)
{
	return store_due(r, force) ? store_now(r) : DB_OK;
}

/* ---- retries ---------------------------------------------------------- */

static unsigned
memo_attempts(const struct brelay *r, int64_t seq, unsigned dflt)
{
	size_t i;

	/* Read for every row: nothing to look at until a message failed. */
	for (i = 0; i < r->memo_used; i++)
		if (r->memo[i].seq == seq && r->memo[i].attempts > dflt)
			return r->memo[i].attempts;
	return dflt;
}

static void
memo_set(struct brelay *r, int64_t seq, unsigned attempts)
{
	size_t i;

	for (i = 0; i < r->memo_used; i++)
		if (r->memo[i].seq == seq) {
			r->memo[i].attempts = attempts;
			return;
		}
	if (r->memo_used < BL_MEMO)
		r->memo_used++;
	r->memo[r->memo_next].seq = seq;
	r->memo[r->memo_next].attempts = attempts;
	r->memo_next = (r->memo_next + 1) % BL_MEMO;
}

/* The reader waits while the retries, or the position's entries they
 * hold back, are this many. */
static int
retries_full(const struct brelay *r)
{
	return r->nretries >= BL_RETRY_MAX || r->retry_bytes >= BL_RETRY_BYTES ||
	    r->pos.len >= BL_FIFO_WAIT;
}

/* Parks row seq after its last attempt (as the poll mode does).  A
 * db_rc. */
static int
park(struct brelay *r, int64_t seq, unsigned attempts, const char *why)
{
	static const char sql[] = "UPDATE outbox SET attempts = ?, "
	    "last_error = ?, next_attempt_at = '9999-12-31 23:59:59', "
	    "parked_at = UTC_TIMESTAMP(6) WHERE seq = ?";
	struct db_val a[3] = { DB_INT(attempts), DB_STR(why), DB_INT(seq) };
	int rc;

	if ((rc = db_exec(r->db, sql, a, 3, NULL)) != DB_OK)
		return rc;
	log_warnx("outbox row %lld parked after %u attempts (last: %s); it "
	    "stays unpublished until released (README, \"Parked rows\")",
	    (long long)seq, attempts, why);
	relay_metrics_parked();
	return DB_OK;
}

/* One more failed try of row seq (attempts before it): parked after
 * RELAY_MAX_ATTEMPTS when may_park, else *due_ms set for the next.  1
 * parked, 0 to retry, or a db_rc. */
static int
failed_try(struct brelay *r, int64_t seq, unsigned *attempts,
    const char *why, int may_park, long long *due_ms)
{
	int rc;

	(*attempts)++;
	memo_set(r, seq, *attempts);
	if (may_park && *attempts >= (unsigned)r->cfg->max_attempts) {
		if ((rc = park(r, seq, *attempts, why)) != DB_OK)
			return rc;
		return 1;
	}
	r->retry_bo.attempt = *attempts < 64 ? *attempts - 1 : 63;
	*due_ms = clock_ms() + backoff_next(&r->retry_bo);
	return 0;
}

/* Adds message i of b (b NULL: an invalid row, why) to the retries.
 * 0, or -1 when out of memory. */
static int
retry_add(struct brelay *r, int64_t seq, unsigned attempts, uint64_t entry,
    long long due_ms, const struct outbatch *b, size_t i, const char *why)
{
	struct retry *t = &r->retries[r->nretries];

	memset(t, 0, sizeof(*t));
	t->seq = seq;
	t->attempts = attempts;
	t->entry = entry;
	t->due_ms = due_ms;
	if (b == NULL) {
		snprintf(t->reason, sizeof(t->reason), "%s", why);
	} else {
		t->row = b->rows[i];
		if ((t->body = malloc(t->row.len + 1)) == NULL)
			return -1;
		memcpy(t->body, b->bodies.data + t->row.off, t->row.len);
		r->retry_bytes += t->row.len;
	}
	r->nretries++;
	return 0;
}

static void
retry_drop(struct brelay *r, size_t i)
{
	posfifo_done(&r->pos, r->retries[i].entry);
	if (r->retries[i].body != NULL)
		r->retry_bytes -= r->retries[i].row.len;
	free(r->retries[i].body);
	r->retries[i] = r->retries[--r->nretries];
}

static void
retries_clear(struct brelay *r)
{
	while (r->nretries > 0)
		retry_drop(r, r->nretries - 1);
	r->retry_bytes = 0;
}

static long long
retries_next_due(const struct brelay *r)
{
	long long due = -1;
	size_t i;

	for (i = 0; i < r->nretries; i++)
		if (due < 0 || r->retries[i].due_ms < due)
			due = r->retries[i].due_ms;
	return due;
}

/* ---- publishing ------------------------------------------------------- */

/* Waits for the confirms of b, the broker's alarms included (up to the
 * confirm timeout in all).  0, or -1 (the connection failed). */
static int
wait_confirms(struct brelay *r, struct outbatch *b)
{
	long long end = clock_ms() + r->cfg->confirm_timeout_ms;
	int rc;

	while ((rc = publish_wait(r->pub, r->mq, b)) == 1) {
		health_set(SERVER_MQ, 0);
		if (clock_ms() >= end)
			rc = mq_give_up(r->mq, "no confirm within "
			    "RELAY_CONFIRM_TIMEOUT_MS: the broker blocks "
			    "publishing");
	}
	return rc;
}

/* After a failed broker call (publish_refused). */
static enum bl_out
broker_failed(struct brelay *r)
{
	return publish_refused(r->mq) ? BL_REFUSED : BL_MQ;
}

/* After a failed publish_start: when it stopped at the lease's end (the
 * relay stalled in the middle of a batch), whether this relay still
 * leads (then the stream starts again from the position) or not. */
static enum bl_out
publish_failed(struct brelay *r)
{
	enum bl_out o;

	if (!mq_fenced(r->mq))
		return broker_failed(r);
	o = still_leading(r, 0);
	return o == BL_OK ? BL_MQ : o;
}

/* One message of the retry list (the retry batch holds it, sent): its
 * outcome.  BL_OK, or why the stream stops. */
static enum bl_out
retry_one(struct brelay *r, size_t i)
{
	struct retry *t = &r->retries[i];
	struct outbatch *b = &r->rb;
	enum mq_result res;
	const char *why;
	int rc;

	outbatch_reset(b);
	if (t->body != NULL && outbatch_add_built(b, &t->row, t->body) == -1)
		return BL_MQ; /* out of memory: start again */
	outbatch_seal(b);
	if (b->n == 1) {
		if (still_leading(r, 1) != BL_OK)
			return BL_LOST_LOCK;
		if (publish_start(r->pub, r->mq, b) == -1 ||
		    wait_confirms(r, b) == -1) {
			enum bl_out o = publish_failed(r);

			if (o != BL_REFUSED)
				return o;
			b->msgs[0].result = MQ_REFUSED;
			snprintf(b->refused_why, sizeof(b->refused_why), "%s",
			    mq_error(r->mq));
			relay_metrics_refused();
		}
		res = b->msgs[0].result;
		relay_metrics_batch(res == MQ_ACKED, res == MQ_NACKED,
		    res == MQ_RETURNED, 0, res != MQ_ACKED, 0);
		if (res == MQ_ACKED) {
			publish_log(r->pub, b);
			retry_drop(r, i);
			return BL_OK;
		}
		if (res == MQ_RETURNED)
			r->redeclare = 1;
		why = res == MQ_REFUSED ? b->refused_why :
		    outbatch_result_reason(res);
	} else {
		res = MQ_REFUSED;
		why = t->reason;
	}
	rc = failed_try(r, t->seq, &t->attempts, why, res != MQ_NACKED,
	    &t->due_ms);
	if (rc < 0)
		return BL_DB;
	if (rc == 1)
		retry_drop(r, i);
	return BL_OK;
}

/* The retries that are due, one at a time (nothing else in flight). */
static enum bl_out
run_retries(struct brelay *r)
{
	enum bl_out o;
	size_t i;

	for (i = 0; i < r->nretries && !*r->stop;) {
		if (r->retries[i].due_ms > clock_ms()) {
			i++;
			continue;
		}
		if ((o = retry_one(r, i)) != BL_OK)
			return o;
		/* retry_drop moved the last one to i. */
		if (i < r->nretries && r->retries[i].due_ms <= clock_ms())
			continue;
		i++;
	}
	return BL_OK;
}

static void
slot_clear(struct bslot *s)
{
	outbatch_reset(&s->b);
	s->ends = 0;
	s->gtid[0] = '\0';
	s->max_seq = -1;
	s->quiet = 0;
}

/* Collects the confirms of the oldest batch in flight and files its
 * outcome: an entry of the FIFO, the failures into the retries. */
static enum bl_out
finish_oldest(struct brelay *r)
{
	struct bslot *s = &r->slot[r->head];
	struct outbatch *b = &s->b;
	struct outbatch_tally t;
	enum bl_out o = BL_OK;
	unsigned pending = 0;
	uint64_t id;
	long long due;
	size_t i;
	int rc;

	r->head = (r->head + 1) % r->nslots;
	r->count--;
	if (b->n > 0 && wait_confirms(r, b) == -1)
		o = broker_failed(r);
	else if (b->n > 0)
		health_set(SERVER_MQ, 1);
	if (s->alone && b->n == 1 && o == BL_REFUSED) {
		/* Alone in flight: it is the one (unless the broker refuses
		 * everything: then an outage, no attempt counted). */
		if (++r->refused_in_row >= BL_REFUSALS_SYSTEMIC) {
			r->refused_in_row = 0;
			mq_disconnect(r->mq);
			slot_clear(s);
			return BL_MQ;
		}
		b->msgs[0].result = MQ_REFUSED;
		snprintf(b->refused_why, sizeof(b->refused_why), "%s",
		    mq_error(r->mq));
		log_warnx("outbox row %lld (message %s) refused by the "
		    "broker: %s", (long long)b->rows[0].seq, b->rows[0].id,
		    mq_error(r->mq));
		relay_metrics_refused();
		o = BL_OK;
	} else if (s->alone && o == BL_OK) {
		r->refused_in_row = 0;
	}
	outbatch_tally(b, &t);
	if (t.acked > 0)
		link_ok(&r->mql);
	relay_metrics_batch(t.acked, t.nacked, t.returned, t.pending,
	    t.nacked + t.returned + b->nbad, clock_s() - s->sent);
	if (t.acked > 0)
		publish_log(r->pub, b);
	if (o != BL_OK) {
		/* Unconfirmed messages: the stream starts again before
		 * them; nothing of this batch enters the FIFO. */
		slot_clear(s);
		return o;
	}
	if (t.returned > 0)
		r->redeclare = 1;
	/* The failures are counted first: the entry holds them back. */
	for (i = 0; i < b->n; i++)
		pending += b->msgs[i].result != MQ_ACKED;
	pending += (unsigned)b->nbad;
	/* BL_FIFO_WAIT keeps room for every batch in flight. */
	id = posfifo_push(&r->pos, s->ends, s->gtid, s->max_seq, pending);
	if (id == 0) {
		/* Cannot happen (BL_FIFO_WAIT); were it to, the stream
		 * starts again from the position rather than lose track. */
		log_warnx("binlog mode: no room to track a finished batch; "
		    "reading again from the position");
		slot_clear(s);
		return BL_READER;
	}
	for (i = 0; i < b->n && o == BL_OK; i++) {
		enum mq_result res = b->msgs[i].result;
		unsigned att = b->rows[i].attempts;

		if (res == MQ_ACKED)
			continue;
		rc = failed_try(r, b->rows[i].seq, &att, res == MQ_REFUSED ?
		    b->refused_why : outbatch_result_reason(res),
		    res != MQ_NACKED, &due);
		if (rc < 0)
			o = BL_DB;
		else if (rc == 1)
			posfifo_done(&r->pos, id);
		else if (retry_add(r, b->rows[i].seq, att, id, due, b, i,
		    NULL) == -1)
			o = BL_DB;
	}
	for (i = 0; i < b->nbad && o == BL_OK; i++) {
		unsigned att = b->bad[i].attempts;

		log_warnx("outbox row %lld cannot be published (%s); it will "
		    "be tried again", (long long)b->bad[i].seq,
		    b->bad[i].reason);
		rc = failed_try(r, b->bad[i].seq, &att, b->bad[i].reason, 1,
		    &due);
		if (rc < 0)
			o = BL_DB;
		else if (rc == 1)
			posfifo_done(&r->pos, id);
		else
			(void)retry_add(r, b->bad[i].seq, att, id, due, NULL,
			    0, b->bad[i].reason);
	}
	/* Every message nacked: the node refuses everything (a quorum
	 * queue's node after its leader died, loop.c): the next broker. */
	if (o == BL_OK && b->n > 0 && t.nacked == b->n &&
	    clock_s() - r->nack_moved >= 5.0 &&
	    mq_move_on(r->mq, "every message of a batch nacked; trying the "
	    "next broker")) {
		r->nack_moved = clock_s();
		o = BL_MQ;
	}
	slot_clear(s);
	return o;
}

static enum bl_out
finish_all(struct brelay *r)
{
	enum bl_out o = BL_OK, f;

	while (r->count > 0) {
		f = finish_oldest(r);
		if (o == BL_OK)
			o = f;
	}
	return o;
}

static struct bslot *
filling(struct brelay *r)
{
	return &r->slot[(r->head + r->count) % r->nslots];
}

/* Sends the batch being filled (its rows, or only its position). */
static enum bl_out
send_filling(struct brelay *r)
{
	struct bslot *s = filling(r);
	enum bl_out o;

	outbatch_seal(&s->b);
	/* Renewed early: the batch goes out well inside its lease (the
	 * fence), however long since the last chores (a table recovery
	 * sends batch after batch without them). */
	if ((o = still_leading(r, 1)) != BL_OK)
		return o;
	s->sent = clock_s();
	s->alone = r->careful > 0;
	r->count++;
	if (s->b.n > 0 && publish_start(r->pub, r->mq, &s->b) == -1)
		return publish_failed(r);
	if (r->careful > 0) {
		r->careful = r->careful > s->b.n + s->b.nbad ?
		    r->careful - s->b.n - s->b.nbad : 0;
		if (r->careful == 0)
			log_info("publishing in batches again");
	}
	return BL_OK;
}

/* Makes room for the batch being filled: the oldest finished when every
 * slot is in flight (one at a time while careful). */
static enum bl_out
make_room(struct brelay *r)
{
	if (r->count >= (r->careful > 0 ? 1 : r->nslots))
		return finish_oldest(r);
	return BL_OK;
}

/* ---- the stream ------------------------------------------------------- */

/* Publishes every row of the table that may never have been published,
 * in pages (the stream's slots, nothing else in flight): with a stored
 * position (purged), only those it does not cover. */
static enum bl_out
scan_table(struct brelay *r, int from_position, long long *rows)
{
	int64_t after = 0;
	enum bl_out o;
	struct bslot *s;
	size_t i, n;

	*rows = 0;
	while (!*r->stop) {
		if ((o = make_room(r)) != BL_OK)
			return o;
		s = filling(r);
		slot_clear(s);
		if (poll_scan(r->db, after, r->careful > 0 ? 1 :
		    r->cfg->batch_size, from_position, &s->b) != DB_OK)
			return BL_DB;
		n = s->b.n + s->b.nbad;
		if (n == 0)
			break;
		for (i = 0; i < s->b.n; i++)
			if (s->b.rows[i].seq > s->max_seq)
				s->max_seq = s->b.rows[i].seq;
		for (i = 0; i < s->b.nbad; i++)
			if (s->b.bad[i].seq > s->max_seq)
				s->max_seq = s->b.bad[i].seq;
		for (i = 0; i < s->b.n; i++)
			s->b.rows[i].attempts = memo_attempts(r,
			    s->b.rows[i].seq, s->b.rows[i].attempts);
		after = s->max_seq;
		*rows += (long long)n;
		if ((o = send_filling(r)) != BL_OK)
			return o;
	}
	slot_clear(filling(r));
	return finish_all(r);
}

/* A table recovery: the binary log's durable end now, the table's
 * rows, then the stream from that end. */
static enum bl_out
recover(struct brelay *r, int first)
{
	char end[POSFIFO_GTID_LEN];
	long long rows = 0;
	enum bl_out o;

	if (binlog_start(r->bl, NULL) != 0)
		return BL_READER;
	snprintf(end, sizeof(end), "%s", binlog_gtid(r->bl));
	/* A transaction at or before that end may be in the binary log
	 * but not yet visible to the scan (the engine commits after the
	 * binary log's sync).  The engine commits in binary log order: once
	 * a commit of ours, after that end, returned, every transaction
	 * before it is visible. */
	if (durable_barrier(r->db, "relay-binlog") != DB_OK)
		return BL_DB;
	if (first)
		log_info("binlog mode: no stored position: publishing the "
		    "outbox rows that are neither published nor parked, then "
		    "reading the binary log after %s", end[0] != '\0' ? end :
		    "its start");
	else
		log_warnx("binlog mode: the stored position %s is not in the "
		    "binary log any more (purged?): republishing every row of "
		    "the outbox table that it may not cover (above its "
		    "last_seq %lld, or created or released less than %d s "
		    "before it) and that is neither published by the poll "
		    "mode nor parked, then reading after %s; the worker "
		    "absorbs the duplicates", r->stored, (long long)r->stored_seq,
		    RETENTION_TXN_MARGIN_S, end);
	relay_metrics_binlog_recovery(first);
	if ((o = scan_table(r, !first, &rows)) != BL_OK)
		return o;
	(void)posfifo_push(&r->pos, 1, end, -1, 0);
	log_info("binlog mode: %lld rows of the table published", rows);
	if (store(r, 1) != DB_OK)
		return BL_DB;
	return BL_OK;
}

/* Starts the stream: from the position, or a recovery. */
static enum bl_out
start_stream(struct brelay *r)
{
	char gtid[POSFIFO_GTID_LEN];
	int64_t seq = -1;
	int rc;

	if (!r->pos.have_pos) {
		rc = position_load(r->db, gtid, sizeof(gtid), &seq);
		if (rc < 0)
			return BL_DB;
		if (rc == 0)
			return recover(r, 1);
		posfifo_set(&r->pos, gtid, seq);
		snprintf(r->stored, sizeof(r->stored), "%s", gtid);
		r->stored_seq = seq;
		relay_metrics_binlog_position(seq);
	}
	if (r->gone) {
		r->gone = 0;
		return recover(r, 0);
	}
	r->streamed = 0;
	log_info("binlog mode: reading the binary log after %s",
	    r->pos.pos[0] != '\0' ? r->pos.pos : "its start");
	if (binlog_start(r->bl, r->pos.pos) != 0)
		return BL_READER;
	return BL_OK;
}

/* A row read (quiet: its read waited BL_QUIET_MS or more): into the
 * batch being filled. */
static enum bl_out
take_row(struct brelay *r, const struct binlog_row *row, int quiet)
{
	struct bslot *s = filling(r);
	unsigned att;
	enum bl_out o;

	if (row->released) {
		/* outbox-admin parked release: tried afresh. */
		log_info("outbox row %lld released from parked; publishing it",
		    (long long)row->seq);
		memo_set(r, row->seq, 0);
	}
	att = memo_attempts(r, row->seq, row->attempts);

	if (s->b.n + s->b.nbad >= (r->careful > 0 ? 1 : s->b.cap) ||
	    outbatch_add(&s->b, row->seq, att, row->id, row->idlen,
	    row->event, row->evlen, row->payload, row->plen, row->trace,
	    row->tracelen) == -1) {
		/* Full in the middle of a transaction: sent as it is. */
		s->ends = 0;
		if ((o = send_filling(r)) != BL_OK ||
		    (o = make_room(r)) != BL_OK)
			return o;
		s = filling(r);
		slot_clear(s);
		(void)outbatch_add(&s->b, row->seq, att, row->id, row->idlen,
		    row->event, row->evlen, row->payload, row->plen,
		    row->trace, row->tracelen);
	}
	if (s->b.n + s->b.nbad == 1) {
		s->first_ms = clock_ms();
		s->quiet = quiet;
	}
	if (row->seq > s->max_seq)
		s->max_seq = row->seq;
	return BL_OK;
}

/* A transaction's end: the batch being filled ends here; sent when the
 * server has nothing more for now, or when it is full. */
static enum bl_out
take_commit(struct brelay *r)
{
	struct bslot *s = filling(r);
	unsigned long when = binlog_commit_time(r->bl);

	s->ends = 1;
	snprintf(s->gtid, sizeof(s->gtid), "%s", binlog_gtid(r->bl));
	if (when > 0)
		relay_metrics_binlog_behind((double)time(NULL) - (double)when);
	if (s->b.n + s->b.nbad == 0)
		return BL_OK;
	if (s->b.n + s->b.nbad < (r->careful > 0 ? 1 : s->b.cap) &&
	    clock_ms() - s->first_ms < BL_FLUSH_MS && binlog_pending(r->bl))
		return BL_OK;
	return send_filling(r);
}

/* Nothing more to read for now: everything in flight finished, a batch
 * that holds only a position filed, the position stored. */
static enum bl_out
settle_idle(struct brelay *r, int force)
{
	struct bslot *s = filling(r);
	enum bl_out o;

	/* A transaction's rows held for the next ones (take_commit): none
	 * came. */
	if (s->b.n + s->b.nbad > 0 && s->ends &&
	    ((o = make_room(r)) != BL_OK || (o = send_filling(r)) != BL_OK))
		return o;
	if ((o = finish_all(r)) != BL_OK)
		return o;
	s = filling(r);
	if (s->b.n + s->b.nbad == 0 && s->ends) {
		(void)posfifo_push(&r->pos, 1, s->gtid, -1, 0);
		slot_clear(s);
	}
	if (store(r, force) != DB_OK)
		return BL_DB;
	return BL_OK;
}

/* 1 when the oldest batch in flight has every confirm (read by
 * mq_service: finish_oldest then waits for nothing). */
static int
oldest_confirmed(const struct brelay *r)
{
	const struct outbatch *b = &r->slot[r->head].b;
	size_t i;

	if (r->count == 0)
		return 0;
	for (i = 0; i < b->n; i++)
		if (b->msgs[i].result == MQ_PENDING)
			return 0;
	return 1;
}

/* The confirms that came, without waiting: the batches they finish are
 * filed, oldest first. */
static enum bl_out
take_confirms(struct brelay *r)
{
	enum bl_out o;

	if (r->count > 0 && mq_service(r->mq) == -1)
		return BL_MQ;
	while (oldest_confirmed(r))
		if ((o = finish_oldest(r)) != BL_OK)
			return o;
	return BL_OK;
}

/* The position stored while the stream is busy too (store_due): a
 * restart then publishes again only the last moments.  A store is a
 * commit (two syncs with the binary log on), so it comes between
 * transactions, never between a transaction's rows and their publish.
 * After a batch sent once the stream had been quiet (a lone request's),
 * it waits for that batch's confirm (the batches confirmed meanwhile are
 * finished here, without waiting), BL_STORE_MS at most: it then comes
 * with the next transaction read, usually the worker's commit that the
 * message brought, in the way of neither. */
static enum bl_out
store_between(struct brelay *r)
{
	struct bslot *s = filling(r);
	enum bl_out o;

	/* Rows being filled (every slot in flight: none is). */
	if (r->count < r->nslots && s->b.n + s->b.nbad > 0)
		return BL_OK;
	if ((o = take_confirms(r)) != BL_OK)
		return o;
	if (!store_due(r, 0)) {
		r->deferred_ms = 0;
		return BL_OK;
	}
	if (r->count > 0 &&
	    r->slot[(r->head + r->count - 1) % r->nslots].quiet) {
		if (r->deferred_ms == 0)
			r->deferred_ms = clock_ms();
		if (clock_ms() - r->deferred_ms < BL_STORE_MS)
			return BL_OK;
	}
	return store_now(r) == DB_OK ? BL_OK : BL_DB;
}

/* Between events: retries, the broker's topology, the lease, the
 * backlog gauges. */
static enum bl_out
chores(struct brelay *r)
{
	long long due = retries_next_due(r);
	enum bl_out o;
	int rc;

	if ((due >= 0 && due <= clock_ms()) || r->redeclare) {
		if ((o = finish_all(r)) != BL_OK)
			return o;
		if (r->redeclare) {
			if (mq_declare_topology(r->mq) == -1)
				return BL_MQ;
			r->redeclare = 0;
		}
		if ((o = run_retries(r)) != BL_OK)
			return o;
	}
	if ((o = still_leading(r, 1)) != BL_OK)
		return o;
	if ((o = store_between(r)) != BL_OK)
		return o;
	/* The broker's heartbeats, while the binary log streams
	 * transactions without outbox rows (nothing is published). */
	if (clock_ms() - r->serviced_ms >= BL_SERVICE_MS) {
		r->serviced_ms = clock_ms();
		if (mq_service(r->mq) == -1)
			return BL_MQ;
	}
	if (clock_ms() - r->checked_ms >= BL_CHECK_MS) {
		r->checked_ms = clock_ms();
		rc = binlog_check_variables(r->db, r->why, sizeof(r->why));
		if (rc == -2)
			return BL_DB;
		if (rc == -1)
			return BL_UNSAFE;
		if (r->unsafe) {
			/* What was committed meanwhile may not be synced:
			 * a commit now syncs the binary log up to here. */
			if (r->stored[0] != '\0' && position_store(r->db,
			    r->stored, r->stored_seq) != DB_OK)
				return BL_DB;
			log_info("binlog mode: the server's settings hold "
			    "again");
		}
		r->unsafe = 0;
	}
	if (backlog_due(&r->backlog, clock_ms()) &&
	    backlog_step(&r->backlog, r->db, clock_ms()) != DB_OK)
		log_debug("backlog sample: %s", db_error(r->db));
	return BL_OK;
}

/* The retry list is full: the reader waits, the retries go on. */
static enum bl_out
wait_for_retries(struct brelay *r)
{
	long long due;
	enum bl_out o;

	if ((o = settle_idle(r, 0)) != BL_OK)
		return o;
	due = retries_next_due(r) - clock_ms();
	if (due > 0)
		backoff_sleep(due > 1000 ? 1000 : (unsigned)due, r->stop);
	if (mq_service(r->mq) == -1)
		return BL_MQ;
	return chores(r);
}

/* Nothing more to read for now while batches are in flight: their
 * confirms are taken in as they come (each batch filed, counted, its
 * publish time measured; one that holds only a position at once) until
 * the binary log has more, nothing is in flight, or BL_SERVICE_MS
 * passed.  Blocking in the read instead would leave the last batches of
 * a burst unconfirmed until the next event, a heartbeat away.  The
 * position is not stored here: a lone request's store waits for
 * store_between (chores, between events or between the slices of a
 * quiet log's wait). */
static enum bl_out
await_log(struct brelay *r)
{
	long long end = clock_ms() + BL_SERVICE_MS;
	enum bl_out o;
	int w;

	while (r->count > 0 && !*r->stop && !binlog_pending(r->bl)) {
		if ((o = take_confirms(r)) != BL_OK)
			return o;
		if (r->count == 0 || clock_ms() >= end)
			break;
		w = mq_wait(r->mq, binlog_fd(r->bl), (int)(end - clock_ms()));
		if (w == -1)
			return BL_MQ;
		if (w == 0 || (w & MQ_WAIT_FD))
			break;
	}
	return BL_OK;
}

static enum bl_out
stream(struct brelay *r)
{
	struct binlog_row row;
	enum bl_out o;
	long long t = -1;
	int rc;

	/* The settings again (a leader may have waited long for its
	 * lock), before the recovery publishes anything. */
	r->checked_ms = 0;
	if ((o = chores(r)) != BL_OK || (o = start_stream(r)) != BL_OK)
		return o;
	while (!*r->stop) {
		if ((o = chores(r)) != BL_OK)
			return o;
		if (retries_full(r)) {
			if ((o = wait_for_retries(r)) != BL_OK)
				return o;
			continue;
		}
		if ((o = make_room(r)) != BL_OK || (o = await_log(r)) != BL_OK)
			return o;
		/* Read only what is at hand, the stop looked at every slice;
		 * a silence longer than a heartbeat and a slice is left to
		 * the read's own timeout (a dead server). */
		if (t < 0)
			t = clock_ms();
		if (clock_ms() - t < r->cfg->binlog_heartbeat_ms +
		    BL_QUIET_SLICE_MS && binlog_wait(r->bl,
		    BL_QUIET_SLICE_MS) == 0)
			continue;
		rc = binlog_next(r->bl, &row);
		switch (rc) {
		case BINLOG_ROW:
			relay_metrics_binlog_read(1, 1);
			r->streamed++;
			o = take_row(r, &row, clock_ms() - t >= BL_QUIET_MS);
			break;
		case BINLOG_COMMIT:
			relay_metrics_binlog_read(1, 0);
			o = take_commit(r);
			break;
		case BINLOG_HEARTBEAT:
			relay_metrics_binlog_read(1, 0);
			relay_metrics_binlog_behind(0);
			link_ok(&r->rdl);
			o = settle_idle(r, 1);
			if (o == BL_OK && mq_service(r->mq) == -1)
				o = BL_MQ;
			break;
		case BINLOG_EGONE:
			return BL_GONE;
		default:
			return BL_READER;
		}
		t = -1;
		if (o != BL_OK)
			return o;
		link_ok(&r->rdl);
	}
	return BL_STOP;
}

/* After leading stopped: the confirms that can still come collected, the
 * position stored, everything else dropped (read again from the
 * position). */
static void
settle(struct brelay *r, enum bl_out why)
{
	struct bslot *s;

	(void)finish_all(r);
	s = filling(r);
	if (s->b.n + s->b.nbad == 0 && s->ends)
		(void)posfifo_push(&r->pos, 1, s->gtid, -1, 0);
	slot_clear(s);
	/* A relay that lost the lock leaves the position to the leader. */
	if (why != BL_DB && why != BL_LOST_LOCK && store(r, 1) != DB_OK)
		log_debug("binlog mode: position not stored: %s",
		    db_error(r->db));
	retries_clear(r);
	posfifo_clear(&r->pos);
	r->head = r->count = 0;
}

/* ---- leading and standing by ------------------------------------------ */

static void
pause_serviced(struct brelay *r, unsigned ms)
{
	link_pause(&r->mql, r->mq, ms, r->stop);
}

static int
mq_ready(struct brelay *r)
{
	if (mq_is_connected(r->mq))
		return 0;
	if (mq_connect(r->mq, 1) == -1 || mq_declare_topology(r->mq) == -1) {
		health_broker(-1);
		return -1;
	}
	health_broker(mq_host_index(r->mq, NULL));
	link_ok(&r->mql);
	return 0;
}

/* Takes the lock or waits for it a moment.  1 leading, 0 standing by,
 * -1 the database failed. */
static int
contend(struct brelay *r, int *said)
{
	int rc, was_leading = 0;

	if (r->lock_session != 0) {
		rc = lock_held(r);
		if (rc == 1)
			return 1;
		if (rc < 0)
			return -1;
		/* Its session ended (a restart of the server, a cut, or
		 * another relay ended it while this one was frozen): taken
		 * again below, unless another relay was first. */
		r->lock_session = 0;
		relay_metrics_binlog_leader(0);
		was_leading = 1;
	}
	/* The first try does not wait: a relay that finds the lock taken
	 * says at once that it stands by. */
	rc = lock_take(r, *said ? BL_STANDBY_WAIT_S : 0);
	if (rc < 0)
		return -1;
	link_ok(&r->dbl);
	if (rc == 0) {
		/* Found here rather than before a publish (still_leading)
		 * when a broker failure came first: said all the same. */
		if (was_leading)
			log_warnx("binlog mode: lost the leader lock %s (the "
			    "session holding it ended, another relay holds "
			    "it now); publishing stops", r->lock_name);
		if (!*said)
			log_info("binlog mode: standby, waiting for the leader "
			    "lock %s", r->lock_name);
		*said = 1;
		return 0;
	}
	*said = 0;
	relay_metrics_binlog_leader(1);
	relay_metrics_binlog_takeover();
	log_info("binlog mode: leading (lock %s)", r->lock_name);
	/* What another leader stored meanwhile is read again. */
	posfifo_forget(&r->pos);
	r->stored[0] = '\0';
	r->stored_seq = -1;
	return 1;
}

static void
run(struct brelay *r)
{
	int said = 0, rc;
	enum bl_out o;

	while (!*r->stop) {
		if (mq_ready(r) == -1) {
			pause_serviced(r, link_failed(&r->mql,
			    mq_error(r->mq)));
			continue;
		}
		rc = contend(r, &said);
		if (rc < 0) {
			pause_serviced(r, link_failed(&r->dbl,
			    db_error(r->db)));
			continue;
		}
		if (rc == 0) {
			if (mq_service(r->mq) == -1)
				(void)link_failed(&r->mql, mq_error(r->mq));
			/* A standby's gauges too: without a leader they still
			 * show the backlog growing (the alerts read the max). */
			if (backlog_due(&r->backlog, clock_ms()) &&
			    backlog_step(&r->backlog, r->db, clock_ms()) !=
			    DB_OK)
				log_debug("backlog sample: %s", db_error(r->db));
			continue;
		}
		o = stream(r);
		settle(r, o);
		switch (o) {
		case BL_STOP:
		case BL_OK:
			break;
		case BL_LOST_LOCK:
			said = 0;
			break;
		case BL_REFUSED:
			log_warnx("the broker refused a message (%s); reading "
			    "again from the position, one message at a time, "
			    "to find which", mq_error(r->mq));
			/* The one refused is among the rows read since the
			 * stream started (the position is before them). */
			r->careful = r->streamed > 0 ? r->streamed : 1;
			break;
		case BL_GONE:
			r->gone = 1;
			break;
		case BL_DB:
			pause_serviced(r, link_failed(&r->dbl,
			    db_error(r->db)));
			break;
		case BL_MQ:
			pause_serviced(r, link_failed(&r->mql,
			    mq_error(r->mq)));
			break;
		case BL_READER:
			pause_serviced(r, link_failed(&r->rdl,
			    binlog_error(r->bl)));
			break;
		case BL_UNSAFE:
			/* Nothing is published while the server may send
			 * events it has not synced. */
			if (!r->unsafe)
				log_warnx("%s; not publishing until it does "
				    "(checked every %d s)", r->why,
				    BL_CHECK_MS / 1000);
			r->unsafe = 1;
			health_set(SERVER_DB, 0);
			pause_serviced(r, BL_CHECK_MS);
			break;
		}
	}
}

/* Once, before anything else: the server serves this mode, on the
 * reader's login.  0, 1 asked to stop meanwhile, -1 refused (said). */
static int
check_server(struct brelay *r)
{
	struct db_params p = r->rp;
	char why[512];
	db_conn *c;
	int rc = -1;

	/* The reader's login has no table grant: no database. */
	p.name[0] = '\0';
	if ((c = db_new(&p)) == NULL)
		return -1;
	while (!*r->stop && db_connect(c) != DB_OK)
		pause_serviced(r, link_failed(&r->dbl, db_error(c)));
	if (*r->stop)
		rc = 1;
	else if (binlog_check_settings(c, why, sizeof(why)) == -1 ||
	    binlog_check_retention(c, r->cfg->retention_hours, why,
	    sizeof(why)) == -1)
		log_warnx("%s", why);
	else
		rc = 0;
	if (rc == 0)
		link_ok(&r->dbl);
	db_free(c);
	return rc;
}

static void
brelay_free(struct brelay *r)
{
	int i;

	retries_clear(r);
	free(r->retries);
	posfifo_free(&r->pos);
	outbatch_free(&r->rb);
	for (i = 0; i < RELAY_INFLIGHT_MAX; i++)
		outbatch_free(&r->slot[i].b);
	binlog_free(r->bl);
	db_free(r->db);
	publisher_free(r->pub);
	mq_free(r->mq);
}

int
relay_run_binlog(const struct relay_config *cfg, volatile sig_atomic_t *stop)
{
	static struct brelay r; /* large (the FIFO's positions): not on the
	                         * stack; one per process */
	unsigned server_id = (unsigned)cfg->binlog_server_id;
	struct pruner *pruner;
	char sql[128];
	int i, failed, rc = -1;

	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.stop = stop;
	relay_binlog_params(cfg, &r.rp);
	relay_metrics_binlog_init();
	link_init(&r.dbl, "database", SERVER_DB,
	    (unsigned)cfg->reconnect_max_ms);
	link_init(&r.mql, "broker", SERVER_MQ,
	    (unsigned)cfg->reconnect_max_ms);
	link_init(&r.rdl, "binary log", SERVER_DB,
	    (unsigned)cfg->reconnect_max_ms);
	backoff_init(&r.retry_bo, (unsigned)cfg->retry_base_ms,
	    (unsigned)cfg->retry_max_ms);
	if (server_id == 0)
		server_id = 1000000u + (unsigned)((clock_ms() ^
		    ((long long)getpid() << 16)) % 1000000000LL);
	snprintf(r.lock_name, sizeof(r.lock_name), "%.50s.outbox_relay",
	    cfg->db.name);
	r.mq = mq_new(&cfg->mq);
	r.pub = publisher_new(cfg);
	r.db = db_new(&cfg->db);
	r.bl = binlog_new(&r.rp, "outbox", server_id,
	    (unsigned)cfg->binlog_heartbeat_ms);

	r.retries = calloc(BL_RETRY_CAP, sizeof(*r.retries));
	if (r.mq == NULL || r.pub == NULL || r.db == NULL || r.bl == NULL ||
	    posfifo_init(&r.pos, BL_FIFO_MAX) == -1 || r.retries == NULL ||
	    outbatch_init(&r.rb, 1) == -1)
		goto nomem;
	outbatch_set_max_body(&r.rb, (size_t)cfg->max_message_bytes);
	r.nslots = cfg->inflight_batches;
	for (i = 0; i < r.nslots; i++) {
		if (outbatch_init(&r.slot[i].b, (size_t)cfg->batch_size) == -1)
			goto nomem;
		outbatch_set_max_body(&r.slot[i].b,
		    (size_t)cfg->max_message_bytes);
		r.slot[i].max_seq = -1;
	}
	/* The server ends the session of a frozen leader, and frees its
	 * lock, after RELAY_LEADER_TIMEOUT_S without a statement. */
	snprintf(sql, sizeof(sql), "SET SESSION wait_timeout = %d",
	    cfg->leader_timeout_s);
	db_set_session(r.db, sql);
	mq_set_op_timeout(r.mq, cfg->confirm_timeout_ms);
	mq_watch_stop(stop);
	backlog_init(&r.backlog, clock_ms());
	/* published_at stays NULL here: both read the stored position. */
	backlog_binlog_mode(&r.backlog, 1);
	r.stored_seq = -1;
	relay_metrics_binlog_leader(0);
	switch (check_server(&r)) {
	case 0:
		log_info("binlog mode: the server's settings hold; replica "
		    "server id %u", server_id);
		/* The retention's own thread and connection (a standby's
		 * too: its deletes follow the stored position). */
		pruner = retention_start(cfg, 1, &failed);
		if (!failed) {
			run(&r);
			rc = 0;
		}
		pruner_free(pruner);
		break;
	case 1:
		rc = 0;
		break;
	default:
		break;
	}
	goto out;
nomem:
	log_warnx("out of memory");
out:
	relay_metrics_binlog_leader(0);
	brelay_free(&r);
	return rc;
}
