/*
 * unmarked.c - confirmed rows whose mark failed (see unmarked.h): a
 * sorted array, searched per row locked only while it is not empty.
 */
#include "unmarked.h"

#include <stdlib.h>
#include <string.h>

static int
cmp_seq(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int
unmarked_init(struct unmarked *u, size_t cap)
{
	memset(u, 0, sizeof(*u));
	if ((u->seq = calloc(cap > 0 ? cap : 1, sizeof(*u->seq))) == NULL)
		return -1;
	u->cap = cap;
	return 0;
}

void
unmarked_free(struct unmarked *u)
{
	free(u->seq);
	memset(u, 0, sizeof(*u));
}

/* Sorts and drops repeats. */
static void
unmarked_sort(struct unmarked *u)
{
	size_t j, k;

	qsort(u->seq, u->n, sizeof(*u->seq), cmp_seq);
	for (j = 1, k = u->n > 0; j < u->n; j++) {
		if (u->seq[j] != u->seq[k - 1])
			u->seq[k++] = u->seq[j];
	}
	u->n = k;
}

void
unmarked_add(struct unmarked *u, const int64_t *seqs, size_t n)
{
	size_t i, k;

	if (u->cap == 0)
		return;
	for (i = 0; i < n; i++) {
		if (u->n == u->cap) {
			/* Forget the lowest half: the oldest rows. */
			unmarked_sort(u);
			k = (u->n + 1) / 2;
			memmove(u->seq, u->seq + k, (u->n - k) * sizeof(*u->seq));
			u->n -= k;
		}
		u->seq[u->n++] = seqs[i];
	}
	unmarked_sort(u);
}

void
unmarked_del(struct unmarked *u, const int64_t *seqs, size_t n)
{
	size_t i, j, k;

	if (u->n == 0)
		return;
	/* u holds only the rows of failed marks: a plain walk will do. */
	for (j = 0, k = 0; j < u->n; j++) {
		for (i = 0; i < n && seqs[i] != u->seq[j]; i++)
			;
		if (i == n)
			u->seq[k++] = u->seq[j];
	}
	u->n = k;
}

void
unmarked_forget_first(struct unmarked *u, size_t n)
{
	if (n >= u->n) {
		u->n = 0;
		return;
	}
	memmove(u->seq, u->seq + n, (u->n - n) * sizeof(*u->seq));
	u->n -= n;
}

int
unmarked_has(const struct unmarked *u, int64_t seq)
{
	return u->n > 0 && bsearch(&seq, u->seq, u->n, sizeof(*u->seq),
	    cmp_seq) != NULL;
}
