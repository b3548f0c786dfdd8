/*
 * unit_worker.c - unit tests of the worker's pure logic: the handler
 * table, CustomerCreated payload decoding, batch bookkeeping (decoding,
 * repeats, the ack tag), the inbox retention's age rule, multi-row
 * statement texts, configuration.
 */
#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "msg.h"
#include "worker/inbatch.h"
#include "worker/inbox_retention.h"
#include "worker/config.h"
#include "worker/handlers.h"
#include "suites.h"
#include "testuid.h"
#include "unit.h"

Suite *unit_worker_suite(void);

#define ID1 "11111111-1111-4111-8111-111111111111"
#define ID2 "22222222-2222-4222-8222-222222222222"
#define ID3 "33333333-3333-4333-8333-333333333333"
#define CID "c0000000-0000-4000-8000-000000000001"

/* ---- the handler table ---- */

START_TEST(handler_lookup)
{
	const struct handler *h = handler_find("CustomerCreated");
	size_t i;

	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(h->event, MSG_EVENT_CUSTOMER_CREATED);
	ck_assert_ptr_nonnull(h->decode);
	ck_assert_ptr_nonnull(h->apply);
	ck_assert_ptr_nonnull(h->free_data);
	ck_assert_ptr_null(handler_find("customerCreated"));
	ck_assert_ptr_null(handler_find("CustomerCreated "));
	ck_assert_ptr_null(handler_find("CustomerDeleted"));
	ck_assert_ptr_null(handler_find(""));
	/* Every row is found by its own name: no two rows share one. */
	ck_assert_uint_ge(handler_count(), 1);
	for (i = 0; i < handler_count(); i++)
		ck_assert_ptr_eq(handler_find(handler_at(i)->event),
		    handler_at(i));
	ck_assert_ptr_null(handler_at(handler_count()));
}
END_TEST

/* ---- CustomerCreated payloads ---- */

struct cc_case {
	const char *what;
	const char *payload; /* NULL: generated from the two lengths */
	int email_len;       /* bytes of a generated email */
	int name_chars;      /* two-byte characters of a generated name */
	const char *reason;  /* NULL: accepted; else a substring */
};

static const struct cc_case cc_cases[] = {
	{ "as the app sends it", "{\"id\":\"" CID "\",\"email\":\"a@b.io\","
	    "\"name\":\"Zoë\",\"CreatedAt\":\"2021-08-04T09:37:07.305317Z\","
	    "\"UpdatedAt\":\"2021-08-04T09:37:07.305317Z\"}", 0, 0, NULL },
	{ "only the three fields", "{\"id\":\"" CID "\",\"email\":\"a@b.io\","
	    "\"name\":\"N\"}", 0, 0, NULL },
	{ "unknown extra field", "{\"id\":\"" CID "\",\"email\":\"a@b.io\","
	    "\"name\":\"N\",\"phone\":\"123\"}", 0, 0, NULL },
	{ "254-byte email", NULL, 254, 1, NULL },
	{ "255 two-byte characters", NULL, 6, 255, NULL },
	{ "missing id", "{\"email\":\"a@b.io\",\"name\":\"N\"}", 0, 0,
	    "missing or non-string \"id\"" },
	{ "numeric id", "{\"id\":42,\"email\":\"a@b.io\",\"name\":\"N\"}", 0, 0,
	    "missing or non-string \"id\"" },
	{ "id not a UUID", "{\"id\":\"42\",\"email\":\"a@b.io\","
	    "\"name\":\"N\"}", 0, 0, "\"id\" is not a UUID" },
	{ "missing email", "{\"id\":\"" CID "\",\"name\":\"N\"}", 0, 0,
	    "missing or non-string \"email\"" },
	{ "null email", "{\"id\":\"" CID "\",\"email\":null,\"name\":\"N\"}",
	    0, 0, "missing or non-string \"email\"" },
	{ "empty email", "{\"id\":\"" CID "\",\"email\":\"\",\"name\":\"N\"}",
	    0, 0, "empty \"email\"" },
	{ "255-byte email", NULL, 255, 1, "longer than 254 bytes" },
	{ "missing name", "{\"id\":\"" CID "\",\"email\":\"a@b.io\"}", 0, 0,
	    "missing or non-string \"name\"" },
	{ "object name", "{\"id\":\"" CID "\",\"email\":\"a@b.io\","
	    "\"name\":{\"first\":\"N\"}}", 0, 0,
	    "missing or non-string \"name\"" },
	{ "256 two-byte characters", NULL, 6, 256,
	    "longer than 255 characters" },
	{ "NUL in name", "{\"id\":\"" CID "\",\"email\":\"a@b.io\","
	    "\"name\":\"a\\u0000b\"}", 0, 0, "malformed JSON" },
	{ "array", "[]", 0, 0, "not an object" },
	{ "malformed", "{\"id\":", 0, 0, "malformed JSON" },
	{ "duplicate key", "{\"id\":\"" CID "\",\"id\":\"" CID "\","
	    "\"email\":\"a@b.io\",\"name\":\"N\"}", 0, 0, "malformed JSON" },
};

