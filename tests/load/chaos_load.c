/*
 * chaos_load.c - outbox-chaos-load: the load of the chaos run
 * (tests/load/chaos.sh).  Sends POST /customers to 127.0.0.1:<port> at a
 * steady rate, open loop (requests go out on schedule whether or not
 * earlier ones were answered, up to CHAOS_MAX_INFLIGHT in flight), N
 * requests in all, each with a unique email "<prefix>-<n>@example.com"
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
#include <time.h>

#define CHAOS_MAX_INFLIGHT 256
#define CHAOS_BODY_MAX 4096
#define CHAOS_NSTATUS 600

struct req {
	long long n;
	char body[256];
	char key[160];
	struct curl_slist *hdr;
	char resp[CHAOS_BODY_MAX];
	size_t resp_len;
	int resp_trunc;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t
collect(char *p, size_t size, size_t n, void *ud)
{
	struct req *r = ud;
	size_t len = size * n, room = sizeof(r->resp) - 1 - r->resp_len;

	if (len > room) {
		len = room;
		r->resp_trunc = 1;
	}
	memcpy(r->resp + r->resp_len, p, len);
	r->resp_len += len;
	r->resp[r->resp_len] = '\0';
	return size * n;
}

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

int
main(int argc, char **argv)
{
	long long port, total, rate, maxs, sent = 0, due, created = 0;
	long long conn_err = 0, timeouts = 0, other_err = 0, bad_201 = 0;
	long long other_status = 0, late = 0, status[CHAOS_NSTATUS] = { 0 };
	int running, i, inflight = 0, first;
	double t0, deadline;
	char url[128], id[128];
	const char *prefix;
	struct req *reqs;
	CURLMsg *msg;
	CURLM *m;
	FILE *ids;

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
	prefix = argv[4];
	if ((ids = fopen(argv[5], "a")) == NULL) {
		perror(argv[5]);
		return 2;
	}
	if ((reqs = calloc(CHAOS_MAX_INFLIGHT, sizeof(*reqs))) == NULL) {
		fprintf(stderr, "outbox-chaos-load: out of memory\n");
		fclose(ids);
		return 2;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%lld/customers", port);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS,
	    (long)CHAOS_MAX_INFLIGHT);
	t0 = now_s();
	deadline = t0 + (double)maxs;
	for (;;) {
		double now = now_s();

		if (now >= deadline)
			break;
		due = (long long)((now - t0) * (double)rate);
		if (due > total)
			due = total;
		if (sent < due && inflight >= CHAOS_MAX_INFLIGHT)
			late++;
		while (sent < due && inflight < CHAOS_MAX_INFLIGHT) {
			struct req *r = NULL;
			CURL *h;

			for (i = 0; i < CHAOS_MAX_INFLIGHT; i++)
				if (reqs[i].hdr == NULL) {
					r = &reqs[i];
					break;
				}
			if (r == NULL || (h = curl_easy_init()) == NULL)
				break;
			r->n = sent;
			r->resp_len = 0;
			r->resp_trunc = 0;
			r->resp[0] = '\0';
			snprintf(r->body, sizeof(r->body), "{\"email\":\"%s-%lld"
			    "@example.com\",\"name\":\"Chaos %lld\"}", prefix,
			    sent, sent);
			snprintf(r->key, sizeof(r->key),
			    "Idempotency-Key: %s-%lld", prefix, sent);
			r->hdr = curl_slist_append(NULL,
			    "Content-Type: application/json");
			r->hdr = curl_slist_append(r->hdr, r->key);
			curl_easy_setopt(h, CURLOPT_URL, url);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdr);
			curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
			curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
			curl_easy_setopt(h, CURLOPT_PRIVATE, r);
			curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
			curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
			curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
			curl_multi_add_handle(m, h);
			sent++;
			inflight++;
		}
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &i)) != NULL) {
			struct req *r;
			long st = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&r);
			curl_easy_getinfo(msg->easy_handle,
			    CURLINFO_RESPONSE_CODE, &st);
			if (msg->data.result != CURLE_OK) {
				if (msg->data.result == CURLE_OPERATION_TIMEDOUT)
					timeouts++;
				else if (msg->data.result ==
				    CURLE_COULDNT_CONNECT)
					conn_err++;
				else
					other_err++;
			} else if (st == 201) {
				created++;
				if (r->resp_trunc || customer_id(r->resp, id,
				    sizeof(id)) == -1) {
					bad_201++;
					fprintf(stderr, "outbox-chaos-load: 201 "
					    "without a customer id (request "
					    "%lld): %.200s\n", r->n, r->resp);
				} else if (fprintf(ids, "%s\n", id) < 0 ||
				    fflush(ids) != 0) {
					perror("outbox-chaos-load: ids file");
					return 2;
				}
			} else if (st > 0 && st < CHAOS_NSTATUS) {
				status[st]++;
			} else {
				other_status++;
			}
			curl_slist_free_all(r->hdr);
			r->hdr = NULL;
			curl_multi_remove_handle(m, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
			inflight--;
		}
		if (sent >= total && inflight == 0)
			break;
		curl_multi_poll(m, NULL, 0, 1, NULL);
	}
	/* Past the deadline: what is still in flight was not answered. */
	timeouts += inflight;
	for (i = 0; i < CHAOS_MAX_INFLIGHT; i++)
		if (reqs[i].hdr != NULL)
			curl_slist_free_all(reqs[i].hdr);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	if (fclose(ids) != 0) {
		perror("outbox-chaos-load: ids file");
		return 2;
	}
	printf("{\"requests\": %lld, \"rate\": %lld, \"sent\": %lld, "
	    "\"created_201\": %lld, \"statuses\": {", total, rate, sent,
	    created);
	first = 1;
	for (i = 0; i < CHAOS_NSTATUS; i++)
		if (status[i] > 0) {
			printf("%s\"%d\": %lld", first ? "" : ", ", i,
			    status[i]);
			first = 0;
		}
	printf("}, \"other_status\": %lld, \"connection_errors\": %lld, "
	    "\"timeouts\": %lld, \"other_errors\": %lld, \"bad_201\": %lld, "
	    "\"cap_hits\": %lld, \"not_sent\": %lld, \"seconds\": "
	    "%.1f}\n", other_status, conn_err, timeouts, other_err, bad_201,
	    late, total - sent, now_s() - t0);
	free(reqs);
	return bad_201 > 0 ? 1 : 0;
}
