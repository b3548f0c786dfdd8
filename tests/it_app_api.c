/*
 * it_app_api.c - the app's HTTP API against the real MariaDB, one app
 * for the whole case: the table of bad requests (status, JSON error
 * body, nothing written), creation and reads, health, 200 concurrent
 * creations and 50 of one email, Idempotency-Key replay, conflict and
 * concurrency, and the atomicity of the customer and its outbox row;
 * expired idempotency keys pruned under load.
 */
#include <check.h>
#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "harness.h"
#include "suites.h"

Suite *it_app_api_suite(void);

#define JSON "application/json"

/* The app all the tests of the case talk to. */
static struct h_daemon app;

/* Rows in every table the app writes. */
static long long
rows_everywhere(void)
{
	return h_count("SELECT (SELECT COUNT(*) FROM customers) + "
	    "(SELECT COUNT(*) FROM outbox) + "
	    "(SELECT COUNT(*) FROM idempotency_keys)", NULL, 0);
}

static void
api_app_up(void)
{
	static const char *const env[] = { "APP_DB_POOL=4", NULL };
	/* The customer the duplicate-email cases collide with. */
	static const char dup[] =
	    "{\"email\":\"Dup@Example.com\",\"name\":\"D\"}";
	struct h_resp r;

	h_reset_tables();
	H_START(&app, H_APP, NULL, env);
	ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON, dup,
	    strlen(dup), NULL, &r), 0);
	ck_assert_int_eq(r.status, 201);
	h_resp_free(&r);
}

static void
api_app_down(void)
{
	h_daemon_stop(&app, H_STOP_MS);
}

/* ---- the bad-request table ---- */

#define UUID0 "00000000-0000-4000-8000-000000000000"

struct bad {
	const char *what;
	const char *method;
	const char *path;
	const char *ctype;
	const char *body; /* NULL: none; "@20k": a 20 KiB body */
	int status;
	const char *allow;
	const char *header;
};