/* Builds a payload with an email of email_len bytes and a name of
 * name_chars "é". */
static void
cc_generate(const struct cc_case *c, struct buf *b)
{
	int i;

	buf_appendf(b, "{\"id\":\"%s\",\"email\":\"", CID);
	for (i = 0; i < c->email_len - 5; i++)
		buf_append(b, "a", 1);
	buf_appendf(b, "@b.io\",\"name\":\"");
	for (i = 0; i < c->name_chars; i++)
		buf_append(b, "\xc3\xa9", 2);
	buf_appendf(b, "\"}");
}

START_TEST(customer_created_decode)
{
	const struct cc_case *c = &cc_cases[_i];
	const struct handler *h = handler_find(MSG_EVENT_CUSTOMER_CREATED);
	const char *p = c->payload;
	char reason[256] = "";
	struct welcome *w;
	void *data = NULL;
	struct msg_event ev;
	char body[1024];
	json_error_t jerr;
	json_t *o;
	struct buf b;
	int rc;

	buf_init(&b, 1 << 16);
	if (p == NULL) {
		cc_generate(c, &b);
		p = b.data;
	}
	/* The payload as msg_decode reads it, within its message: a JSON
	 * object without duplicate keys or NUL in strings; what it refuses
	 * never reaches the handler. */
	o = json_loads(p, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL) {
		ck_assert_msg(c->reason != NULL && strcmp(c->reason,
		    "malformed JSON") == 0, "%s: not JSON: %s", c->what,
		    jerr.text);
		/* Refused with its message, before any handler. */
		snprintf(body, sizeof(body), "{\"id\":\"" CID "\","
		    "\"event_name\":\"CustomerCreated\",\"payload\":%s}", p);
		ck_assert_int_eq(msg_decode(body, strlen(body), &ev, reason,
		    sizeof(reason)), -1);
		ck_assert_ptr_nonnull(strstr(reason, "malformed JSON"));
		buf_free(&b);
		return;
	}
	rc = h->decode(o, &data, reason, sizeof(reason));
	json_decref(o);
	if (c->reason == NULL) {
		ck_assert_msg(rc == 0, "%s: refused: %s", c->what, reason);
		w = data;
		ck_assert_str_eq(w->customer_id, CID);
		ck_assert_ptr_nonnull(strstr(p, w->email));
		ck_assert_ptr_nonnull(strstr(p, w->name));
		if (c->email_len > 0)
			ck_assert_uint_eq(strlen(w->email),
			    (size_t)c->email_len);
	} else {
		ck_assert_msg(rc == -1, "%s: accepted", c->what);
		ck_assert_ptr_null(data);
		ck_assert_msg(strstr(reason, c->reason) != NULL,
		    "%s: reason \"%s\", want \"%s\"", c->what, reason,
		    c->reason);
	}
	h->free_data(data);
	buf_free(&b);
}
END_TEST

