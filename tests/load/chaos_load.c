/*
 * chaos_load.c - outbox-chaos-load: the load of the chaos run
 * (tests/load/chaos.sh).  Sends POST /customers to 127.0.0.1:<port> at a
 * steady rate, open loop (loadgen.c: requests go out on schedule whether
 * or not earlier ones were answered, up to CHAOS_MAX_INFLIGHT in flight),
 * N requests in all, each with a unique email "<prefix>-<n>@example.com"
 * and an Idempotency-Key "<prefix>-<n>".
 *
 *   outbox-chaos-load <port> <requests> <rate/s> <prefix> <ids-file>
 *                     [max-seconds]
 *
 * Refused connections, timeouts and non-201 answers are tolerated: they
 * were not acknowledged.  The customer id of EVERY 201 is appended to
 * ids-file (one per line, flushed before the next request is sent), as
 * the promise the run then checks.  Prints one JSON line of counts.
 * Bounded: at most <requests> requests, each with a 10 s timeout, and the
 * whole run stops after max-seconds (default: twice the planned duration
 * plus 60 s); requests still in flight then count as timeouts.
 *
 * Exit status: 0, or 1 when a 201 came without a readable customer id
 * (that 201 could not be checked), 2 on bad usage or a local error.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "loadgen.h"

#define CHAOS_MAX_INFLIGHT 256
#define CHAOS_NSTATUS 600

/* What came back, and where the ids of the 201s go. */
struct chaos {
	const char *prefix;
	FILE *ids;
	long long created, conn_err, timeouts, other_err, bad_201;
	long long other_status, status[CHAOS_NSTATUS];
};

/* The "id" of a customer body, into out; -1 if there is none. */
static int
customer_id(const char *body, char *out, size_t outsz)
{
	json_error_t jerr;
	json_t *root, *id;
	const char *s;
	int rc = -1;

	if ((root = json_loads(body, 0, &jerr)) == NULL)
		return -1;
	id = json_object_get(root, "id");
	if (json_is_string(id) && (s = json_string_value(id)) != NULL &&
	    strlen(s) > 0 && strlen(s) < outsz &&
	    strspn(s, "0123456789abcdefABCDEF-") == strlen(s)) {
		snprintf(out, outsz, "%s", s);
		rc = 0;
	}
	json_decref(root);
	return rc;
}

static int
parse_ll(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Request r->n: a unique email and Idempotency-Key. */
static void
chaos_prepare(void *ud, struct loadgen_req *r)
{
	const struct chaos *c = ud;

	snprintf(r->body, sizeof(r->body), "{\"email\":\"%s-%lld"
	    "@example.com\",\"name\":\"Chaos %lld\"}", c->prefix, r->n,
	    r->n);
	snprintf(r->header, sizeof(r->header), "Idempotency-Key: %s-%lld",
	    c->prefix, r->n);
}

/* Counts the outcome; the id of a 201 goes to the ids file before the
 * next request is sent. */
static int
chaos_done(void *ud, const struct loadgen_req *r, CURLcode res, long st)
{
	struct chaos *c = ud;
	char id[128];

	if (res != CURLE_OK) {
		if (res == CURLE_OPERATION_TIMEDOUT)
			c->timeouts++;
		else if (res == CURLE_COULDNT_CONNECT)
			c->conn_err++;
		else
			c->other_err++;
	} else if (st == 201) {
		c->created++;
		if (r->resp_cut || customer_id(r->resp, id, sizeof(id)) == -1) {
			c->bad_201++;
			fprintf(stderr, "outbox-chaos-load: 201 without a "
			    "customer id (request %lld): %.200s\n", r->n,
			    r->resp);
		} else if (fprintf(c->ids, "%s\n", id) < 0 ||
		    fflush(c->ids) != 0) {
			perror("outbox-chaos-load: ids file");
			return -1;
		}
	} else if (st > 0 && st < CHAOS_NSTATUS) {
		c->status[st]++;
	} else {
		c->other_status++;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct chaos c;
	struct loadgen lg;
	long long port, total, rate, maxs;
	char url[128];
	int i, first, rc;

	if (argc < 6 || argc > 7 ||
	    parse_ll(argv[1], 1, 65535, &port) == -1 ||
	    parse_ll(argv[2], 1, 10000000, &total) == -1 ||
	    parse_ll(argv[3], 1, 100000, &rate) == -1 ||
	    strlen(argv[4]) == 0 || strlen(argv[4]) > 64 ||
	    strspn(argv[4], "abcdefghijklmnopqrstuvwxyz0123456789-") !=
	    strlen(argv[4])) {
		fprintf(stderr, "usage: outbox-chaos-load <port> <requests> "
		    "<rate/s> <prefix [a-z0-9-]> <ids-file> [max-seconds]\n");
		return 2;
	}
	maxs = total / rate * 2 + 60;
	if (argc == 7 && parse_ll(argv[6], 1, 86400, &maxs) == -1) {
		fprintf(stderr, "outbox-chaos-load: bad max-seconds\n");
		return 2;
	}
	c.prefix = argv[4];
	if ((c.ids = fopen(argv[5], "a")) == NULL) {
		perror(argv[5]);
		return 2;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%lld/customers", port);
	memset(&lg, 0, sizeof(lg));
	lg.url = url;
	lg.total = total;
	lg.rate = rate;
	lg.max_inflight = CHAOS_MAX_INFLIGHT;
	lg.max_conns = CHAOS_MAX_INFLIGHT;
	lg.timeout_ms = 10000;
	lg.connect_timeout_ms = 2000;
	lg.max_seconds = (double)maxs;
	lg.prepare = chaos_prepare;
	lg.done = chaos_done;
	lg.ud = &c;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = loadgen_run(&lg);
	curl_global_cleanup();
	if (fclose(c.ids) != 0 || rc == -1) {
		fprintf(stderr, "outbox-chaos-load: %s\n", rc == -1 ?
		    "stopped (ids file, or out of memory)" : "ids file: cannot "
		    "close");
		return 2;
	}
	/* Past the deadline: what was still in flight was not answered. */
	c.timeouts += lg.unanswered;
	printf("{\"requests\": %lld, \"rate\": %lld, \"sent\": %lld, "
	    "\"created_201\": %lld, \"statuses\": {", total, rate, lg.sent,
	    c.created);
	first = 1;
	for (i = 0; i < CHAOS_NSTATUS; i++)
		if (c.status[i] > 0) {
			printf("%s\"%d\": %lld", first ? "" : ", ", i,
			    c.status[i]);
			first = 0;
		}
	printf("}, \"other_status\": %lld, \"connection_errors\": %lld, "
	    "\"timeouts\": %lld, \"other_errors\": %lld, \"bad_201\": %lld, "
	    "\"cap_hits\": %lld, \"not_sent\": %lld, \"seconds\": "
	    "%.1f}\n", c.other_status, c.conn_err, c.timeouts, c.other_err,
	    c.bad_201, lg.cap_hits, total - lg.sent, clock_s() - lg.t0);
	return c.bad_201 > 0 ? 1 : 0;
}
