/*
 * inbatch.c - bookkeeping of the deliveries of one transaction (inbatch.h).
 */
#include "inbatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbox_retention.h"

int
inbatch_init(struct inbatch *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->items = calloc(cap, sizeof(*b->items));
	b->sorted = calloc(cap, sizeof(*b->sorted));
	if (b->items == NULL || b->sorted == NULL) {
		free(b->items);
		free(b->sorted);
		memset(b, 0, sizeof(*b));
		return -1;
	}
	b->cap = cap;
	return 0;
}

static void
item_release(struct item *it)
{
	if (it->h != NULL && it->data != NULL)
		it->h->free_data(it->data);
	msg_event_clear(&it->ev);
	mq_delivery_free(&it->d);
	memset(it, 0, sizeof(*it));
}

void
inbatch_clear(struct inbatch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		item_release(&b->items[i]);
	b->n = 0;
}

void
inbatch_free(struct inbatch *b)
{
	if (b->items != NULL)
		inbatch_clear(b);
	free(b->items);
	free(b->sorted);
	memset(b, 0, sizeof(*b));
}

int
inbatch_full(const struct inbatch *b)
{
	return b->n >= b->cap;
}

int
inbatch_add(struct inbatch *b, struct mq_delivery *d)
{
	struct item *it;

	if (inbatch_full(b))
		return -1;
	it = &b->items[b->n++];
	memset(it, 0, sizeof(*it));
	it->d = *d;
	memset(d, 0, sizeof(*d));
	return 0;
}

void
inbatch_set_bad(struct item *it, const char *reason)
{
	if (it->h != NULL && it->data != NULL)
		it->h->free_data(it->data);
	it->data = NULL;
	it->h = NULL;
	it->state = ITEM_BAD;
	snprintf(it->reason, sizeof(it->reason), "%s", reason);
}

void
inbatch_decode_item(struct item *it)
{
	char reason[INBATCH_REASON_MAX];

	if (msg_decode(it->d.body, it->d.len, &it->ev, reason,
	    sizeof(reason)) == -1) {
		inbatch_set_bad(it, reason);
		it->dead = DEAD_MALFORMED;
		return;
	}
	if ((it->h = handler_find(it->ev.event_name)) == NULL) {
		snprintf(reason, sizeof(reason), "no handler for event \"%s\"",
		    it->ev.event_name);
		inbatch_set_bad(it, reason);
		it->dead = DEAD_UNKNOWN_EVENT;
		return;
	}
	if (it->h->decode(it->ev.payload_json, &it->data, reason,
	    sizeof(reason)) == -1) {
		inbatch_set_bad(it, reason);
		it->dead = DEAD_BAD_PAYLOAD;
		return;
	}
	it->state = ITEM_OK;
}

static int
item_cmp_id(const void *a, const void *b)
{
	const struct item *x = *(const struct item *const *)a;
	const struct item *y = *(const struct item *const *)b;
	int c = memcmp(x->ev.id, y->ev.id, UID_LEN);

	if (c != 0)
		return c;
	/* Same id: the first delivered comes first. */
	return x->d.tag < y->d.tag ? -1 : x->d.tag > y->d.tag;
}

/* Marks every repeat of an id after its first delivery in the batch. */
static void
batch_mark_repeats(struct inbatch *b)
{
	struct item **v = b->sorted;
	size_t i, n = 0;

	for (i = 0; i < b->n; i++) {
		if (b->items[i].state == ITEM_OK)
			v[n++] = &b->items[i];
	}
	qsort(v, n, sizeof(*v), item_cmp_id);
	for (i = 1; i < n; i++) {
		if (memcmp(v[i]->ev.id, v[i - 1]->ev.id, UID_LEN) == 0)
			v[i]->dup_in_batch = 1;
	}
}

/* A message too old for the inbox retention becomes ITEM_BAD. */
static void
item_check_age(struct item *it, int retention_hours, int64_t now_ms)
{
	char reason[INBATCH_REASON_MAX];
	struct msg_age a;

	inbox_age(it->ev.id, strlen(it->ev.id), it->d.timestamp, now_ms, &a);
	if (!inbox_too_old(&a, retention_hours, reason, sizeof(reason)))
		return;
	inbatch_set_bad(it, reason);
	it->dead = DEAD_TOO_OLD;
}

size_t
inbatch_prepare(struct inbatch *b, int retention_hours, int64_t now_ms)
{
	size_t i, bad = 0;

	for (i = 0; i < b->n; i++) {
		if (b->items[i].state == ITEM_PENDING)
			inbatch_decode_item(&b->items[i]);
		/* Before the repeats are marked: a repeat of a message
		 * refused here must not count as its duplicate. */
		if (b->items[i].state == ITEM_OK)
			item_check_age(&b->items[i], retention_hours, now_ms);
		bad += b->items[i].state == ITEM_BAD;
	}
	batch_mark_repeats(b);
	return bad;
}

size_t
inbatch_candidates(struct inbatch *b, struct item **out)
{
	size_t i, n = 0;

	for (i = 0; i < b->n; i++) {
		if (b->items[i].state == ITEM_OK && !b->items[i].dup_in_batch)
			out[n++] = &b->items[i];
	}
	return n;
}

uint64_t
inbatch_ack_tag(const struct inbatch *b)
{
	uint64_t tag = 0;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (!b->items[i].settled && b->items[i].d.tag > tag)
			tag = b->items[i].d.tag;
	}
	return tag;
}
