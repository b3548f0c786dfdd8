/*
 * qdepth.c - the queue depth sampler (qdepth.h).
 */
#include "qdepth.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "backoff.h"
#include "daemon.h"
#include "log.h"
#include "worker_metrics.h"

struct qdepth {
	mq_conn *c;
	pthread_t th;
	volatile sig_atomic_t stop;
	unsigned interval_ms;
	int failing; /* the last sample failed (and was logged) */
};

/* Reads the ready messages of queue into its gauge (set), connecting
 * first when needed.  0, or -1 logged once per failing streak
 * (q->failing). */
static int
qdepth_one(struct qdepth *q, const char *queue, void (*set)(double))
{
	uint32_t n;

	if ((!mq_is_connected(q->c) && mq_connect(q->c, 0) == -1) ||
	    mq_queue_depth(q->c, queue, &n, NULL) == -1) {
		if (!q->failing && !q->stop)
			log_warnx("queue depth of %s: %s (its gauge keeps its "
			    "last value; next try in %d s)", queue,
			    mq_error(q->c), q->interval_ms / 1000);
		return -1;
	}
	set((double)n);
	return 0;
}

/* One sample of both queues, each on its own: a missing queue (its
 * channel, hence the connection, closed) does not cost the other its
 * sample. */
static void
qdepth_sample(struct qdepth *q)
{
	int bad = qdepth_one(q, MQ_QUEUE, worker_metrics_queue_depth) == -1;

	bad |= qdepth_one(q, MQ_DLQ, worker_metrics_dlq_depth) == -1;
	q->failing = bad;
}

static void *
qdepth_main(void *arg)
{
	struct qdepth *q = arg;

	/* The first sample after one interval: by then the consume loop
	 * has declared the queues (a fresh broker has none before). */
	for (;;) {
		backoff_sleep(q->interval_ms, &q->stop);
		if (q->stop)
			break;
		qdepth_sample(q);
	}
	return NULL;
}

struct qdepth *
qdepth_start(const struct mq_params *p, int interval_s)
{
	struct qdepth *q = calloc(1, sizeof(*q));

	if (q == NULL || (q->c = mq_new(p)) == NULL) {
		log_warnx("queue depth sample: out of memory; no queue gauges");
		free(q);
		return NULL;
	}
	q->interval_ms = (unsigned)interval_s * 1000;
	if (daemon_thread(&q->th, qdepth_main, q) == -1) {
		log_warn("queue depth sample: cannot start its thread");
		mq_free(q->c);
		free(q);
		return NULL;
	}
	return q;
}

void
qdepth_free(struct qdepth *q)
{
	if (q == NULL)
		return;
	q->stop = 1;
	pthread_join(q->th, NULL);
	mq_free(q->c);
	free(q);
}
