/*
 * inbox_age.h - the worker's too-old rule, in one place for the worker
 * (which dead-letters such a message) and outbox-admin (which refuses to
 * replay one from the dead-letter queue).
 *
 * A processed id is kept at least WORKER_PROCESSED_RETENTION_HOURS after
 * it was handled; a message is applied only while it is younger than the
 * retention minus INBOX_MARGIN_MS (for the clocks of two hosts), so that
 * any redelivery that is applied still finds its id.
 *
 * A message's age: from its id when that is a version-7 UUID (48 bits of
 * Unix milliseconds: when the app made it), else from its AMQP timestamp
 * (when the relay published it, in seconds); with neither, it has none
 * and is applied.
 */
#ifndef OUTBOX_INBOX_AGE_H
#define OUTBOX_INBOX_AGE_H

#include <stddef.h>
#include <stdint.h>

/* For the clocks of two hosts. */
#define INBOX_MARGIN_MS (3600 * 1000LL)

enum age_source {
	AGE_NONE,      /* no time in the id, no timestamp */
	AGE_FROM_ID,   /* a version-7 id */
	AGE_FROM_TIMESTAMP, /* the AMQP timestamp */
};

struct msg_age {
	enum age_source source;
	int64_t born_ms; /* Unix ms (AGE_NONE: 0) */
	int64_t age_ms;  /* now - born_ms; negative when born "later" */
};

/* The age at now_ms (Unix ms) of a message with id (n bytes) and AMQP
 * timestamp ts (seconds since the epoch, 0 when absent). */
void inbox_age(const char *id, size_t n, uint64_t ts, int64_t now_ms,
    struct msg_age *out);

/* 1 when a message of age a must not be applied under a retention of
 * hours (0: no retention, never too old): older than hours minus
 * INBOX_MARGIN_MS.  Then, when reason is not NULL, why (for the
 * dead-letter header and the log) into reason[reasonlen]. */
int inbox_too_old(const struct msg_age *a, int hours, char *reason,
    size_t reasonlen);

/* 0 when WORKER_PROCESSED_RETENTION_HOURS may be hours; else -1 with
 * why in err[errlen]: 1 h, all margin, would leave no time at all to
 * handle a message (its range, 0..87600, is the settings table's). */
int inbox_hours_check(int hours, char *err, size_t errlen);

#endif