/* ---- batches ---- */

/* A delivery whose body is a string literal (nothing to free). */
static struct mq_delivery
delivery(uint64_t tag, const char *body)
{
	struct mq_delivery d;

	memset(&d, 0, sizeof(d));
	d.tag = tag;
	d.body = body;
	d.len = strlen(body);
	d.seq = -1;
	return d;
}

/* The body of a CustomerCreated message with message id id. */
static char *
body_for(const char *id)
{
	static char bodies[16][512];
	static int k;
	char *out = bodies[k++ % 16];

	snprintf(out, 512, "{\"id\":\"%s\",\"event_name\":\"CustomerCreated\","
	    "\"payload\":{\"id\":\"%s\",\"email\":\"a@b.io\",\"name\":\"N\","
	    "\"CreatedAt\":\"2021-08-04T09:37:07.305317Z\",\"UpdatedAt\":"
	    "\"2021-08-04T09:37:07.305317Z\"},\"is_processed\":false}", id,
	    CID);
	return out;
}

START_TEST(batch_capacity)
{
	struct mq_delivery d;
	struct inbatch b;
	int i;

	ck_assert_int_eq(inbatch_init(&b, 3), 0);
	for (i = 1; i <= 3; i++) {
		ck_assert(!inbatch_full(&b));
		d = delivery((uint64_t)i, body_for(ID1));
		ck_assert_int_eq(inbatch_add(&b, &d), 0);
		/* Ownership moved: the caller's copy is emptied. */
		ck_assert_ptr_null(d.body);
	}
	ck_assert(inbatch_full(&b));
	d = delivery(4, body_for(ID1));
	ck_assert_int_eq(inbatch_add(&b, &d), -1);
	inbatch_clear(&b);
	ck_assert_uint_eq(b.n, 0);
	ck_assert(!inbatch_full(&b));
	inbatch_free(&b);
}
END_TEST

START_TEST(batch_classifies)
{
	static const char unknown[] = "{\"id\":\"" ID3 "\",\"event_name\":"
	    "\"CustomerDeleted\",\"payload\":{},\"is_processed\":false}";
	static const char no_id[] = "{\"event_name\":\"CustomerCreated\","
	    "\"payload\":{},\"is_processed\":false}";
	static const char bad_payload[] = "{\"id\":\"" ID3 "\",\"event_name\":"
	    "\"CustomerCreated\",\"payload\":{\"id\":\"" CID "\"}}";
	const char *bodies[6];
	struct item *cands[6];
	struct mq_delivery d;
	struct inbatch b;
	size_t i;

	bodies[0] = body_for(ID1);
	bodies[1] = "{\"id\": not json";
	bodies[2] = no_id;
	bodies[3] = unknown;
	bodies[4] = bad_payload;
	bodies[5] = body_for(ID2);
	ck_assert_int_eq(inbatch_init(&b, 6), 0);
	for (i = 0; i < 6; i++) {
		d = delivery(10 + i, bodies[i]);
		ck_assert_int_eq(inbatch_add(&b, &d), 0);
	}
	ck_assert_uint_eq(inbatch_prepare(&b, 0, 0), 4);
	ck_assert_int_eq(b.items[0].state, ITEM_OK);
	ck_assert_str_eq(b.items[0].ev.id, ID1);
	ck_assert_ptr_eq(b.items[0].h, handler_find("CustomerCreated"));
	ck_assert_str_eq(((struct welcome *)b.items[0].data)->email, "a@b.io");
	/* The payload kept as compact JSON, for the "Handling" line. */
	ck_assert_str_eq(msg_event_payload(&b.items[0].ev), "{\"id\":\"" CID "\","
	    "\"email\":\"a@b.io\",\"name\":\"N\",\"CreatedAt\":"
	    "\"2021-08-04T09:37:07.305317Z\",\"UpdatedAt\":"
	    "\"2021-08-04T09:37:07.305317Z\"}");
	ck_assert_int_eq(b.items[1].state, ITEM_BAD);
	ck_assert_ptr_nonnull(strstr(b.items[1].reason, "malformed JSON"));
	/* The dead-letter metric's reason classes. */
	ck_assert_int_eq(b.items[1].dead, DEAD_MALFORMED);
	ck_assert_int_eq(b.items[2].dead, DEAD_MALFORMED);
	ck_assert_int_eq(b.items[3].dead, DEAD_UNKNOWN_EVENT);
	ck_assert_int_eq(b.items[4].dead, DEAD_BAD_PAYLOAD);
	ck_assert_int_eq(b.items[0].ev.has_created, 1);
	ck_assert_int_eq(b.items[2].state, ITEM_BAD);
	ck_assert_ptr_nonnull(strstr(b.items[2].reason, "\"id\""));
	ck_assert_int_eq(b.items[3].state, ITEM_BAD);
	ck_assert_str_eq(b.items[3].reason,
	    "no handler for event \"CustomerDeleted\"");
	ck_assert_int_eq(b.items[4].state, ITEM_BAD);
	ck_assert_ptr_nonnull(strstr(b.items[4].reason, "\"email\""));
	ck_assert_ptr_null(b.items[4].data);
	ck_assert_int_eq(b.items[5].state, ITEM_OK);
	/* Only the decodable ones go to the database, in order. */
	ck_assert_uint_eq(inbatch_candidates(&b, cands), 2);
	ck_assert_ptr_eq(cands[0], &b.items[0]);
	ck_assert_ptr_eq(cands[1], &b.items[5]);
	inbatch_free(&b);
}
END_TEST

