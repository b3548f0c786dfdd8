/*
 * app_metrics.c - the app's series: requests by route and status, request
 * latency by route, group-commit sizes, the queue's depth, database
 * outages and retries, requests cut at their deadline, pruned keys, lost
 * COMMIT replies.
 */
#include "app_metrics.h"

#include <stdio.h>

#include "metrics.h"

static const char *const route_names[ROUTE_COUNT] = {
	"/customers", "/customers/:id", "/healthz", "/readyz", "other",
};
static const int statuses[] = {
	200, 201, 400, 404, 405, 409, 413, 415, 422, 431, 500, 503,
};
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))

static struct mcounter *req_by[ROUTE_COUNT][NSTATUS + 1]; /* + "other" */
static struct mhist *latency[ROUTE_COUNT];
static struct mhist *group;
static struct mgauge *queued;
static struct mcounter *outages, *retries, *cut, *pruned;
static struct mcounter *lost[LOST_COUNT];

void
app_metrics_init(void)
{
	static const double sizes[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512,
		1000 };
	char labels[128];
	size_t r, s;

	for (r = 0; r < ROUTE_COUNT; r++) {
		for (s = 0; s <= NSTATUS; s++) {
			if (s < NSTATUS)
				snprintf(labels, sizeof(labels),
				    "route=\"%s\",status=\"%d\"", route_names[r],
				    statuses[s]);
			else
				snprintf(labels, sizeof(labels),
				    "route=\"%s\",status=\"other\"",
				    route_names[r]);
			req_by[r][s] = metrics_counter(
			    "outbox_http_requests", "HTTP requests answered, "
			    "by route and status", labels);
		}
		snprintf(labels, sizeof(labels), "route=\"%s\"",
		    route_names[r]);
		latency[r] = metrics_histogram(
		    "outbox_http_request_duration_seconds", "Time from the "
		    "request's headers to its completion", labels,
		    metrics_latency_bounds, metrics_latency_nbounds);
	}
	group = metrics_histogram("outbox_app_group_commit_size", "Requests "
	    "committed together in one transaction", NULL, sizes,
	    sizeof(sizes) / sizeof(sizes[0]));
	queued = metrics_gauge("outbox_app_queue_depth", "Requests waiting "
	    "for a database thread", NULL);
	outages = metrics_counter("outbox_app_db_outages", "Times the "
	    "database became unavailable", NULL);
	retries = metrics_counter("outbox_app_db_retries", "Transactions "
	    "run again (deadlock, or one by one after a failed group)", NULL);
	cut = metrics_counter("outbox_app_requests_cut", "Connections closed "
	    "because their request was not complete within "
	    "APP_REQUEST_TIMEOUT", NULL);
	pruned = metrics_counter("outbox_app_idempotency_keys_pruned",
	    "Expired idempotency keys deleted", NULL);
	lost[LOST_COMMITTED] = metrics_counter("outbox_app_lost_commit_replies",
	    "Groups whose COMMIT reply was lost, by what they turned out to "
	    "be", "outcome=\"committed\"");
	lost[LOST_ROLLED_BACK] = metrics_counter(
	    "outbox_app_lost_commit_replies", "Groups whose COMMIT reply was "
	    "lost, by what they turned out to be", "outcome=\"rolled_back\"");
	lost[LOST_UNKNOWN] = metrics_counter("outbox_app_lost_commit_replies",
	    "Groups whose COMMIT reply was lost, by what they turned out to "
	    "be", "outcome=\"unknown\"");
}

void
app_metrics_request_cut(void)
{
	mcounter_add(cut, 1);
}

void
app_metrics_keys_pruned(unsigned long long n)
{
	mcounter_add(pruned, n);
}

void
app_metrics_lost_commit(enum app_lost_commit outcome)
{
	if (outcome < LOST_COUNT)
		mcounter_add(lost[outcome], 1);
}

void
app_metrics_request(enum app_route route, int status, double seconds)
{
	size_t s;

	if (route >= ROUTE_COUNT)
		route = ROUTE_OTHER;
	for (s = 0; s < NSTATUS && statuses[s] != status; s++)
		;
	mcounter_add(req_by[route][s], 1);
	mhist_observe(latency[route], seconds);
}

void
app_metrics_group(size_t n)
{
	mhist_observe(group, (double)n);
}

void
app_metrics_queue_depth(unsigned n)
{
	mgauge_set(queued, (double)n);
}

void
app_metrics_db_outage(void)
{
	mcounter_add(outages, 1);
}

void
app_metrics_retry(void)
{
	mcounter_add(retries, 1);
}
