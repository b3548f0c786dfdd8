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
 * The age rule itself (inbox_age, inbox_too_old) is in common/inbox_age.h:
 * outbox-admin refuses to replay what the worker would refuse.
 */
#ifndef OUTBOX_WORKER_INBOX_RETENTION_H
#define OUTBOX_WORKER_INBOX_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "inbox_age.h"

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
