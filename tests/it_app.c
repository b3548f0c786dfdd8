/*
 * it_app.c - integration tests of outbox-app against the real MariaDB:
 * the bad-request table, creation and reads, concurrency, idempotency
 * keys, atomicity of the two inserts, database outage, shutdown.
 */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "harness.h"

Suite *it_app_suite(void);

#define JSON "application/json"

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
app_up(void)
{
	static const char *const env[] = { "APP_DB_POOL=4", NULL };
	struct h_resp r;

	h_reset_tables();
	H_START(&app, H_APP, NULL, env);
	/* The customer the duplicate-email cases collide with. */
	static const char dup[] =
	    "{\"email\":\"Dup@Example.com\",\"name\":\"D\"}";

	ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON, dup,
	    strlen(dup), NULL, &r), 0);
	ck_assert_int_eq(r.status, 201);
	h_resp_free(&r);
}

static void
app_down(void)
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

/* ---- limits ---- */

START_TEST(oversized_header_refused)
{
	static char hdr[40 * 1024];
	const char *hdrs[] = { hdr, NULL };
	struct h_resp r;
	int rc;

	memcpy(hdr, "X-Big: ", 7);
	memset(hdr + 7, 'x', sizeof(hdr) - 8);
	hdr[sizeof(hdr) - 1] = '\0';
	rc = h_http(app.port, "GET", "/healthz", NULL, NULL, 0, hdrs, &r);
	/* Refused with a 4xx, or the connection is dropped. */
	ck_assert_msg(rc == -1 || (r.status >= 400 && r.status < 500),
	    "status %ld", r.status);
	h_resp_free(&r);
	/* And the server goes on serving others. */
	ck_assert_int_eq(h_http(app.port, "GET", "/healthz", NULL, NULL, 0,
	    NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
}
END_TEST

/* ---- hostile clients ---- */

/* Opens a TCP connection to the app; -1 on failure. */
static int
raw_connect(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static long
rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* 300 idle connections, 200 slowloris requests (headers or body never
 * finished) and 100 oversized bodies announced: other clients are still
 * served, and the app's memory stays bounded. */
START_TEST(slow_and_idle_clients_do_not_block)
{
	enum { IDLE = 300, SLOW = 200, BIG = 100, GOOD = 100 };
	static int fds[IDLE + SLOW + BIG];
	static const char slow_hdr[] = "POST /customers HTTP/1.1\r\n"
	    "Host: x\r\nContent-Type: application/json\r\n";
	static const char slow_body[] = "POST /customers HTTP/1.1\r\n"
	    "Host: x\r\nContent-Type: application/json\r\n"
	    "Content-Length: 1000\r\n\r\n{\"email\":";
	static const char big[] = "POST /customers HTTP/1.1\r\n"
	    "Host: x\r\nContent-Type: application/json\r\n"
	    "Content-Length: 100000000\r\n\r\n";
	long rss0, rss1;
	int i, n = 0, ok = 0;
	struct h_resp r;
	char body[128];

	raise_nofile();
	rss0 = rss_kib(app.pid);
	for (i = 0; i < IDLE; i++)
		if ((fds[n] = raw_connect(app.port)) >= 0)
			n++;
	for (i = 0; i < SLOW; i++) {
		if ((fds[n] = raw_connect(app.port)) < 0)
			continue;
		if (i % 2 == 0)
			ck_assert(write(fds[n], slow_hdr, sizeof(slow_hdr) - 1) > 0);
		else
			ck_assert(write(fds[n], slow_body, sizeof(slow_body) - 1) > 0);
		n++;
	}
	for (i = 0; i < BIG; i++) {
		if ((fds[n] = raw_connect(app.port)) < 0)
			continue;
		ck_assert(write(fds[n], big, sizeof(big) - 1) > 0);
		n++;
	}
	ck_assert_int_ge(n, IDLE + SLOW + BIG - 10);
	for (i = 0; i < GOOD; i++) {
		snprintf(body, sizeof(body), "{\"email\":\"hostile%d@example.com\","
		    "\"name\":\"H\"}", i);
		ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON,
		    body, strlen(body), NULL, &r), 0);
		ok += r.status == 201;
		h_resp_free(&r);
	}
	ck_assert_int_eq(ok, GOOD);
	rss1 = rss_kib(app.pid);
	fprintf(stderr, "hostile: %d open connections; app RSS %ld KiB -> "
	    "%ld KiB\n", n, rss0, rss1);
	/* Bounded: 600 connections cost at most their memory limit each
	 * (APP_CONN_MEMORY_KIB, 32 KiB) plus bookkeeping, not the 100 MB
	 * the big requests announced. */
	ck_assert_int_lt(rss1 - rss0, 64 * 1024);
	for (i = 0; i < n; i++)
		close(fds[i]);
}
END_TEST

struct limit_ud {
	int port;
};

static int
healthz_ok(void *ud)
{
	struct limit_ud *u = ud;
	struct h_resp r;
	int ok;

	if (h_http(u->port, "GET", "/healthz", NULL, NULL, 0, NULL, &r) == -1)
		return 0;
	ok = r.status == 200;
	h_resp_free(&r);
	return ok;
}

/* A flood that fills the connection limit with idle connections is shed
 * by the idle timeout: the server serves again without anyone leaving. */
START_TEST(connection_flood_is_shed)
{
	enum { FLOOD = 150 };
	static const char *const env[] = { "APP_MAX_CONNECTIONS=100",
		"APP_CONN_TIMEOUT=2", NULL };
	static int fds[FLOOD];
	struct limit_ud u;
	struct h_daemon d = { 0 };
	int i, n = 0;

	raise_nofile();
	H_START(&d, H_APP, NULL, env);
	u.port = d.port;
	for (i = 0; i < FLOOD; i++)
		if ((fds[n] = raw_connect(d.port)) >= 0)
			n++;
	/* Within the timeout plus a margin, a new client is served while
	 * the flood's sockets are still open on our side. */
	ck_assert_msg(h_wait(60000, healthz_ok, &u), "not served again "
	    "within 60 s of a connection flood");
	for (i = 0; i < n; i++)
		close(fds[i]);
	ck_assert_int_eq(h_daemon_stop(&d, H_STOP_MS), 0);
}
END_TEST

/* ---- least privilege ---- */

/* Runs sql as role's login; returns db_errno (0 when it was allowed). */
static unsigned
as_role(const char *role, const char *sql)
{
	struct db_params p;
	unsigned e = 0;
	db_conn *c;

	h_role_db_params(role, &p);
	c = db_new(&p);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(db_connect(c) == DB_OK, "%s login: %s", role,
	    db_error(c));
	if (db_exec_sql(c, sql) != DB_OK)
		e = db_errno(c);
	db_free(c);
	return e;
}

static const struct {
	const char *role;
	const char *sql;
	int allowed;
} grants[] = {
	/* 1142: command denied for the table. */
	{ "APP", "SELECT COUNT(*) FROM welcome_emails", 0 },
	{ "APP", "SELECT COUNT(*) FROM processed_messages", 0 },
	{ "APP", "SELECT COUNT(*) FROM outbox", 0 },
	{ "APP", "UPDATE outbox SET attempts = 0 WHERE seq = 0", 0 },
	{ "APP", "DELETE FROM customers WHERE id = ''", 0 },
	{ "APP", "DROP TABLE customers", 0 },
	{ "RELAY", "SELECT COUNT(*) FROM customers", 0 },
	{ "RELAY", "INSERT INTO outbox (message_id, event_name, payload, "
	    "created_at) VALUES ('x', 'y', '{}', NOW())", 0 },
	{ "RELAY", "SELECT COUNT(*) FROM welcome_emails", 0 },
	{ "WORKER", "INSERT INTO customers (id, email, name, created_at, "
	    "updated_at) VALUES ('x', 'x@y.io', 'x', NOW(), NOW())", 0 },
	{ "WORKER", "SELECT COUNT(*) FROM customers", 0 },
	{ "WORKER", "SELECT COUNT(*) FROM outbox", 0 },
	{ "WORKER", "DELETE FROM processed_messages", 0 },
	{ "AUDIT", "DELETE FROM outbox WHERE seq = 0", 0 },
	/* And what each needs is allowed. */
	{ "APP", "SELECT COUNT(*) FROM customers", 1 },
	{ "RELAY", "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL", 1 },
	{ "WORKER", "SELECT COUNT(*) FROM processed_messages", 1 },
	{ "AUDIT", "SELECT COUNT(*) FROM welcome_emails", 1 },
};

START_TEST(database_grants)
{
	unsigned e = as_role(grants[_i].role, grants[_i].sql);

	if (grants[_i].allowed)
		ck_assert_msg(e == 0, "%s: %s refused (%u)", grants[_i].role,
		    grants[_i].sql, e);
	else
		ck_assert_msg(e == 1142 || e == 1143, "%s: %s: want refused "
		    "(1142), got %u", grants[_i].role, grants[_i].sql, e);
}
END_TEST

/* The worker's RabbitMQ user cannot publish through the default exchange
 * (straight into queue outbox), and the relay's cannot reach outside the
 * topology. */
START_TEST(broker_permissions)
{
	struct mq_params p;
	struct mq_msg m;
	mq_conn *c;

	memset(&m, 0, sizeof(m));
	m.body = "{}";
	m.len = 2;
	m.message_id = "00000000-0000-4000-8000-000000000001";
	m.type = "CustomerCreated";
	h_role_mq_params("WORKER", &p);
	c = mq_new(&p);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(mq_connect(c, 1) == 0, "worker login: %s", mq_error(c));
	ck_assert_int_eq(mq_publish_batch(c, "", MQ_QUEUE, &m, 1, 5000), -1);
	ck_assert_msg(strstr(mq_error(c), "403") != NULL, "want 403: %s",
	    mq_error(c));
	mq_free(c);

	h_role_mq_params("RELAY", &p);
	c = mq_new(&p);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(mq_connect(c, 0) == 0, "relay login: %s", mq_error(c));
	ck_assert_int_eq(mq_declare_topology(c), 0);
	ck_assert_int_eq(mq_consume(c, "not-the-outbox", 1), -1);
	ck_assert_msg(strstr(mq_error(c), "403") != NULL, "want 403: %s",
	    mq_error(c));
	mq_free(c);
}
END_TEST

/* ---- database outage ---- */

struct created_ud {
	int port;
	int n;
};

static int
post_created(void *ud)
{
	struct created_ud *u = ud;
	char body[128];
	struct h_resp r;
	int ok;

	snprintf(body, sizeof(body), "{\"email\":\"back%d@example.com\","
	    "\"name\":\"Back\"}", u->n++);
	if (h_http(u->port, "POST", "/customers", JSON, body, strlen(body),
	    NULL, &r) == -1)
		return 0;
	ok = r.status == 201;
	h_resp_free(&r);
	return ok;
}

START_TEST(database_down_then_back)
{
	static const char body[] = "{\"email\":\"down@example.com\","
	    "\"name\":\"Down\"}";
	struct created_ud u = { app.port, 0 };
	struct h_resp r;
	pid_t pid = app.pid;
	long long t0;

	ck_assert_int_eq(h_infra("db-stop"), 0);
	t0 = clock_ms();
	ck_assert_int_eq(h_http(app.port, "POST", "/customers", JSON, body,
	    strlen(body), NULL, &r), 0);
	ck_assert_int_eq(r.status, 503);
	ck_assert(h_is_error_body(r.body));
	h_resp_free(&r);
	ck_assert_int_eq(h_http(app.port, "GET", "/readyz", NULL, NULL, 0,
	    NULL, &r), 0);
	ck_assert_int_eq(r.status, 503);
	h_resp_free(&r);
	ck_assert_int_eq(h_http(app.port, "GET", "/healthz", NULL, NULL, 0,
	    NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
	fprintf(stderr, "database down: answered 503 in %lld ms\n",
	    clock_ms() - t0);
	ck_assert_int_eq(kill(pid, 0), 0);

	ck_assert_int_eq(h_infra("db-start"), 0);
	/* The same process recovers by itself. */
	ck_assert_msg(h_wait(60000, post_created, &u),
	    "no 201 within 60 s of the database restart");
	ck_assert_int_eq(app.pid, pid);
	ck_assert_int_eq(kill(pid, 0), 0);
	ck_assert(h_log_contains(&app, "database unavailable"));
	ck_assert(h_log_contains(&app, "database reachable again"));
}
END_TEST

/* ---- shutdown ---- */

START_TEST(sigterm_clean_exit)
{
	static const char body[] = "{\"email\":\"term@example.com\","
	    "\"name\":\"Term\"}";
	struct h_daemon d = { 0 };
	struct h_resp r;

	H_START(&d, H_APP, NULL, NULL);
	ck_assert_int_eq(h_http(d.port, "POST", "/customers", JSON, body,
	    strlen(body), NULL, &r), 0);
	ck_assert_int_eq(r.status, 201);
	h_resp_free(&r);
	/* Exit 0 also means LeakSanitizer found nothing. */
	h_stop_clean(&d);
}
END_TEST

START_TEST(bad_config_refused)
{
	static const char *const env[] = { "APP_PORT=http", NULL };
	struct h_daemon d = { 0 };

	h_spawn(&d, H_APP, __func__, NULL, env);
	ck_assert_int_eq(h_daemon_wait(&d, H_STOP_MS), 1);
	ck_assert(h_log_contains(&d, "APP_PORT"));
}
END_TEST

Suite *
it_app_suite(void)
{
	Suite *s = suite_create("app");
	TCase *tc = tcase_create("api");
	TCase *out = tcase_create("outage");

	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, app_up, app_down);
	tcase_add_loop_test(tc, bad_request, 0,
	    (int)(sizeof(bads) / sizeof(bads[0])));
	tcase_add_test(tc, create_and_get);
	tcase_add_test(tc, health);
	tcase_add_test(tc, concurrent_distinct);
	tcase_add_test(tc, concurrent_same_email);
	tcase_add_test(tc, idempotency_replay_and_conflict);
	tcase_add_test(tc, idempotency_concurrent);
	tcase_add_test(tc, outbox_failure_rolls_back_customer);
	tcase_add_test(tc, oversized_header_refused);
	tcase_add_test(tc, slow_and_idle_clients_do_not_block);
	tcase_add_test(tc, connection_flood_is_shed);
	tcase_add_test(tc, sigterm_clean_exit);
	tcase_add_test(tc, bad_config_refused);
	tcase_add_loop_test(tc, database_grants, 0,
	    (int)(sizeof(grants) / sizeof(grants[0])));
	tcase_add_test(tc, broker_permissions);
	suite_add_tcase(s, tc);

	tcase_set_timeout(out, 120);
	tcase_add_unchecked_fixture(out, app_up, app_down);
	tcase_add_test(out, database_down_then_back);
	suite_add_tcase(s, out);
	return s;
}
