/*
 * loadgen.c - an open-loop load of POST requests (see loadgen.h).
 */
#include "loadgen.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

size_t
loadgen_collect(char *p, size_t size, size_t n, void *ud)
{
	struct loadgen_req *r = ud;
	size_t len = size * n, room = sizeof(r->resp) - 1 - r->resp_len;

	if (len > room) {
		len = room;
		r->resp_cut = 1;
	}
	memcpy(r->resp + r->resp_len, p, len);
	r->resp_len += len;
	r->resp[r->resp_len] = '\0';
	return size * n;
}

/* Sets up request n in a free slot of reqs and adds it to m; -1 when
 * there is no free slot or no memory. */
static int
loadgen_send(struct loadgen *lg, CURLM *m, struct loadgen_req *reqs,
    long long n, double now)
{
	struct loadgen_req *r = NULL;
	CURL *h;
	int i;

	for (i = 0; i < lg->max_inflight && r == NULL; i++)
		if (reqs[i].easy == NULL)
			r = &reqs[i];
	if (r == NULL || (h = curl_easy_init()) == NULL)
		return -1;
	r->n = n;
	r->sent = now;
	r->body[0] = r->header[0] = r->resp[0] = '\0';
	r->resp_len = 0;
	r->resp_cut = 0;
	lg->prepare(lg->ud, r);
	r->hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (r->hdr != NULL && r->header[0] != '\0') {
		struct curl_slist *more = curl_slist_append(r->hdr, r->header);

		if (more == NULL) {
			curl_slist_free_all(r->hdr);
			r->hdr = NULL;
		}
	}
	if (r->hdr == NULL) {
		curl_easy_cleanup(h);
		return -1;
	}
	curl_easy_setopt(h, CURLOPT_URL, lg->url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, loadgen_collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_PRIVATE, r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, lg->timeout_ms);
	if (lg->connect_timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
		    lg->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_multi_add_handle(m, h);
	r->easy = h;
	return 0;
}

/* Reports the requests that ended and frees their slots: the number
 * that ended, or -1 when done asked to stop. */
static int
loadgen_reap(struct loadgen *lg, CURLM *m)
{
	struct loadgen_req *r;
	CURLMsg *msg;
	int left, ended = 0, rc = 0;
	long st;

	while ((msg = curl_multi_info_read(m, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		st = 0;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&r);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
		    &st);
		if (lg->done(lg->ud, r, msg->data.result, st) == -1)
			rc = -1;
		curl_multi_remove_handle(m, r->easy);
		curl_easy_cleanup(r->easy);
		curl_slist_free_all(r->hdr);
		r->easy = NULL;
		r->hdr = NULL;
		ended++;
	}
	return rc == -1 ? -1 : ended;
}

int
loadgen_run(struct loadgen *lg)
{
	struct loadgen_req *reqs;
	long long due;
	int running, inflight = 0, ended, i, rc = 0;
	double now;
	CURLM *m;

	lg->sent = lg->cap_hits = lg->unanswered = 0;
	if ((reqs = calloc((size_t)lg->max_inflight, sizeof(*reqs))) == NULL)
		return -1;
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, lg->max_conns);
	lg->t0 = clock_s();
	for (;;) {
		now = clock_s();
		if (lg->max_seconds > 0 && now >= lg->t0 + lg->max_seconds)
			break;
		due = (long long)((now - lg->t0) * (double)lg->rate);
		if (due > lg->total)
			due = lg->total;
		if (lg->sent < due && inflight >= lg->max_inflight)
			lg->cap_hits++;
		while (lg->sent < due && inflight < lg->max_inflight) {
			if (loadgen_send(lg, m, reqs, lg->sent, now) == -1) {
				rc = -1;
				goto out;
			}
			lg->sent++;
			inflight++;
		}
		curl_multi_perform(m, &running);
		if ((ended = loadgen_reap(lg, m)) == -1) {
			rc = -1;
			goto out;
		}
		inflight -= ended;
		if (lg->sent >= lg->total && inflight == 0)
			break;
		curl_multi_poll(m, NULL, 0, 1, NULL);
	}
out:
	/* Past the deadline (or stopped): what is in flight was not
	 * answered. */
	lg->unanswered = inflight;
	for (i = 0; i < lg->max_inflight; i++) {
		if (reqs[i].easy == NULL)
			continue;
		curl_multi_remove_handle(m, reqs[i].easy);
		curl_easy_cleanup(reqs[i].easy);
		curl_slist_free_all(reqs[i].hdr);
	}
	curl_multi_cleanup(m);
	free(reqs);
	return rc;
}
