/*
 * inbatch.h - the deliveries of one transaction and what the worker knows
 * about each: decoded or not, its handler, duplicate or new, settled on
 * its own (dead-lettered) or left to the batch's single multiple-ack.
 *
 * Pure bookkeeping: no I/O.  Deliveries are added in the order the broker
 * sent them, so delivery tags grow along the array.
 */
#ifndef OUTBOX_WORKER_INBATCH_H
#define OUTBOX_WORKER_INBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "handlers.h"
#include "mq.h"
#include "msg.h"
#include "worker_metrics.h"

#define INBATCH_REASON_MAX 256

enum item_state {
	ITEM_PENDING = 0, /* added, not decoded yet */
	ITEM_OK,          /* decoded, has a handler: goes to the database */
	ITEM_BAD,         /* cannot be handled: to the dead-letter queue */
};

struct item {
	struct mq_delivery d;      /* owned */
	enum item_state state;
	struct msg_event ev;       /* decoded envelope, if it was (owned) */
	const struct handler *h;   /* ITEM_OK */
	void *data;                /* ITEM_OK: the handler's decoded payload */
	char reason[INBATCH_REASON_MAX]; /* ITEM_BAD: why */
	enum dead_class dead;      /* ITEM_BAD: the class of reason */
	int dup_in_batch;   /* ITEM_OK: same id earlier in this batch */
	int seen_before;    /* ITEM_OK: already in processed_messages (set by
	                     * each database attempt) */
	int settled;        /* acked or rejected on its own */
};

struct inbatch {
	struct item *items;
	size_t n;
	size_t cap; /* fixed at init: the most deliveries of a batch */
	struct item **sorted; /* scratch for finding repeats (cap) */
};

/* Room for cap deliveries.  0 or -1 (out of memory). */
int inbatch_init(struct inbatch *b, size_t cap);
/* Releases everything, deliveries included. */
void inbatch_free(struct inbatch *b);
/* Releases the deliveries and decoded data; the batch is empty. */
void inbatch_clear(struct inbatch *b);
int inbatch_full(const struct inbatch *b);

/* Takes ownership of *d (which is zeroed).  -1 when full. */
int inbatch_add(struct inbatch *b, struct mq_delivery *d);

/* Decodes every pending item: envelope (msg_decode), handler, payload;
 * an item that fails becomes ITEM_BAD with its reason, and so does one
 * too old to be applied under an inbox retention of retention_hours at
 * now_ms (Unix ms; common/inbox_age.h).  Then marks the repeats of a
 * message id within the batch (dup_in_batch).  Returns the number of
 * ITEM_BAD items. */
size_t inbatch_prepare(struct inbatch *b, int retention_hours,
    int64_t now_ms);

/* Decodes one delivery body into it (used by batch_prepare). */
void inbatch_decode_item(struct item *it);

/* Marks it ITEM_BAD with reason (releasing decoded data). */
void inbatch_set_bad(struct item *it, const char *reason);

/* The items the database must see: ITEM_OK and not dup_in_batch, in
 * order, into out (room for b->n).  Returns their number. */
size_t inbatch_candidates(struct inbatch *b, struct item **out);

/* The tag for the batch's one multiple-ack: the highest tag of the items
 * not settled on their own; 0 when there is none. */
uint64_t inbatch_ack_tag(const struct inbatch *b);

#endif
