/*
 * posfifo.h - the binlog mode's position (binlog_loop.c): the batches
 * finished in commit order, each with the position after it (the GTID
 * list after its last transaction, when it ended one), its highest seq,
 * and how many of its messages still wait for a retry.  The position
 * moves over the entries at the front whose messages are all confirmed
 * or parked, never past one that is not.  Pure bookkeeping.
 */
#ifndef OUTBOX_RELAY_POSFIFO_H
#define OUTBOX_RELAY_POSFIFO_H

#include <stddef.h>
#include <stdint.h>

#define POSFIFO_GTID_LEN 1024

struct posfifo_entry {
	uint64_t id;
	int has_gtid;
	char gtid[POSFIFO_GTID_LEN];
	int64_t max_seq;      /* -1: no row */
	unsigned pending;     /* messages not yet confirmed or parked */
};

struct posfifo {
	struct posfifo_entry *e;
	size_t cap, head, len;
	uint64_t next_id;
	int have_pos;         /* pos holds a position */
	char pos[POSFIFO_GTID_LEN]; /* everything before it is done */
	int64_t pos_seq;      /* the highest seq done up to it, -1: none */
	int64_t carry;        /* the highest seq of entries passed since */
};

/* Room for cap entries.  0, or -1 when out of memory. */
int posfifo_init(struct posfifo *f, size_t cap);
void posfifo_free(struct posfifo *f);
/* Drops every entry; the position stays. */
void posfifo_clear(struct posfifo *f);
/* Sets the position (a stored one, read at start); no entry. */
void posfifo_set(struct posfifo *f, const char *gtid, int64_t seq);
/* Drops the position (another relay may have moved it). */
void posfifo_forget(struct posfifo *f);

/* Appends a finished batch: the position after it (has_gtid), its
 * highest seq, its messages not yet done.  Merged into the last entry
 * when neither holds a pending message (and the last one has no position
 * if this one has none).  Its id (the entry's), or 0 when
 * every entry is in use (the caller waits before reading more). */
uint64_t posfifo_push(struct posfifo *f, int has_gtid, const char *gtid,
    int64_t max_seq, unsigned pending);
/* One pending message of entry id is done (confirmed or parked); an id
 * no longer there (cleared) is ignored. */
void posfifo_done(struct posfifo *f, uint64_t id);
/* Moves the position over the entries at the front that have nothing
 * pending.  1 when it moved, else 0. */
int posfifo_advance(struct posfifo *f);

#endif
