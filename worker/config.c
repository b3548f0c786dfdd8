/*
 * config.c - the worker's configuration table: one row per setting.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "daemon.h"
#include "inbox_age.h"
#include "log.h"

#define T struct worker_config
const struct cfg_opt worker_opts[] = {
	DB_CFG_ROWS(T, db),
	MQ_CFG_ROWS(T, mq),
	/* 2000 and 500: a batch is acked only once committed, so the
	 * window holds the batches in flight and the one being collected.
	 * Draining 100,000 messages from the 3-node cluster's quorum queue,
	 * three runs each: 500 and 200 gave 16,300 to 22,200 msg/s, 2000
	 * and 500 21,900 to 26,700. */
	CFG_ROW_INT("WORKER_PREFETCH", T, prefetch, "2000", 1, 65535,
	    "deliveries the broker sends ahead of the acks (basic.qos)"),
	CFG_ROW_INT("WORKER_BATCH_MAX", T, batch_max, "500", 1, 1000,
	    "most messages handled in one database transaction"),
	/* 1 ms: under a backlog batches fill from the prefetched deliveries
	 * at once; under a steady trickle a longer wait only adds latency
	 * (5 ms gave a 6.5 ms end-to-end median at 1,000/s, 1 ms 3.8 ms). */
	CFG_ROW_INT("WORKER_BATCH_WAIT_MS", T, batch_wait_ms, "1", 0, 10000,
	    "ms a batch waits for more messages after its first"),
	/* 2: while one batch's COMMIT waits for its fsync, the next one's
	 * statements run (and both commits can share one fsync). */
	CFG_ROW_INT("WORKER_DB_POOL", T, db_pool, "2", 1, WORKER_DB_POOL_MAX,
	    "database connections, each with one batch's transaction in "
	    "flight (acks stay in delivery order)"),
	CFG_ROW_INT("WORKER_RETRY_BASE_MS", T, retry_base_ms, "100", 1,
	    60000, "first delay before a database or broker retry"),
	CFG_ROW_INT("WORKER_RETRY_MAX_MS", T, retry_max_ms, "5000", 1,
	    600000, "largest retry delay (exponential backoff, jitter)"),
	CFG_ROW_INT("WORKER_DLQ_TIMEOUT_MS", T, dlq_timeout_ms, "5000", 100,
	    60000, "ms to wait for the broker to confirm a dead-letter copy"),
	CFG_ROW_INT("WORKER_PROCESSED_RETENTION_HOURS", T, retention_hours,
	    "168", 0, 87600, "processed ids older than this are deleted, and "
	    "messages older than this minus 1 h are dead-lettered (0: never)"),
	CFG_ROW_INT("WORKER_PROCESSED_RETENTION_INTERVAL", T,
	    retention_interval_s, "60", 1, 86400,
	    "seconds between two sweeps of old processed ids"),
	CFG_ROW_INT("WORKER_QUEUE_SAMPLE_INTERVAL", T, queue_sample_s, "5",
	    1, 3600, "seconds between two samples of the depths of queues "
	    "outbox and outbox.dlq (gauges)"),
	DAEMON_OBS_ROWS(T, "WORKER", "9466"),
	DAEMON_LOG_ROWS(T),
};
#undef T
const size_t worker_nopts = sizeof(worker_opts) / sizeof(worker_opts[0]);

int
worker_config_load(struct worker_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	if (cfg_load(worker_opts, worker_nopts, cfg, err, errlen) == -1 ||
	    mq_params_check(&cfg->mq, err, errlen) == -1)
		return -1;
	/* A batch larger than the prefetch window could never fill: every
	 * batch would wait out WORKER_BATCH_WAIT_MS. */
	if (cfg->batch_max > cfg->prefetch) {
		snprintf(err, errlen, "WORKER_BATCH_MAX: %d is larger than "
		    "WORKER_PREFETCH (%d)", cfg->batch_max, cfg->prefetch);
		return -1;
	}
	if (cfg->retry_max_ms < cfg->retry_base_ms) {
		snprintf(err, errlen, "WORKER_RETRY_MAX_MS: %d is smaller than "
		    "WORKER_RETRY_BASE_MS (%d)", cfg->retry_max_ms,
		    cfg->retry_base_ms);
		return -1;
	}
	return inbox_hours_check(cfg->retention_hours, err, errlen);
}