static const struct bad bads[] = {
	{ "malformed JSON", "POST", "/customers", JSON, "{", 400, NULL, NULL },
	{ "not JSON", "POST", "/customers", JSON, "email=a@b.io", 400, NULL, NULL },
	{ "truncated object", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"x\"", 400, NULL, NULL },
	{ "truncated string", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"x", 400, NULL, NULL },
	{ "truncated key", "POST", "/customers", JSON, "{\"email\":\"a@b.io\",\"na",
	    400, NULL, NULL },
	{ "trailing garbage", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"x\"}}", 400, NULL, NULL },
	{ "empty body", "POST", "/customers", JSON, "", 400, NULL, NULL },
	{ "no body", "POST", "/customers", JSON, NULL, 400, NULL, NULL },
	{ "array", "POST", "/customers", JSON, "[]", 400, NULL, NULL },
	{ "array of object", "POST", "/customers", JSON,
	    "[{\"email\":\"a@b.io\",\"name\":\"x\"}]", 400, NULL, NULL },
	{ "number", "POST", "/customers", JSON, "42", 400, NULL, NULL },
	{ "string", "POST", "/customers", JSON, "\"a@b.io\"", 400, NULL, NULL },
	{ "null", "POST", "/customers", JSON, "null", 400, NULL, NULL },
	{ "duplicate key", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"email\":\"c@d.io\",\"name\":\"x\"}", 400,
	    NULL, NULL },
	{ "NUL escape", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"a\\u0000b\"}", 400, NULL, NULL },
	{ "invalid UTF-8 name", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"\xff\xfe\"}", 400, NULL, NULL },
	{ "invalid UTF-8 email", "POST", "/customers", JSON,
	    "{\"email\":\"a\xc3@b.io\",\"name\":\"x\"}", 400, NULL, NULL },
	{ "empty object", "POST", "/customers", JSON, "{}", 422, NULL, NULL },
	{ "missing email", "POST", "/customers", JSON, "{\"name\":\"x\"}", 422,
	    NULL, NULL },
	{ "missing name", "POST", "/customers", JSON, "{\"email\":\"a@b.io\"}",
	    422, NULL, NULL },
	{ "number email", "POST", "/customers", JSON,
	    "{\"email\":5,\"name\":\"x\"}", 422, NULL, NULL },
	{ "number name", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":5}", 422, NULL, NULL },
	{ "null email", "POST", "/customers", JSON,
	    "{\"email\":null,\"name\":\"x\"}", 422, NULL, NULL },
	{ "null name", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":null}", 422, NULL, NULL },
	{ "bool name", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":true}", 422, NULL, NULL },
	{ "array email", "POST", "/customers", JSON,
	    "{\"email\":[\"a@b.io\"],\"name\":\"x\"}", 422, NULL, NULL },
	{ "object name", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":{\"first\":\"x\"}}", 422, NULL, NULL },
	{ "empty email", "POST", "/customers", JSON,
	    "{\"email\":\"\",\"name\":\"x\"}", 422, NULL, NULL },
	{ "empty name", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"\"}", 422, NULL, NULL },
	{ "blank name", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"   \"}", 422, NULL, NULL },
	{ "email without @", "POST", "/customers", JSON,
	    "{\"email\":\"ab.io\",\"name\":\"x\"}", 422, NULL, NULL },
	{ "email with two @", "POST", "/customers", JSON,
	    "{\"email\":\"a@b@c.io\",\"name\":\"x\"}", 422, NULL, NULL },
	{ "email without dot", "POST", "/customers", JSON,
	    "{\"email\":\"a@localhost\",\"name\":\"x\"}", 422, NULL, NULL },
	{ "email with space", "POST", "/customers", JSON,
	    "{\"email\":\" a@b.io\",\"name\":\"x\"}", 422, NULL, NULL },
	{ "email with tab", "POST", "/customers", JSON,
	    "{\"email\":\"a\\t@b.io\",\"name\":\"x\"}", 422, NULL, NULL },
	{ "over-long email", "POST", "/customers", JSON, "@long-email", 422,
	    NULL, NULL },
	{ "over-long name", "POST", "/customers", JSON, "@long-name", 422, NULL,
	    NULL },
	{ "control char in name", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"a\\u0001b\"}", 422, NULL, NULL },
	{ "newline in name", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"a\\nb\"}", 422, NULL, NULL },
	{ "DEL in name", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"a\x7f\"}", 422, NULL, NULL },
	{ "SQL in email", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io'; DROP TABLE customers; --\",\"name\":\"x\"}",
	    422, NULL, NULL },
	{ "SQL OR in email", "POST", "/customers", JSON,
	    "{\"email\":\"' OR '1'='1\",\"name\":\"x\"}", 422, NULL, NULL },
	{ "duplicate email, other case", "POST", "/customers", JSON,
	    "{\"email\":\"dup@EXAMPLE.com\",\"name\":\"x\"}", 409, NULL, NULL },
	{ "duplicate email, same case", "POST", "/customers", JSON,
	    "{\"email\":\"Dup@Example.com\",\"name\":\"y\"}", 409, NULL, NULL },
	{ "20 KiB body", "POST", "/customers", JSON, "@20k", 413, NULL, NULL },
	{ "wrong Content-Type", "POST", "/customers", "text/plain",
	    "{\"email\":\"a@b.io\",\"name\":\"x\"}", 415, NULL, NULL },
	{ "form Content-Type", "POST", "/customers",
	    "application/x-www-form-urlencoded", "email=a@b.io&name=x", 415,
	    NULL, NULL },
	{ "missing Content-Type", "POST", "/customers", NULL,
	    "{\"email\":\"a@b.io\",\"name\":\"x\"}", 415, NULL, NULL },
	{ "Content-Type lookalike", "POST", "/customers", "application/jsonp",
	    "{\"email\":\"a@b.io\",\"name\":\"x\"}", 415, NULL, NULL },
	{ "Idempotency-Key too long", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"x\"}", 400, NULL, "@long-key" },
	{ "Idempotency-Key not ASCII", "POST", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"x\"}", 400, NULL,
	    "Idempotency-Key: caf\xc3\xa9" },
	{ "GET on /customers", "GET", "/customers", NULL, NULL, 405, "POST",
	    NULL },
	{ "PUT on /customers", "PUT", "/customers", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"x\"}", 405, "POST", NULL },
	{ "DELETE on /customers", "DELETE", "/customers", NULL, NULL, 405,
	    "POST", NULL },
	{ "PATCH on a customer", "PATCH", "/customers/" UUID0, JSON, "{}", 405,
	    "GET, HEAD", NULL },
	{ "POST on a customer", "POST", "/customers/" UUID0, JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"x\"}", 405, "GET, HEAD", NULL },
	{ "POST on /healthz", "POST", "/healthz", JSON, "{}", 405, "GET, HEAD",
	    NULL },
	{ "unknown path", "POST", "/customer", JSON,
	    "{\"email\":\"a@b.io\",\"name\":\"x\"}", 404, NULL, NULL },
	{ "root path", "GET", "/", NULL, NULL, 404, NULL, NULL },
	{ "nested unknown path", "POST", "/customers/x/y", JSON, "{}", 405,
	    "GET, HEAD", NULL },
	{ "customer id not a UUID", "GET", "/customers/42", NULL, NULL, 404,
	    NULL, NULL },
	{ "unknown customer", "GET", "/customers/" UUID0, NULL, NULL, 404,
	    NULL, NULL },
};

