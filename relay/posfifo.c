/*
 * posfifo.c - the binlog mode's position (posfifo.h).
 */
#include "posfifo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
posfifo_init(struct posfifo *f, size_t cap)
{
	memset(f, 0, sizeof(*f));
	f->pos_seq = f->carry = -1;
	if ((f->e = calloc(cap, sizeof(*f->e))) == NULL)
		return -1;
	f->cap = cap;
	return 0;
}

void
posfifo_free(struct posfifo *f)
{
	free(f->e);
	f->e = NULL;
	f->cap = f->len = 0;
}

void
posfifo_clear(struct posfifo *f)
{
	f->head = f->len = 0;
	f->carry = -1;
}

void
posfifo_set(struct posfifo *f, const char *gtid, int64_t seq)
{
	snprintf(f->pos, sizeof(f->pos), "%s", gtid);
	f->pos_seq = seq;
	f->have_pos = 1;
}

void
posfifo_forget(struct posfifo *f)
{
	f->have_pos = 0;
	f->pos[0] = '\0';
	f->pos_seq = f->carry = -1;
}

static struct posfifo_entry *
at(struct posfifo *f, size_t i)
{
	return &f->e[(f->head + i) % f->cap];
}

uint64_t
posfifo_push(struct posfifo *f, int has_gtid, const char *gtid,
    int64_t max_seq, unsigned pending)
{
	struct posfifo_entry *e = f->len > 0 ? at(f, f->len - 1) : NULL;

	/* Merged only when neither holds a pending message, and never a
	 * batch without a position into an entry with one (its rows would
	 * count as done up to that position). */
	if (e == NULL || e->pending > 0 || pending > 0 ||
	    (!has_gtid && e->has_gtid)) {
		if (f->len == f->cap)
			return 0;
		e = at(f, f->len++);
		memset(e, 0, sizeof(*e));
		e->id = ++f->next_id;
		e->max_seq = -1;
	}
	if (has_gtid) {
		e->has_gtid = 1;
		snprintf(e->gtid, sizeof(e->gtid), "%s", gtid);
	}
	if (max_seq > e->max_seq)
		e->max_seq = max_seq;
	e->pending += pending;
	return e->id;
}

void
posfifo_done(struct posfifo *f, uint64_t id)
{
	size_t i;

	for (i = 0; i < f->len; i++)
		if (at(f, i)->id == id) {
			if (at(f, i)->pending > 0)
				at(f, i)->pending--;
			return;
		}
}

int
posfifo_advance(struct posfifo *f)
{
	struct posfifo_entry *e;
	int moved = 0;

	while (f->len > 0 && (e = at(f, 0))->pending == 0) {
		if (e->max_seq > f->carry)
			f->carry = e->max_seq;
		/* The seq moves with a position only, so that the two
		 * stored together say the same. */
		if (e->has_gtid) {
			snprintf(f->pos, sizeof(f->pos), "%s", e->gtid);
			f->have_pos = 1;
			if (f->carry > f->pos_seq)
				f->pos_seq = f->carry;
			moved = 1;
		}
		f->head = (f->head + 1) % f->cap;
		f->len--;
	}
	return moved;
}
