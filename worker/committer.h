/*
 * committer.h - the database side of the worker, on a thread of its own.
 *
 * The consumer hands each committer one batch at a time (it runs
 * WORKER_DB_POOL of them, each on its own connection); the thread runs
 * its transaction (inbox.c) and, while the database is down, retries it
 * with capped exponential backoff and jitter until it commits or the
 * consumer cancels.  Meanwhile the consumer collects and decodes the
 * next batch: the database round trips of batch k overlap the broker
 * reads of batch k+1, and another committer's transaction.  The thread
 * owns the batch from committer_submit until committer_wait reports on
 * it; the consumer acks it afterwards.
 *
 * A message whose data the database refuses (too long, a trigger...) is
 * found by retrying the batch one message per transaction; it comes back
 * as ITEM_BAD with the reason, for the consumer to dead-letter.
 */
#ifndef OUTBOX_WORKER_COMMITTER_H
#define OUTBOX_WORKER_COMMITTER_H

#include "inbatch.h"
#include "config.h"

enum commit_rc {
	COMMIT_OK,        /* committed (seen_before / ITEM_BAD tell the rest) */
	COMMIT_CANCELLED, /* rolled back on committer_cancel: leave unacked */
};

struct committer;

/* Opens the database connection and starts the thread, which writes 1
 * to the eventfd done_fd with each verdict (the consumer polls it with
 * the broker's socket).  NULL on failure (logged). */
struct committer *committer_new(const struct worker_config *cfg,
    int done_fd);
/* Cancels what runs, joins the thread, closes.  NULL is a no-op. */
void committer_free(struct committer *c);

/* Hands b over; the previous batch must have been waited for. */
void committer_submit(struct committer *c, struct inbatch *b);
/* Waits up to timeout_ms (0: does not wait) for the verdict on the
 * batch handed over.  1 with *rc set (the batch is the caller's again),
 * 0 not yet. */
int committer_wait(struct committer *c, int timeout_ms, enum commit_rc *rc);
/* Asks the thread to stop retrying the current batch (stop requested, or
 * its deliveries are gone): it rolls back and reports COMMIT_CANCELLED,
 * unless the transaction in progress commits first. */
void committer_cancel(struct committer *c);

#endif