START_TEST(bad_request)
{
	const struct bad *b = &bads[_i];
	const char *hdrs[2] = { b->header, NULL };
	static char big[20 * 1024 + 64], key[300];
	const char *body = b->body;
	size_t len = body ? strlen(body) : 0;
	long long before, after;
	struct h_resp r;
	int n;

	if (body != NULL && strcmp(body, "@20k") == 0) {
		memset(big, ' ', sizeof(big));
		memcpy(big, "{\"email\":\"big@b.io\",\"name\":\"x\"}", 31);
		body = big;
		len = 20 * 1024;
	} else if (body != NULL && strcmp(body, "@long-email") == 0) {
		/* 255 bytes: one over the limit. */
		n = snprintf(big, sizeof(big), "{\"email\":\"");
		memset(big + n, 'a', 255 - 6);
		snprintf(big + n + 249, sizeof(big) - (size_t)n - 249,
		    "@b.com\",\"name\":\"x\"}");
		body = big;
		len = strlen(big);
	} else if (body != NULL && strcmp(body, "@long-name") == 0) {
		/* 256 characters: one over the limit. */
		n = snprintf(big, sizeof(big), "{\"email\":\"a@b.io\",\"name\":\"");
		memset(big + n, 'n', 256);
		snprintf(big + n + 256, sizeof(big) - (size_t)n - 256, "\"}");
		body = big;
		len = strlen(big);
	}
	if (b->header != NULL && strcmp(b->header, "@long-key") == 0) {
		/* 256 bytes: one over the limit. */
		n = snprintf(key, sizeof(key), "Idempotency-Key: ");
		memset(key + n, 'k', 256);
		key[n + 256] = '\0';
		hdrs[0] = key;
	}
	before = rows_everywhere();
	ck_assert_int_eq(h_http(app.port, b->method, b->path, b->ctype, body,
	    len, hdrs, &r), 0);
	after = rows_everywhere();
	ck_assert_msg(r.status == b->status, "%s: status %ld, want %d (%s)",
	    b->what, r.status, b->status, r.body);
	ck_assert_msg(h_is_error_body(r.body), "%s: body is not a JSON error: "
	    "%s", b->what, r.body);
	ck_assert_str_eq(r.content_type, "application/json");
	if (b->allow != NULL)
		ck_assert_str_eq(r.allow, b->allow);
	ck_assert_msg(before == after, "%s: rows changed from %lld to %lld",
	    b->what, before, after);
	h_resp_free(&r);
}
END_TEST

