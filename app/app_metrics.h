/*
 * app_metrics.h - the app's Prometheus metrics (served by common/obs.c on
 * APP_METRICS_PORT).
 */
#ifndef OUTBOX_APP_METRICS_H
#define OUTBOX_APP_METRICS_H

#include <stddef.h>

enum app_route {
	ROUTE_CUSTOMERS, ROUTE_CUSTOMER, ROUTE_HEALTHZ, ROUTE_READYZ,
	ROUTE_OTHER, ROUTE_COUNT
};

/* Registers every series; once, at start. */
void app_metrics_init(void);
/* One finished request: its route, status and duration. */
void app_metrics_request(enum app_route route, int status, double seconds);
/* One group commit of n requests. */
void app_metrics_group(size_t n);
/* Requests waiting for a pool thread (set under the pool's lock). */
void app_metrics_queue_depth(unsigned n);
/* The database became unavailable (counted once per outage). */
void app_metrics_db_outage(void);
/* A transaction retried (deadlock, or one by one after a group failed). */
void app_metrics_retry(void);
/* A connection closed at APP_REQUEST_TIMEOUT (app/watchdog.c). */
void app_metrics_request_cut(void);
/* n expired idempotency keys deleted. */
void app_metrics_keys_pruned(unsigned long long n);
/* What a group whose COMMIT reply was lost turned out to be. */
enum app_lost_commit { LOST_COMMITTED, LOST_ROLLED_BACK, LOST_UNKNOWN,
	LOST_COUNT };
void app_metrics_lost_commit(enum app_lost_commit outcome);

#endif