START_TEST(batch_repeats)
{
	/* ID2 three times, ID1 twice: the first of each is the one. */
	const char *ids[] = { ID2, ID1, ID2, ID3, ID1, ID2 };
	const int dup[] = { 0, 0, 1, 0, 1, 1 };
	struct item *cands[6];
	struct mq_delivery d;
	struct inbatch b;
	size_t i;

	ck_assert_int_eq(inbatch_init(&b, 6), 0);
	for (i = 0; i < 6; i++) {
		d = delivery(i + 1, body_for(ids[i]));
		ck_assert_int_eq(inbatch_add(&b, &d), 0);
	}
	ck_assert_uint_eq(inbatch_prepare(&b, 0, 0), 0);
	for (i = 0; i < 6; i++)
		ck_assert_msg(b.items[i].dup_in_batch == dup[i], "item %zu",
		    i);
	ck_assert_uint_eq(inbatch_candidates(&b, cands), 3);
	ck_assert_ptr_eq(cands[0], &b.items[0]);
	ck_assert_ptr_eq(cands[1], &b.items[1]);
	ck_assert_ptr_eq(cands[2], &b.items[3]);
	inbatch_free(&b);
}
END_TEST

START_TEST(batch_ack_tags)
{
	struct mq_delivery d;
	struct inbatch b;
	size_t i;

	ck_assert_int_eq(inbatch_init(&b, 4), 0);
	ck_assert_uint_eq(inbatch_ack_tag(&b), 0);
	for (i = 0; i < 4; i++) {
		d = delivery(100 + i, body_for(ID1));
		ck_assert_int_eq(inbatch_add(&b, &d), 0);
	}
	ck_assert_uint_eq(inbatch_ack_tag(&b), 103);
	/* A dead-lettered message was acked on its own: the batch's
	 * multiple-ack must not name it again. */
	b.items[3].settled = 1;
	ck_assert_uint_eq(inbatch_ack_tag(&b), 102);
	b.items[0].settled = 1;
	ck_assert_uint_eq(inbatch_ack_tag(&b), 102);
	b.items[1].settled = 1;
	b.items[2].settled = 1;
	ck_assert_uint_eq(inbatch_ack_tag(&b), 0);
	inbatch_free(&b);
}
END_TEST