/* ---- creation and reads ---- */

static json_t *
json_of(const struct h_resp *r)
{
	json_t *o = json_loads(r->body, 0, NULL);

	ck_assert_msg(o != NULL, "not JSON: %s", r->body);
	return o;
}

START_TEST(create_and_get)
{
	static const char body[] =
	    "{\"email\":\"Create.Get@Example.com\",\"name\":\"Zoë '; DROP "
	    "TABLE customers; --\"}";
	struct db_val a[1];
	struct h_resp r, g;
	json_t *o, *p;
	char path[256];
	const char *id;
	size_t i;

	ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON, body,
	    strlen(body), NULL, &r), 0);
	ck_assert_int_eq(r.status, 201);
	o = json_of(&r);
	id = json_string_value(json_object_get(o, "id"));
	ck_assert_ptr_nonnull(id);
	ck_assert_uint_eq(strlen(id), 36);
	ck_assert_str_eq(json_string_value(json_object_get(o, "email")),
	    "Create.Get@Example.com");
	ck_assert_str_eq(json_string_value(json_object_get(o, "name")),
	    "Zoë '; DROP TABLE customers; --");
	ck_assert_ptr_nonnull(json_string_value(json_object_get(o,
	    "CreatedAt")));
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(o,
	    "CreatedAt")), "Z"));
	ck_assert_uint_eq(json_object_size(o), 5);
	snprintf(path, sizeof(path), "/customers/%s", id);
	ck_assert_str_eq(r.location, path);

	/* One customer row, one outbox row holding exactly the body. */
	a[0] = DB_STR(id);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers WHERE id = ?",
	    a, 1), 1);
	a[0] = DB_STRN(r.body, r.len);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE "
	    "event_name = 'CustomerCreated' AND published_at IS NULL AND "
	    "JSON_EQUALS(payload, ?)", a, 1), 1);

	ck_assert_int_eq(h_http(app.port, "GET", path, NULL, NULL, 0, NULL,
	    &g), 0);
	ck_assert_int_eq(g.status, 200);
	p = json_of(&g);
	ck_assert(json_equal(o, p));
	json_decref(p);
	h_resp_free(&g);

	/* The same id in upper case names the same customer (a UUID is
	 * read without case; the ids are stored in lower case). */
	for (i = strlen("/customers/"); path[i] != '\0'; i++)
		path[i] = (char)toupper((unsigned char)path[i]);
	ck_assert_int_eq(h_http(app.port, "GET", path, NULL, NULL, 0, NULL,
	    &g), 0);
	ck_assert_msg(g.status == 200, "GET %s: %ld", path, g.status);
	p = json_of(&g);
	ck_assert(json_equal(o, p));
	json_decref(p);
	json_decref(o);
	h_resp_free(&g);
	h_resp_free(&r);
}
END_TEST

