/*
 * relay_metrics.c - the relay's series: messages by broker outcome,
 * confirms, retries, batches, reconnects; batch publish time and
 * created-to-confirmed lag; outbox backlog (servers and readiness:
 * common/health.c).
 */
#include "relay_metrics.h"

#include "health.h"
#include "metrics.h"

static struct mcounter *published, *nacked, *returned, *unconfirmed;
static struct mcounter *confirms, *retries, *batches, *parked, *refused;
static struct mhist *publish_time, *lag, *barrier;
static struct mgauge *backlog_rows, *backlog_age, *blocked_g;
static struct mgauge *bl_leader, *bl_position, *bl_behind;
static struct mcounter *bl_takeovers, *bl_events, *bl_rows, *bl_first,
    *bl_purged;

void
relay_metrics_init(void)
{
	/* Seconds, 1 ms .. 1 h: the lag includes retries and outages. */
	static const double lag_bounds[] = { 0.001, 0.0025, 0.005, 0.01,
		0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900,
		3600 };

	published = metrics_counter("outbox_relay_messages_published",
	    "Messages acked by the broker and marked published", NULL);
	nacked = metrics_counter("outbox_relay_messages_nacked",
	    "Messages nacked by the broker (rescheduled)", NULL);
	returned = metrics_counter("outbox_relay_messages_returned",
	    "Messages returned by the broker as unroutable (rescheduled)",
	    NULL);
	unconfirmed = metrics_counter("outbox_relay_messages_unconfirmed",
	    "Messages without a confirm (timeout or lost connection; "
	    "published again later)", NULL);
	confirms = metrics_counter("outbox_relay_confirms",
	    "Publisher confirms received (ack or nack), one per message",
	    NULL);
	retries = metrics_counter("outbox_relay_retries_scheduled",
	    "Outbox rows rescheduled with backoff (nacked, returned or "
	    "invalid)", NULL);
	parked = metrics_counter("outbox_relay_rows_parked",
	    "Outbox rows parked after RELAY_MAX_ATTEMPTS refusals (left "
	    "unpublished until released)", NULL);
	refused = metrics_counter("outbox_relay_messages_refused",
	    "Messages the broker refused by closing the channel "
	    "(rescheduled)", NULL);
	batches = metrics_counter("outbox_relay_batches",
	    "Batches committed (rows locked, published, recorded)", NULL);
	health_init("outbox_relay");
	publish_time = metrics_histogram("outbox_relay_batch_publish_seconds",
	    "Time from a batch's first publish to its last confirm", NULL,
	    metrics_latency_bounds, metrics_latency_nbounds);
	lag = metrics_histogram("outbox_relay_commit_to_publish_seconds",
	    "Time from an outbox row's created_at (the app's transaction) to "
	    "the broker's confirm of its message", NULL, lag_bounds,
	    sizeof(lag_bounds) / sizeof(lag_bounds[0]));
	barrier = metrics_histogram("outbox_relay_durability_wait_seconds",
	    "Time a batch waited, before its publish, for its rows to be on "
	    "disk (the durability barrier)", NULL, metrics_latency_bounds,
	    metrics_latency_nbounds);
	blocked_g = metrics_gauge("outbox_relay_broker_blocked",
	    "1 while the broker blocks publishing (a memory or disk alarm)",
	    NULL);
	backlog_rows = metrics_gauge("outbox_relay_backlog_rows",
	    "Unpublished outbox rows (sampled every few seconds)", NULL);
	backlog_age = metrics_gauge("outbox_relay_oldest_unpublished_seconds",
	    "Age of the oldest unpublished outbox row, 0 when none (sampled "
	    "every few seconds)", NULL);
}

void
relay_metrics_batch(size_t acked, size_t nack, size_t ret, size_t pending,
    size_t rescheduled, double publish_s)
{
	mcounter_add(published, acked);
	mcounter_add(nacked, nack);
	mcounter_add(returned, ret);
	mcounter_add(unconfirmed, pending);
	/* A returned message is confirmed (acked) after its return. */
	mcounter_add(confirms, acked + nack + ret);
	mcounter_add(retries, rescheduled);
	mcounter_add(batches, 1);
	mhist_observe(publish_time, publish_s);
}

void
relay_metrics_lag(double seconds)
{
	mhist_observe(lag, seconds < 0 ? 0 : seconds);
}

void
relay_metrics_blocked(int on)
{
	mgauge_set(blocked_g, on ? 1 : 0);
}

void
relay_metrics_parked(void)
{
	mcounter_add(parked, 1);
}

void
relay_metrics_refused(void)
{
	mcounter_add(refused, 1);
}

void
relay_metrics_barrier(double seconds)
{
	mhist_observe(barrier, seconds < 0 ? 0 : seconds);
}

void
relay_metrics_backlog(long long rows, double oldest_s)
{
	mgauge_set(backlog_rows, (double)rows);
	mgauge_set(backlog_age, oldest_s < 0 ? 0 : oldest_s);
}

void
relay_metrics_binlog_init(void)
{
	static const char help_rec[] = "Republications of the outbox "
	    "table's unpublished rows: first_start (no stored position) or "
	    "purged (the stored position no longer in the binary log)";

	bl_leader = metrics_gauge("outbox_relay_binlog_leader",
	    "1 while this relay holds the binlog mode's leader lock", NULL);
	bl_takeovers = metrics_counter("outbox_relay_binlog_takeovers",
	    "Times this relay became the binlog mode's leader", NULL);
	bl_events = metrics_counter("outbox_relay_binlog_events_read",
	    "Binary log events read: outbox rows, ends of transactions, "
	    "heartbeats", NULL);
	bl_rows = metrics_counter("outbox_relay_binlog_rows_read",
	    "Outbox rows read from the binary log", NULL);
	bl_position = metrics_gauge("outbox_relay_binlog_position_seq",
	    "Highest outbox seq published or parked up to the stored "
	    "position", NULL);
	bl_behind = metrics_gauge("outbox_relay_binlog_seconds_behind",
	    "Seconds from the last transaction read to now (0 when the "
	    "reader is at the end of the binary log)", NULL);
	bl_first = metrics_counter("outbox_relay_binlog_recoveries", help_rec,
	    "reason=\"first_start\"");
	bl_purged = metrics_counter("outbox_relay_binlog_recoveries",
	    help_rec, "reason=\"purged\"");
}

void
relay_metrics_binlog_leader(int on)
{
	mgauge_set(bl_leader, on ? 1 : 0);
}

void
relay_metrics_binlog_takeover(void)
{
	mcounter_add(bl_takeovers, 1);
}

void
relay_metrics_binlog_read(size_t events, size_t rows)
{
	mcounter_add(bl_events, events);
	mcounter_add(bl_rows, rows);
}

void
relay_metrics_binlog_position(long long seq)
{
	mgauge_set(bl_position, (double)(seq < 0 ? 0 : seq));
}

void
relay_metrics_binlog_behind(double seconds)
{
	mgauge_set(bl_behind, seconds < 0 ? 0 : seconds);
}

void
relay_metrics_binlog_recovery(int first_start)
{
	mcounter_add(first_start ? bl_first : bl_purged, 1);
}