START_TEST(batch_set_bad_releases)
{
	struct mq_delivery d;
	struct inbatch b;

	ck_assert_int_eq(inbatch_init(&b, 1), 0);
	d = delivery(1, body_for(ID1));
	inbatch_add(&b, &d);
	inbatch_prepare(&b, 0, 0);
	ck_assert_ptr_nonnull(b.items[0].data);
	inbatch_set_bad(&b.items[0], "database refused the effect: x");
	ck_assert_int_eq(b.items[0].state, ITEM_BAD);
	ck_assert_ptr_null(b.items[0].data);
	ck_assert_str_eq(b.items[0].reason, "database refused the effect: x");
	/* LeakSanitizer checks that the payload was released. */
	inbatch_free(&b);
}
END_TEST

/* ---- the inbox retention's age rule ---- */

#define HOUR_MS (3600 * 1000LL)
/* Some "now", in Unix ms (2026-11-30). */
#define NOW_MS 1796000000000LL
/* Not a version-7 id: a version-4 one, without a time. */
#define V4 LLONG_MIN

struct age_case {
	const char *what;
	long long id_age_ms;  /* age of a version-7 id, or V4 */
	long long ts_age_s;   /* age of the AMQP timestamp; -1: none */
	int hours;            /* WORKER_PROCESSED_RETENTION_HOURS */
	enum age_source source;
	int too_old;
};

static const struct age_case age_cases[] = {
	{ "v7, just inside retention - 1 h", 167 * HOUR_MS, -1, 168,
	    AGE_FROM_ID, 0 },
	{ "v7, 1 ms past it", 167 * HOUR_MS + 1, -1, 168, AGE_FROM_ID, 1 },
	{ "v7, a year old", 8760 * HOUR_MS, -1, 168, AGE_FROM_ID, 1 },
	{ "v7, fresh", 0, -1, 168, AGE_FROM_ID, 0 },
	{ "v7, from a clock ahead", -HOUR_MS, -1, 168, AGE_FROM_ID, 0 },
	{ "v7 young wins over an old timestamp", HOUR_MS, 200 * 3600, 168,
	    AGE_FROM_ID, 0 },
	{ "v7 old wins over a young timestamp", 200 * HOUR_MS, 1, 168,
	    AGE_FROM_ID, 1 },
	{ "v4, old timestamp", V4, 168 * 3600, 168, AGE_FROM_TIMESTAMP, 1 },
	{ "v4, timestamp just inside", V4, 167 * 3600, 168,
	    AGE_FROM_TIMESTAMP, 0 },
	{ "v4, timestamp 1 s past", V4, 167 * 3600 + 1, 168,
	    AGE_FROM_TIMESTAMP, 1 },
	{ "v4, no timestamp: applied", V4, -1, 168, AGE_NONE, 0 },
	{ "retention 0: never too old", 8760 * HOUR_MS, 8760 * 3600, 0,
	    AGE_FROM_ID, 0 },
	{ "retention 2 h: 1 h left", 2 * HOUR_MS, -1, 2, AGE_FROM_ID, 1 },
};

START_TEST(age_rule)
{
	const struct age_case *k = &age_cases[_i];
	char id[UID_LEN + 1], reason[INBATCH_REASON_MAX] = "";
	struct msg_age a;
	uint64_t ts;

	if (k->id_age_ms != V4)
		testuid_v7_at(NOW_MS - k->id_age_ms, id);
	else
		snprintf(id, sizeof(id), "%s", ID1);
	ts = k->ts_age_s >= 0 ? (uint64_t)(NOW_MS / 1000 - k->ts_age_s) : 0;
	inbox_age(id, UID_LEN, ts, NOW_MS, &a);
	ck_assert_msg(a.source == k->source, "%s: source %d", k->what,
	    (int)a.source);
	ck_assert_msg(inbox_too_old(&a, k->hours, reason, sizeof(reason)) ==
	    k->too_old, "%s: want too_old %d", k->what, k->too_old);
	ck_assert_int_eq(inbox_too_old(&a, k->hours, NULL, 0), k->too_old);
	if (!k->too_old)
		return;
	/* The reason names the setting and what the operator is to know. */
	ck_assert_ptr_nonnull(strstr(reason, "older than "
	    "WORKER_PROCESSED_RETENTION_HOURS"));
	ck_assert_ptr_nonnull(strstr(reason, "cannot be told apart from a "
	    "message already handled"));
}
END_TEST