START_TEST(health)
{
	struct h_resp r;

	ck_assert_int_eq(h_http(app.port, "GET", "/healthz", NULL, NULL, 0,
	    NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
	ck_assert_int_eq(h_http(app.port, "GET", "/readyz", NULL, NULL, 0,
	    NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
}
END_TEST

/* ---- concurrency ---- */

struct post {
	char body[256];
	struct curl_slist *hdr;
	struct buf out;
	long status;
};

static size_t
post_write(char *p, size_t size, size_t n, void *ud)
{
	struct post *ps = ud;

	return buf_append(&ps->out, p, size * n) == 0 ? size * n : 0;
}

/* Sends the n POSTs at once, on n connections. */
static void
post_concurrently(struct post *ps, int n)
{
	CURLM *m = curl_multi_init();
	CURL **hs = calloc((size_t)n, sizeof(*hs));
	int i, running = 1;
	CURLMsg *msg;
	char url[128];

	ck_assert_ptr_nonnull(hs);
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)n);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/customers", app.port);
	for (i = 0; i < n; i++) {
		hs[i] = curl_easy_init();
		buf_init(&ps[i].out, 65536);
		ps[i].hdr = curl_slist_append(ps[i].hdr,
		    "Content-Type: application/json");
		ps[i].hdr = curl_slist_append(ps[i].hdr, "Expect:");
		curl_easy_setopt(hs[i], CURLOPT_URL, url);
		curl_easy_setopt(hs[i], CURLOPT_POSTFIELDS, ps[i].body);
		curl_easy_setopt(hs[i], CURLOPT_HTTPHEADER, ps[i].hdr);
		curl_easy_setopt(hs[i], CURLOPT_WRITEFUNCTION, post_write);
		curl_easy_setopt(hs[i], CURLOPT_WRITEDATA, &ps[i]);
		curl_easy_setopt(hs[i], CURLOPT_TIMEOUT_MS, 60000L);
		curl_easy_setopt(hs[i], CURLOPT_PRIVATE, &ps[i]);
		curl_multi_add_handle(m, hs[i]);
	}
	while (running) {
		curl_multi_perform(m, &running);
		if (running)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	while ((msg = curl_multi_info_read(m, &i)) != NULL) {
		struct post *p;

		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&p);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
		    &p->status);
	}
	for (i = 0; i < n; i++) {
		curl_multi_remove_handle(m, hs[i]);
		curl_easy_cleanup(hs[i]);
		curl_slist_free_all(ps[i].hdr);
	}
	curl_multi_cleanup(m);
	free(hs);
}

START_TEST(concurrent_distinct)
{
	enum { N = 200 };
	static struct post ps[N];
	long long c0, o0;
	int i, created = 0;

	c0 = h_count("SELECT COUNT(*) FROM customers", NULL, 0);
	o0 = h_count("SELECT COUNT(*) FROM outbox", NULL, 0);
	for (i = 0; i < N; i++)
		snprintf(ps[i].body, sizeof(ps[i].body),
		    "{\"email\":\"many%d@example.com\",\"name\":\"Many %d\"}", i,
		    i);
	post_concurrently(ps, N);
	for (i = 0; i < N; i++) {
		created += ps[i].status == 201;
		buf_free(&ps[i].out);
	}
	ck_assert_int_eq(created, N);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers", NULL, 0),
	    c0 + N);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox", NULL, 0),
	    o0 + N);
	/* Each customer has exactly its own outbox row. */
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers c JOIN "
	    "outbox o ON JSON_VALUE(o.payload, '$.id') = c.id WHERE c.email "
	    "LIKE 'many%'", NULL, 0), N);
}
END_TEST

START_TEST(concurrent_same_email)
{
	enum { N = 50 };
	static struct post ps[N];
	int i, created = 0, conflicts = 0;

	for (i = 0; i < N; i++)
		snprintf(ps[i].body, sizeof(ps[i].body),
		    "{\"email\":\"%s@example.com\",\"name\":\"Same\"}",
		    i % 2 ? "same" : "SAME");
	post_concurrently(ps, N);
	for (i = 0; i < N; i++) {
		created += ps[i].status == 201;
		conflicts += ps[i].status == 409;
		if (ps[i].status == 409)
			ck_assert(h_is_error_body(ps[i].out.data));
		buf_free(&ps[i].out);
	}
	ck_assert_int_eq(created, 1);
	ck_assert_int_eq(conflicts, N - 1);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers WHERE "
	    "email_key = 'same@example.com'", NULL, 0), 1);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE "
	    "JSON_VALUE(payload, '$.email') IN ('same@example.com', "
	    "'SAME@example.com')", NULL, 0), 1);
}
END_TEST

/* ---- idempotency ---- */

