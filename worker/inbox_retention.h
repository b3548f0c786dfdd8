/*
 * inbox_retention.h - the inbox retention: processed ids older than
 * WORKER_PROCESSED_RETENTION_HOURS are deleted, and the rule that makes
 * that safe.
 *
 * A message whose id was deleted from processed_messages would be applied
 * again if it came back.  So: a processed id is kept at least the
 * retention after it was handled, and a message is applied only while it
 * is younger than the retention minus INBOX_MARGIN_MS (for the clocks of
 * two hosts); any redelivery the worker applies still finds its id.  An
 * older one is dead-lettered with its reason: it cannot be told apart
 * from one already handled, an operator decides.
 *
 * A message's age: from its id when that is a version-7 UUID (48 bits of
 * Unix milliseconds: when the app made it), else from its AMQP timestamp
 * (when the relay published it, in seconds); with neither, it has none
 * and is applied.
 */
#ifndef OUTBOX_WORKER_INBOX_RETENTION_H
#define OUTBOX_WORKER_INBOX_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

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

struct pruner;

/* Starts the thread that deletes processed ids older than
 * cfg->retention_hours, 500 per statement (common/chunkdel.h), back to
 * back while whole chunks go with a short pause between them, every
 * cfg->retention_interval_s seconds, on a database connection of its own
 * (common/pruner.h).  A database down or refusing writes goes to the
 * worker's one warning per outage (common/health.h, shared with the
 * committer); it tries again after WORKER_RETRY_MAX_MS.  NULL when
 * retention_hours is 0 (nothing to start: *failed 0) or on failure
 * (logged, *failed 1).  Free with pruner_free. */
struct pruner *inbox_pruner_start(const struct worker_config *cfg,
    int *failed);

#endif
