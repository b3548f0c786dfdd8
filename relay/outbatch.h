/*
 * outbatch.h - one batch of outbox rows on its way to the broker: the rows,
 * their message bodies, the outcome of each publish, and the log line.
 * Pure bookkeeping: no database, no broker.
 *
 * Rows that can be published are kept in rows[] with their message in
 * msgs[] at the same index (the array mq_publish_batch takes).  Rows that
 * cannot be turned into a message (an id that is not a UUID, an invalid
 * event name) go to bad[] with the reason, to be rescheduled like a
 * refused message.
 */
#ifndef OUTBOX_RELAY_OUTBATCH_H
#define OUTBOX_RELAY_OUTBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "mq.h"
#include "msg.h"
#include "trace.h"
#include "uid.h"

/* Most bytes of message bodies held by one batch; rows past it wait for
 * the next batch. */
#define OUTBATCH_BODIES_MAX (64u * 1024 * 1024)

struct outbatch_row {
	int64_t seq;
	unsigned attempts;
	char id[UID_LEN + 1];
	char event[MSG_EVENT_NAME_MAX + 1];
	char trace[TRACE_LEN + 1]; /* the message's traceparent, or "" */
	double created; /* the row's created_at (epoch seconds), 0: unknown */
	size_t off; /* body in bodies.data[off .. off + len) */
	size_t len;
};

struct outbatch_bad {
	int64_t seq;
	unsigned attempts;
	char reason[128];
};

struct outbatch {
	size_t cap;              /* rows at most */
	size_t n;                /* rows[] and msgs[] in use */
	struct outbatch_row *rows;
	struct mq_msg *msgs;
	size_t nbad;
	struct outbatch_bad *bad;
	/* Rows the broker confirmed in an earlier try whose mark failed
	 * (relay/unmarked.h): marked published without a new publish. */
	size_t nsent;
	int64_t *sent;
	size_t max_body;         /* RELAY_MAX_MESSAGE_BYTES */
	char refused_why[160];   /* the broker's words for MQ_REFUSED */
	struct buf bodies;
	int full;                /* a row did not fit: more rows are waiting */
};

/* Allocates room for cap rows.  0, or -1 when out of memory (then
 * batch_free is still safe). */
int outbatch_init(struct outbatch *b, size_t cap);
/* Frees everything; safe on a zeroed or failed batch. */
void outbatch_free(struct outbatch *b);
/* Bodies larger than max_body become bad[] rows (OUTBATCH_BODIES_MAX
 * until set). */
void outbatch_set_max_body(struct outbatch *b, size_t max_body);
/* Empties the batch, keeping its memory. */
void outbatch_reset(struct outbatch *b);

/* Adds one outbox row; payload is the row's JSON text; trace (may be
 * NULL) the traceparent stored with the row: a valid one is continued
 * (same trace, a span of the relay's own), anything else is dropped.
 * Returns 0 when the row was added to rows[] or bad[], -1 when it did not
 * fit (bodies over OUTBATCH_BODIES_MAX, or cap rows already): b->full is set
 * and the row is left for the next batch. */
int outbatch_add(struct outbatch *b, int64_t seq, unsigned attempts,
    const char *id, size_t idlen, const char *event, size_t evlen,
    const char *payload, size_t plen, const char *trace, size_t tracelen);

/* Adds a message built by an earlier outbatch_add (row, with the body
 * of row->len bytes that was at bodies.data + row->off): the same
 * message again, for a retry.  0, or -1 when the batch is full or out of
 * memory (b->full is set). */
int outbatch_add_built(struct outbatch *b, const struct outbatch_row *row,
    const char *body);

/* Adds a row the broker already confirmed (see sent[]).  0, or -1 when
 * the batch is full (b->full is set). */
int outbatch_add_sent(struct outbatch *b, int64_t seq);
/* Rows taken: rows[], bad[] and sent[]. */
size_t outbatch_taken(const struct outbatch *b);

/* Fills msgs[] from rows[] (after the last batch_add: the bodies buffer
 * may have moved while growing).  Every result becomes MQ_PENDING. */
void outbatch_seal(struct outbatch *b);

/* Counts of the outcomes in msgs[]. */
struct outbatch_tally {
	size_t acked, nacked, returned, refused, pending;
};
void outbatch_tally(const struct outbatch *b, struct outbatch_tally *t);

/* Appends "Published messages: [<id> <id> ...]" for the acked messages
 * to out; past max_ids ids the rest is counted: "... (+N more)]".
 * 0, or -1 when out is full. */
int outbatch_log_line(const struct outbatch *b, size_t max_ids,
    struct buf *out);

/* Text recorded in last_error for a message with result r. */
const char *outbatch_result_reason(enum mq_result r);

#endif