START_TEST(idempotency_replay_and_conflict)
{
	static const char a[] = "{\"email\":\"idem@example.com\",\"name\":\"I\"}";
	static const char b[] = "{\"email\":\"idem2@example.com\",\"name\":\"I\"}";
	const char *key[] = { "Idempotency-Key: order-42", NULL };
	const char *other[] = { "Idempotency-Key: order-43", NULL };
	struct h_resp r1, r2, r3, r4;
	long long before;

	ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON, a,
	    strlen(a), key, &r1), 0);
	ck_assert_int_eq(r1.status, 201);
	before = rows_everywhere();
	/* Same key, same body: the first answer again, nothing written. */
	ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON, a,
	    strlen(a), key, &r2), 0);
	ck_assert_int_eq(r2.status, 201);
	ck_assert_str_eq(r2.body, r1.body);
	ck_assert_str_eq(r2.location, r1.location);
	ck_assert_int_eq(rows_everywhere(), before);
	/* Same key, another body: 422, nothing written. */
	ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON, b,
	    strlen(b), key, &r3), 0);
	ck_assert_int_eq(r3.status, 422);
	ck_assert(h_is_error_body(r3.body));
	ck_assert_int_eq(rows_everywhere(), before);
	/* Another key, same body: a new request, so the email conflicts. */
	ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON, a,
	    strlen(a), other, &r4), 0);
	ck_assert_int_eq(r4.status, 409);
	ck_assert_int_eq(rows_everywhere(), before);
	h_resp_free(&r1);
	h_resp_free(&r2);
	h_resp_free(&r3);
	h_resp_free(&r4);
}
END_TEST

START_TEST(idempotency_concurrent)
{
	enum { N = 20 };
	static struct post ps[N];
	int i;

	for (i = 0; i < N; i++) {
		snprintf(ps[i].body, sizeof(ps[i].body),
		    "{\"email\":\"idemc@example.com\",\"name\":\"C\"}");
		ps[i].hdr = curl_slist_append(NULL,
		    "Idempotency-Key: concurrent-key");
	}
	post_concurrently(ps, N);
	for (i = 0; i < N; i++) {
		ck_assert_msg(ps[i].status == 201, "status %ld: %s",
		    ps[i].status, ps[i].out.data);
		ck_assert_str_eq(ps[i].out.data, ps[0].out.data);
	}
	for (i = 0; i < N; i++)
		buf_free(&ps[i].out);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers WHERE "
	    "email_key = 'idemc@example.com'", NULL, 0), 1);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE "
	    "JSON_VALUE(payload, '$.email') = 'idemc@example.com'", NULL, 0), 1);
}
END_TEST

/* ---- atomicity ---- */

START_TEST(outbox_failure_rolls_back_customer)
{
	enum { N = 10 };
	static struct post ps[N];
	int i, created = 0, failed = 0;

	/* A real failure of the second insert, inside the transaction. */
	h_sql("DROP TRIGGER IF EXISTS test_outbox_fail");
	h_sql("CREATE TRIGGER test_outbox_fail BEFORE INSERT ON outbox "
	    "FOR EACH ROW IF JSON_VALUE(NEW.payload, '$.name') = "
	    "'atomicity-poison' THEN SIGNAL SQLSTATE '45000' SET "
	    "MESSAGE_TEXT = 'test: outbox insert refused'; END IF");
	for (i = 0; i < N; i++)
		snprintf(ps[i].body, sizeof(ps[i].body),
		    "{\"email\":\"atom%d@example.com\",\"name\":\"%s\"}", i,
		    i == 3 ? "atomicity-poison" : "atomicity-ok");
	post_concurrently(ps, N);
	h_sql("DROP TRIGGER test_outbox_fail");
	for (i = 0; i < N; i++) {
		if (i == 3) {
			ck_assert_int_eq(ps[i].status, 500);
			ck_assert(h_is_error_body(ps[i].out.data));
			failed++;
		} else {
			created += ps[i].status == 201;
		}
		buf_free(&ps[i].out);
	}
	ck_assert_int_eq(failed, 1);
	/* Requests grouped with the failing one still succeed. */
	ck_assert_int_eq(created, N - 1);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers WHERE "
	    "email_key = 'atom3@example.com'", NULL, 0), 0);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM customers WHERE "
	    "email_key LIKE 'atom%'", NULL, 0), N - 1);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM outbox WHERE "
	    "JSON_VALUE(payload, '$.email') LIKE 'atom%'", NULL, 0), N - 1);
}
END_TEST

