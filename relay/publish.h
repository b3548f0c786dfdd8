/*
 * publish.h - publishes a locked batch to the broker and records the
 * outcome in the batch's transaction: confirmed rows marked published
 * (one statement per batch), refused ones rescheduled with backoff.
 */
#ifndef OUTBOX_RELAY_PUBLISH_H
#define OUTBOX_RELAY_PUBLISH_H

#include "outbatch.h"
#include "config.h"
#include "db.h"
#include "mq.h"

struct publisher;

/* NULL when out of memory.  cfg is kept by pointer.  Free with
 * publisher_free (NULL is a no-op). */
struct publisher *publisher_new(const struct relay_config *cfg);
void publisher_free(struct publisher *p);

/* Sends b's messages (persistent, mandatory, confirm mode) to the default
 * exchange with the configured routing key, without waiting for the
 * confirms: b stays in flight on mq until publish_wait(b).  0, or -1 when
 * the broker connection failed (reason in mq_error; the connection is
 * closed and b's messages stay MQ_PENDING). */
int publish_start(struct publisher *p, mq_conn *mq, struct outbatch *b);

/* Waits for the confirms of b (started on mq).  0 when every message has
 * a result; -1 when the broker connection failed or the confirms did not
 * come within RELAY_CONFIRM_TIMEOUT_MS (reason in mq_error; the
 * connection is closed): messages still MQ_PENDING must be taken as not
 * published, acked ones are published; 1 when the broker blocks
 * publishing: b is still in flight, wait again. */
int publish_wait(struct publisher *p, mq_conn *mq, struct outbatch *b);

/* In b's open transaction on db: marks the acked rows (and b->sent[])
 * published in one statement; nacked, returned and invalid rows get
 * attempts + 1, their last_error and a next try after a capped
 * exponential backoff with jitter.  Pending rows are left as they are.
 * Does not commit.  A db_rc. */
int publish_record(struct publisher *p, db_conn *db, const struct outbatch *b);

/* Marks the rows seqs[0..n) published (n at most RELAY_BATCH_SIZE) in one
 * statement of its own: db holds no transaction.  For rows the broker
 * confirmed whose mark failed in their batch's transaction.  A db_rc. */
int publish_mark(struct publisher *p, db_conn *db, const int64_t *seqs,
    size_t n);

/* Logs the outcome of a committed batch: "Published messages: [...]"
 * when something was published, a warning when something was refused. */
/* After the COMMIT of b's transaction got no reply (durable_resolve's
 * probe, on another session): 1 when every row it marked published is
 * marked, 0 when none is; DB_EOTHER for a mix or when it marked none
 * (nothing tells), or the db_rc of a failed read. */
int publish_recorded(struct publisher *p, db_conn *db,
    const struct outbatch *b);
void publish_log(struct publisher *p, const struct outbatch *b);

/* After a failed broker call: 1 when the broker closed the channel over
 * a message (406 PRECONDITION_FAILED: over its max_message_size, bad
 * headers; the connection stays), else 0 (a lost connection, or a
 * refusal that is not about one message, such as 403 on the exchange:
 * an outage).  Takes the refusal (mq_take_refusal). */
int publish_refused(mq_conn *mq);

#endif