/* In a batch: the too old are dead-lettered (their class, their reason),
 * the rest go to the database; a repeat of a refused message is judged
 * on its own (a younger copy of a version-4 id is applied). */
START_TEST(batch_too_old)
{
	char old7[UID_LEN + 1], young7[UID_LEN + 1];
	struct item *cands[5];
	struct mq_delivery d;
	struct inbatch b;
	size_t i;

	testuid_v7_at(NOW_MS - 200 * HOUR_MS, old7);
	testuid_v7_at(NOW_MS - HOUR_MS, young7);
	ck_assert_int_eq(inbatch_init(&b, 5), 0);
	d = delivery(1, body_for(old7));
	inbatch_add(&b, &d);
	d = delivery(2, body_for(young7));
	inbatch_add(&b, &d);
	d = delivery(3, body_for(ID1));
	d.timestamp = (uint64_t)(NOW_MS / 1000 - 200 * 3600);
	inbatch_add(&b, &d);
	d = delivery(4, body_for(ID1));
	d.timestamp = (uint64_t)(NOW_MS / 1000 - 60);
	inbatch_add(&b, &d);
	d = delivery(5, body_for(ID2));
	inbatch_add(&b, &d);
	ck_assert_uint_eq(inbatch_prepare(&b, 168, NOW_MS), 2);
	for (i = 0; i < 5; i++)
		ck_assert_msg((b.items[i].state == ITEM_BAD) == (i == 0 ||
		    i == 2), "item %zu", i);
	ck_assert_int_eq(b.items[0].dead, DEAD_TOO_OLD);
	ck_assert_int_eq(b.items[2].dead, DEAD_TOO_OLD);
	ck_assert_ptr_nonnull(strstr(b.items[0].reason, "its id was made"));
	ck_assert_ptr_nonnull(strstr(b.items[2].reason, "it was published"));
	ck_assert_ptr_null(b.items[0].data);
	ck_assert_int_eq(b.items[3].dup_in_batch, 0);
	ck_assert_uint_eq(inbatch_candidates(&b, cands), 3);
	ck_assert_ptr_eq(cands[0], &b.items[1]);
	ck_assert_ptr_eq(cands[1], &b.items[3]);
	ck_assert_ptr_eq(cands[2], &b.items[4]);
	inbatch_free(&b);
	/* Retention 0: the same message is applied. */
	ck_assert_int_eq(inbatch_init(&b, 1), 0);
	d = delivery(1, body_for(old7));
	inbatch_add(&b, &d);
	ck_assert_uint_eq(inbatch_prepare(&b, 0, NOW_MS), 0);
	inbatch_free(&b);
}
END_TEST

/* ---- configuration ---- */