/* ---- expired idempotency keys ---- */

struct keyed_load {
	int port;
	volatile int stop;
	int sent, created;
};

static void *
keyed_load_main(void *arg)
{
	struct keyed_load *k = arg;
	char body[128], key[64];
	const char *hdrs[] = { key, NULL };
	struct h_resp r;

	while (!k->stop) {
		snprintf(body, sizeof(body), "{\"email\":\"keyed%d@example.com\","
		    "\"name\":\"K\"}", k->sent);
		snprintf(key, sizeof(key), "Idempotency-Key: live-%d", k->sent);
		k->sent++;
		if (h_http(k->port, "POST", "/customers", JSON, body,
		    strlen(body), hdrs, &r) == 0 && r.status == 201)
			k->created++;
		h_resp_free(&r);
	}
	return NULL;
}

static int
expired_gone(void *ud)
{
	(void)ud;
	return h_count("SELECT COUNT(*) FROM idempotency_keys WHERE idem_key "
	    "LIKE 'expired-%'", NULL, 0) == 0;
}

/* 50,000 keys past APP_IDEMPOTENCY_TTL_HOURS all go while the app serves
 * keyed requests, whose own keys stay. */
START_TEST(expired_keys_pruned_under_load)
{
	static const char *const env[] = { "APP_DB_POOL=4", NULL };
	struct keyed_load k = { 0 };
	struct h_daemon d = { 0 };
	pthread_t th;
	long long t0;
	int gone;

	h_sql("INSERT INTO idempotency_keys (idem_key, request_email, "
	    "request_name, status, customer_id, response_body, created_at) "
	    "SELECT CONCAT('expired-', seq), 'old@example.com', 'Old', 201, "
	    "'" UUID0 "', '{}', UTC_TIMESTAMP(6) - INTERVAL 49 HOUR "
	    "FROM seq_1_to_50000");
	H_START(&d, H_APP, NULL, env);
	k.port = d.port;
	ck_assert_int_eq(pthread_create(&th, NULL, keyed_load_main, &k), 0);
	t0 = clock_ms();
	gone = h_wait(180000, expired_gone, NULL);
	k.stop = 1;
	pthread_join(th, NULL);
	fprintf(stderr, "50,000 expired keys: %s after %lld ms, %d of %d "
	    "keyed requests created meanwhile\n", gone ? "gone" : "NOT gone",
	    clock_ms() - t0, k.created, k.sent);
	ck_assert_msg(gone, "%lld expired keys left after 180 s",
	    h_count("SELECT COUNT(*) FROM idempotency_keys WHERE idem_key "
	    "LIKE 'expired-%'", NULL, 0));
	ck_assert_int_gt(k.created, 0);
	ck_assert_int_eq(k.created, k.sent);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM idempotency_keys WHERE "
	    "idem_key LIKE 'live-%'", NULL, 0), k.created);
	h_stop_clean(&d);
}
END_TEST

Suite *
it_app_api_suite(void)
{
	const TTest *const api[] = { create_and_get, health,
	    concurrent_distinct, concurrent_same_email,
	    idempotency_replay_and_conflict, idempotency_concurrent,
	    outbox_failure_rolls_back_customer, NULL };
	const TTest *const keys[] = { expired_keys_pruned_under_load, NULL };
	Suite *s = suite_create("app");
	TCase *tc;

	tc = suites_case(s, "api", 120, NULL, NULL, api);
	tcase_add_unchecked_fixture(tc, api_app_up, api_app_down);
	tcase_add_loop_test(tc, bad_request, 0,
	    (int)(sizeof(bads) / sizeof(bads[0])));
	suites_case(s, "keys", 300, h_reset_tables, NULL, keys);
	return s;
}
