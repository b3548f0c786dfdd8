/*
 * unmarked.h - outbox rows the broker confirmed but the database did not
 * let the relay mark published (a refused UPDATE or COMMIT, a commit
 * without a reply that did not commit).  When the relay locks such a row
 * again, it marks it without publishing it again: a database that
 * refuses writes costs retries of the mark, not a copy of the message
 * per retry.  Pure bookkeeping, bounded: when full, the oldest half is
 * forgotten (those rows are then published again: at-least-once).
 */
#ifndef OUTBOX_RELAY_UNMARKED_H
#define OUTBOX_RELAY_UNMARKED_H

#include <stddef.h>
#include <stdint.h>

struct unmarked {
	int64_t *seq;   /* sorted */
	size_t n, cap;
};

/* Room for cap rows.  0, or -1 when out of memory. */
int unmarked_init(struct unmarked *u, size_t cap);
void unmarked_free(struct unmarked *u);
/* Remembers seqs[0..n). */
void unmarked_add(struct unmarked *u, const int64_t *seqs, size_t n);
/* Forgets seqs[0..n) (their marks went through). */
void unmarked_del(struct unmarked *u, const int64_t *seqs, size_t n);
/* Forgets the n lowest seqs (u->seq[0..n): their marks went through). */
void unmarked_forget_first(struct unmarked *u, size_t n);
/* 1 when seq was confirmed and is not marked yet. */
int unmarked_has(const struct unmarked *u, int64_t seq);

#endif
