/*
 * it_e2e.c - end to end through the three daemons against the real
 * servers: POST /customers on outbox-app, outbox-relay publishes the
 * outbox rows, outbox-worker writes the welcome mails.  1,000 POSTs give
 * 1,000 welcome_emails, exactly one per customer, and the worker's log
 * has the original's line, with the customer's JSON, for each.
 */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "harness.h"
#include "suites.h"
#include "uid.h"

Suite *it_e2e_suite(void);

#define N_POSTS 1000
/* Connections the client keeps open at once. */
#define PARALLEL 32

struct post {
	char body[128];
	struct buf out;
	long status;
	json_t *customer; /* the 201 body */
	const char *id;   /* its "id" (owned by customer) */
	int logged;       /* "Handling" lines seen for it */
};

static struct post posts[N_POSTS];

static size_t
post_write(char *p, size_t size, size_t n, void *ud)
{
	struct post *ps = ud;

	return buf_append(&ps->out, p, size * n) == 0 ? size * n : 0;
}

/* Sends the POSTs, PARALLEL at a time. */
static void
post_all(int port)
{
	struct curl_slist *hdr = NULL;
	CURLM *m = curl_multi_init();
	CURL *h;
	CURLMsg *msg;
	struct post *p;
	char url[128];
	int i, next = 0, running = 0, left;

	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/customers", port);
	for (;;) {
		while (next < N_POSTS && running < PARALLEL) {
			p = &posts[next++];
			h = curl_easy_init();
			ck_assert_ptr_nonnull(h);
			curl_easy_setopt(h, CURLOPT_URL, url);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, p->body);
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
			curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, post_write);
			curl_easy_setopt(h, CURLOPT_WRITEDATA, p);
			curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)p);
			curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
			curl_multi_add_handle(m, h);
			running++;
		}
		if (running == 0)
			break;
		curl_multi_perform(m, &i);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			h = msg->easy_handle;
			curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&p);
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &p->status);
			curl_multi_remove_handle(m, h);
			curl_easy_cleanup(h);
			running--;
		}
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	curl_multi_cleanup(m);
	curl_slist_free_all(hdr);
}

static int
cmp_post_id(const void *a, const void *b)
{
	const struct post *x = a, *y = b;

	return strcmp(x->id, y->id);
}

static int
cmp_key_id(const void *key, const void *elem)
{
	const struct post *y = elem;

	return strcmp(key, y->id);
}

/* Reads the worker's log: every "Handling" line's payload must be the
 * JSON of a customer the app created, each exactly once. */
static void
check_worker_lines(const struct h_daemon *w)
{
	static const char mark[] = "Handling [CustomerCreated] - Payload: '";
	char line[16384], *s, *e;
	struct post *p;
	json_t *o;
	int lines = 0;
	FILE *f;

	f = fopen(w->log, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if ((s = strstr(line, mark)) == NULL)
			continue;
		lines++;
		s += strlen(mark);
		e = strrchr(s, '\'');
		ck_assert_msg(e != NULL, "cut line: %s", line);
		*e = '\0';
		o = json_loads(s, 0, NULL);
		ck_assert_msg(o != NULL, "payload is not JSON: %s", s);
		p = bsearch(json_string_value(json_object_get(o, "id")), posts,
		    N_POSTS, sizeof(posts[0]), cmp_key_id);
		ck_assert_msg(p != NULL, "a line for no customer: %s", s);
		ck_assert_msg(json_equal(o, p->customer), "payload %s is not "
		    "the customer the app returned", s);
		p->logged++;
		json_decref(o);
	}
	fclose(f);
	ck_assert_int_eq(lines, N_POSTS);
}

START_TEST(thousand_posts_thousand_welcome_emails)
{
	static const char *const wenv[] = { "WORKER_RETRY_MAX_MS=1000", NULL };
	struct h_daemon app = { 0 }, relay = { 0 }, worker = { 0 };
	static const char mails[] = "SELECT COUNT(*) FROM welcome_emails";
	long long t0;
	int i;

	ck_assert_int_eq(h_infra("db-start"), 0);
	h_reset();
	H_START(&app, H_APP, NULL, NULL);
	H_START(&relay, H_RELAY, NULL, NULL);
	H_START(&worker, H_WORKER, NULL, wenv);

	for (i = 0; i < N_POSTS; i++) {
		snprintf(posts[i].body, sizeof(posts[i].body),
		    "{\"email\":\"e2e%d@example.com\",\"name\":\"E2E %d\"}", i,
		    i);
		buf_init(&posts[i].out, 4096);
	}
	t0 = clock_ms();
	post_all(app.port);
	for (i = 0; i < N_POSTS; i++) {
		ck_assert_msg(posts[i].status == 201, "POST %d: %ld %s", i,
		    posts[i].status, posts[i].out.data);
		posts[i].customer = json_loads(posts[i].out.data, 0, NULL);
		ck_assert_ptr_nonnull(posts[i].customer);
		posts[i].id = json_string_value(json_object_get(
		    posts[i].customer, "id"));
		ck_assert(posts[i].id != NULL &&
		    uid_valid(posts[i].id, strlen(posts[i].id)));
	}
	ck_assert_msg(h_wait_count(mails, N_POSTS, 120000), "%lld welcome "
	    "mails after 120 s", h_count(mails, NULL, 0));
	fprintf(stderr, "e2e: %d POSTs to %d welcome mails in %lld ms\n",
	    N_POSTS, N_POSTS, clock_ms() - t0);

	/* Exactly one welcome mail per customer, with its data, written
	 * for the message the app put in the outbox for it. */
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers", NULL, 0),
	    N_POSTS);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM welcome_emails", NULL,
	    0), N_POSTS);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers c JOIN "
	    "welcome_emails w ON w.customer_id = c.id AND w.email = c.email "
	    "AND w.name = c.name JOIN outbox o ON o.message_id = w.message_id "
	    "AND JSON_VALUE(o.payload, '$.id') = c.id JOIN processed_messages "
	    "p ON p.message_id = w.message_id", NULL, 0), N_POSTS);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM processed_messages",
	    NULL, 0), N_POSTS);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE "
	    "published_at IS NULL", NULL, 0), 0);

	/* The original's lines (written once the commit is done). */
	ck_assert(h_wait_log(&worker, "Handling [CustomerCreated]", N_POSTS,
	    30000));
	qsort(posts, N_POSTS, sizeof(posts[0]), cmp_post_id);
	check_worker_lines(&worker);
	for (i = 0; i < N_POSTS; i++)
		ck_assert_msg(posts[i].logged == 1, "customer %s: %d lines",
		    posts[i].id, posts[i].logged);
	ck_assert(h_log_contains(&relay, "Published messages: ["));
	ck_assert_int_eq(h_mq_depth(MQ_QUEUE), 0);
	ck_assert_int_eq(h_mq_depth(MQ_DLQ), 0);

	/* All three stop cleanly (exit 0: no leak either). */
	h_stop_clean(&worker);
	h_stop_clean(&relay);
	h_stop_clean(&app);
	for (i = 0; i < N_POSTS; i++) {
		json_decref(posts[i].customer);
		buf_free(&posts[i].out);
	}
}
END_TEST

Suite *
it_e2e_suite(void)
{
	const TTest *const e2e[] = { thousand_posts_thousand_welcome_emails,
	    NULL };
	Suite *s = suite_create("e2e");

	suites_case(s, "three daemons", 240, NULL, NULL, e2e);
	return s;
}
