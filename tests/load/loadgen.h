/*
 * loadgen.h - an open-loop load of POST requests over libcurl's multi
 * interface, shared by the load generators (chaos_load.c, bench_e2e.c).
 * Requests go out on schedule, at a steady rate, whether or not earlier
 * ones were answered (up to a cap in flight), so that a slow system
 * shows as latency or refusals, never as a lower offered rate.
 */
#ifndef OUTBOX_LOADGEN_H
#define OUTBOX_LOADGEN_H

#include <curl/curl.h>
#include <stddef.h>

/* Bytes of an answer kept; the rest is counted as cut (resp_cut). */
#define LOADGEN_RESP_MAX 4096

/* One request in flight: a slot, reused once the request ended. */
struct loadgen_req {
	long long n;             /* 0, 1, ...: the request's index */
	char body[256];          /* the body, NUL-terminated (prepare) */
	char header[160];        /* one more header line, "" for none */
	double sent;             /* clock_s() when it was sent */
	char resp[LOADGEN_RESP_MAX]; /* the answer's body, NUL-terminated */
	size_t resp_len;
	int resp_cut;            /* 1: longer than LOADGEN_RESP_MAX - 1 */
	/* loadgen's own: the transfer (NULL: the slot is free), headers. */
	CURL *easy;
	struct curl_slist *hdr;
};

struct loadgen {
	/* Set by the caller. */
	const char *url;
	long long total;         /* requests in all */
	long long rate;          /* per second */
	int max_inflight;        /* requests in flight at most */
	long max_conns;          /* connections at most */
	long timeout_ms;         /* per request */
	long connect_timeout_ms; /* 0: libcurl's */
	double max_seconds;      /* stop sending and waiting after (0: never) */
	/* Fills r->body (and r->header) for request r->n. */
	void (*prepare)(void *ud, struct loadgen_req *r);
	/* Request r ended: res is libcurl's result, status the HTTP status
	 * (0: none).  Returns 0, or -1 to stop the run. */
	int (*done)(void *ud, const struct loadgen_req *r, CURLcode res,
	    long status);
	void *ud;
	/* Set by loadgen_run. */
	double t0;               /* clock_s() at the start */
	long long sent;
	long long cap_hits;      /* loop turns with requests due and no slot */
	long long unanswered;    /* still in flight at max_seconds */
};

/* A libcurl write callback (CURLOPT_WRITEFUNCTION, CURLOPT_WRITEDATA a
 * struct loadgen_req): the answer's body into r->resp, the rest counted
 * as cut. */
size_t loadgen_collect(char *p, size_t size, size_t n, void *ud);

/* Runs the load described by lg (curl_global_init done by the caller);
 * fills its results.  0, or -1 when done asked to stop or a request could
 * not be set up (out of memory). */
int loadgen_run(struct loadgen *lg);

#endif
