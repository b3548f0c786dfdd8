/*
 * worker_metrics.c - the worker's series: deliveries consumed, effects,
 * duplicates, dead letters by reason, retries, reconnects; created-to-
 * handled lag, batch sizes and commit times; the depths of outbox and
 * outbox.dlq (servers and readiness:
 * common/health.c).
 */
#include "worker_metrics.h"

#include <time.h>

#include "clock.h"
#include "health.h"
#include "metrics.h"

static const char *const dead_labels[DEAD_CLASS_COUNT] = {
	"reason=\"malformed\"", "reason=\"unknown_event\"",
	"reason=\"invalid_payload\"", "reason=\"db_refused\"",
	"reason=\"too_old\"",
};

static struct mcounter *consumed, *handled, *dups, *retries, *pruned;
static struct mcounter *dead[DEAD_CLASS_COUNT];
static struct mhist *lag, *bsize, *commit_time;
static struct mgauge *queue_depth, *dlq_depth;

void
worker_metrics_init(void)
{
	/* Seconds, 1 ms .. 1 h: the lag includes outages. */
	static const double lag_bounds[] = { 0.001, 0.0025, 0.005, 0.01,
		0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900,
		3600 };
	static const double sizes[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512,
		1000 };
	size_t i;

	consumed = metrics_counter("outbox_worker_messages_consumed",
	    "Deliveries received from the broker (redeliveries included)",
	    NULL);
	handled = metrics_counter("outbox_worker_messages_handled",
	    "Messages whose effect was committed (once per message id)",
	    NULL);
	dups = metrics_counter("outbox_worker_messages_duplicate",
	    "Messages acked without effect: already processed, or repeated "
	    "in their batch", NULL);
	for (i = 0; i < DEAD_CLASS_COUNT; i++)
		dead[i] = metrics_counter(
		    "outbox_worker_messages_dead_lettered", "Messages sent to "
		    "the dead-letter queue, by reason", dead_labels[i]);
	retries = metrics_counter("outbox_worker_db_retries",
	    "Database transactions run again (outage, deadlock)", NULL);
	pruned = metrics_counter("outbox_worker_processed_pruned",
	    "Processed ids deleted by the inbox retention "
	    "(WORKER_PROCESSED_RETENTION_HOURS)", NULL);
	health_init("outbox_worker");
	queue_depth = metrics_gauge("outbox_worker_queue_messages",
	    "Ready messages in queue outbox (sampled every "
	    "WORKER_QUEUE_SAMPLE_INTERVAL s by a passive declare; "
	    "unacknowledged deliveries not counted)", NULL);
	dlq_depth = metrics_gauge("outbox_worker_dlq_messages",
	    "Ready messages in the dead-letter queue outbox.dlq (sampled "
	    "every WORKER_QUEUE_SAMPLE_INTERVAL s by a passive declare)", NULL);
	lag = metrics_histogram("outbox_worker_created_to_handled_seconds",
	    "Time from the payload's CreatedAt (the app's request) to the "
	    "commit of the message's effect: the whole path's lag", NULL,
	    lag_bounds, sizeof(lag_bounds) / sizeof(lag_bounds[0]));
	bsize = metrics_histogram("outbox_worker_batch_size",
	    "Deliveries per batch (one transaction, one ack)", NULL, sizes,
	    sizeof(sizes) / sizeof(sizes[0]));
	commit_time = metrics_histogram("outbox_worker_batch_commit_seconds",
	    "Time of each database transaction that committed (BEGIN to "
	    "COMMIT of the attempt that succeeded)", NULL,
	    metrics_latency_bounds, metrics_latency_nbounds);
}

void
worker_metrics_consumed(void)
{
	mcounter_add(consumed, 1);
}

void
worker_metrics_handled(double created_s)
{
	double d;

	mcounter_add(handled, 1);
	if (created_s <= 0)
		return;
	d = clock_wall_s() - created_s;
	/* Clocks of two processes: a small skew must not go negative. */
	mhist_observe(lag, d < 0 ? 0 : d);
}

void
worker_metrics_duplicate(void)
{
	mcounter_add(dups, 1);
}

void
worker_metrics_dead(enum dead_class c)
{
	if (c < DEAD_CLASS_COUNT)
		mcounter_add(dead[c], 1);
}

void
worker_metrics_retry(void)
{
	mcounter_add(retries, 1);
}

void
worker_metrics_batch(size_t n)
{
	mhist_observe(bsize, (double)n);
}

void
worker_metrics_pruned(uint64_t n)
{
	mcounter_add(pruned, n);
}

void
worker_metrics_commit(double seconds)
{
	mhist_observe(commit_time, seconds);
}

void
worker_metrics_queue_depth(double n)
{
	mgauge_set(queue_depth, n);
}

void
worker_metrics_dlq_depth(double n)
{
	mgauge_set(dlq_depth, n);
}