START_TEST(config_defaults)
{
	struct worker_config c;
	char err[256];

	unit_env_clear(worker_opts, worker_nopts);
	ck_assert_int_eq(worker_config_load(&c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.prefetch, 2000);
	ck_assert_int_eq(c.batch_max, 500);
	ck_assert_int_eq(c.batch_wait_ms, 1);
	ck_assert_int_eq(c.db_pool, 2);
	ck_assert_int_le(c.retry_base_ms, c.retry_max_ms);
	ck_assert_int_eq(c.log_level, LOG_LVL_INFO);
	ck_assert_int_eq(c.metrics_port, 9466);
	ck_assert_str_eq(c.metrics_bind, "0.0.0.0");
	ck_assert_int_eq(c.retention_hours, 168);
	ck_assert_int_eq(c.retention_interval_s, 60);
}
END_TEST

struct bad_cfg {
	const char *name;
	const char *value;
};

static const struct bad_cfg bad_cfgs[] = {
	{ "WORKER_PREFETCH", "abc" },
	{ "WORKER_PREFETCH", "0" },
	{ "WORKER_PREFETCH", "65536" },
	{ "WORKER_PREFETCH", "10 " },
	{ "WORKER_BATCH_MAX", "0" },
	{ "WORKER_BATCH_MAX", "1001" },
	{ "WORKER_BATCH_WAIT_MS", "-1" },
	{ "WORKER_DB_POOL", "0" },
	{ "WORKER_DB_POOL", "9" }, /* above WORKER_DB_POOL_MAX */
	{ "WORKER_RETRY_MAX_MS", "50" }, /* below the default base */
	{ "WORKER_DLQ_TIMEOUT_MS", "5s" },
	{ "LOG_LEVEL", "verbose" },
	{ "LOG_FORMAT", "xml" },
	{ "WORKER_METRICS_PORT", "65536" },
	{ "WORKER_PROCESSED_RETENTION_HOURS", "-1" },
	{ "WORKER_PROCESSED_RETENTION_HOURS", "1" }, /* no time left */
	{ "WORKER_PROCESSED_RETENTION_HOURS", "87601" },
	{ "WORKER_PROCESSED_RETENTION_HOURS", "7d" },
	{ "WORKER_PROCESSED_RETENTION_INTERVAL", "0" },
	{ "WORKER_PROCESSED_RETENTION_INTERVAL", "86401" },
	{ "WORKER_QUEUE_SAMPLE_INTERVAL", "0" },
	{ "WORKER_QUEUE_SAMPLE_INTERVAL", "3601" },
	{ "WORKER_QUEUE_SAMPLE_INTERVAL", "5s" },
};

START_TEST(config_refused)
{
	const struct bad_cfg *b = &bad_cfgs[_i];
	struct worker_config c;
	char err[256] = "";

	unit_env_clear(worker_opts, worker_nopts);
	setenv(b->name, b->value, 1);
	ck_assert_int_eq(worker_config_load(&c, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, b->name, strlen(b->name)) == 0,
	    "%s=%s: error \"%s\" does not start with the name", b->name,
	    b->value, err);
	unit_env_clear(worker_opts, worker_nopts);
}
END_TEST

/* A batch larger than the prefetch window could never fill. */
START_TEST(config_batch_above_prefetch_refused)
{
	struct worker_config c;
	char err[256] = "";

	unit_env_clear(worker_opts, worker_nopts);
	setenv("WORKER_PREFETCH", "100", 1);
	setenv("WORKER_BATCH_MAX", "101", 1);
	ck_assert_int_eq(worker_config_load(&c, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "WORKER_BATCH_MAX: 101 is larger than "
	    "WORKER_PREFETCH (100)");
	setenv("WORKER_BATCH_MAX", "100", 1);
	ck_assert_int_eq(worker_config_load(&c, err, sizeof(err)), 0);
	unit_env_clear(worker_opts, worker_nopts);
}
END_TEST

Suite *
unit_worker_suite(void)
{
	const TTest *const logic[] = { handler_lookup, batch_capacity,
	    batch_classifies, batch_repeats, batch_ack_tags,
	    batch_set_bad_releases, batch_too_old, config_defaults,
	    config_batch_above_prefetch_refused,
	    NULL };
	Suite *s = suite_create("worker");
	TCase *tc = suites_case(s, "logic", 0, NULL, NULL, logic);

	tcase_add_loop_test(tc, customer_created_decode, 0,
	    (int)(sizeof(cc_cases) / sizeof(cc_cases[0])));
	tcase_add_loop_test(tc, age_rule, 0,
	    (int)(sizeof(age_cases) / sizeof(age_cases[0])));
	tcase_add_loop_test(tc, config_refused, 0,
	    (int)(sizeof(bad_cfgs) / sizeof(bad_cfgs[0])));
	return s;
}
