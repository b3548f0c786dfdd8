/*
 * harness_relay.c - numbered outbox rows for the relay's tests (see
 * harness_relay.h).
 */
#include "harness_relay.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

void
h_rows_reset(void)
{
	h_sql("TRUNCATE outbox");
	h_sql("DELETE FROM outbox_relay_position");
	h_mq_reset_queues();
}

int
h_rows_insert_on(db_conn *c, long long first, long long count)
{
	static const char sql[] =
	    "INSERT INTO outbox (message_id, event_name, payload, created_at) "
	    "SELECT CONCAT('" H_ID_PREFIX "', LPAD(seq, 12, '0')), '" H_EVENT
	    "', JSON_OBJECT('id', CONCAT('11111111-0000-4000-8000-', "
	    "LPAD(seq, 12, '0')), 'email', CONCAT('user', seq, "
	    "'@example.com'), 'name', CONCAT('User ', seq), 'CreatedAt', "
	    "'2021-08-04T09:37:07.305317Z', 'UpdatedAt', "
	    "'2021-08-04T09:37:07.305317Z'), UTC_TIMESTAMP(6) "
	    "FROM seq_1_to_1000000 WHERE seq BETWEEN ? AND ?";
	struct db_val a[2] = { DB_INT(first), DB_INT(first + count - 1) };
	uint64_t n = 0;
	int rc;

	rc = db_exec(c, sql, a, 2, &n);
	if (rc == DB_ECONN) /* the connection saw a restart */
		rc = db_exec(c, sql, a, 2, &n);
	return rc == DB_OK && (long long)n == count ? 0 : -1;
}

void
h_rows_insert(long long first, long long count)
{
	ck_assert_msg(h_rows_insert_on(h_db(), first, count) == 0, "insert "
	    "of rows %lld..%lld: %s", first, first + count - 1,
	    db_error(h_db()));
}

void
h_rows_insert_big(long long bytes)
{
	struct db_val a = DB_INT(bytes);
	int rc;

	rc = db_exec(h_db(), "INSERT INTO outbox (message_id, event_name, "
	    "payload, created_at) VALUES ('" H_ID_PREFIX "000000000000', '"
	    H_EVENT "', JSON_OBJECT('id', '11111111-0000-4000-8000-"
	    "000000000000', 'email', 'big@example.com', 'name', REPEAT('x', "
	    "?)), UTC_TIMESTAMP(6))", &a, 1, NULL);
	ck_assert_msg(rc == DB_OK, "insert: %s", db_error(h_db()));
}

int
h_rows_big_parked(void *ud)
{
	(void)ud;
	return h_count("SELECT COUNT(*) FROM outbox WHERE message_id = '"
	    H_ID_PREFIX "000000000000' AND parked_at IS NOT NULL", NULL, 0) ==
	    1;
}

long long
h_rows_unpublished(void)
{
	return h_count("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
	    NULL, 0);
}

long long
h_rows_published(void)
{
	return h_count("SELECT COUNT(*) FROM outbox WHERE published_at IS NOT "
	    "NULL", NULL, 0);
}

void
h_rows_wait_published(long long n, int timeout_ms)
{
	ck_assert_msg(h_wait_count("SELECT COUNT(*) FROM outbox WHERE "
	    "published_at IS NOT NULL", n, timeout_ms), "%lld rows published "
	    "after %d ms, want at least %lld", h_rows_published(), timeout_ms,
	    n);
}

static int
h_rows_none_unpublished(void *ud)
{
	(void)ud;
	return h_rows_unpublished() == 0;
}

void
h_rows_wait_all_published(int timeout_ms)
{
	ck_assert_msg(h_wait(timeout_ms, h_rows_none_unpublished, NULL),
	    "%lld rows still unpublished after %d ms", h_rows_unpublished(),
	    timeout_ms);
}

/* Index of a message id made by h_rows_insert, or -1. */
static long long
h_rows_index(const char *id)
{
	char *end;
	long long v;

	if (strncmp(id, H_ID_PREFIX, strlen(H_ID_PREFIX)) != 0)
		return -1;
	v = strtoll(id + strlen(H_ID_PREFIX), &end, 10);
	return *end == '\0' ? v : -1;
}

void
h_seen_init(struct h_seen *s, long long n)
{
	s->n = n;
	s->count = calloc((size_t)n + 1, sizeof(*s->count));
	s->other = 0;
	ck_assert_ptr_nonnull(s->count);
}

void
h_seen_free(struct h_seen *s)
{
	free(s->count);
	s->count = NULL;
}

void
h_seen_fn(void *ud, const struct mq_delivery *d)
{
	struct h_seen *s = ud;
	long long i = h_rows_index(d->message_id);

	if (i >= 1 && i <= s->n)
		s->count[i]++;
	else
		s->other++;
}

long long
h_rows_check_queue(const char *queue, long long n)
{
	struct h_seen s;
	long long depth = h_mq_depth(queue), i, missing = 0;
	size_t got;

	ck_assert_msg(depth >= n, "queue %s holds %lld messages, want at "
	    "least %lld", queue, depth, n);
	h_seen_init(&s, n);
	got = h_mq_collect(queue, (size_t)depth, 60000, h_seen_fn, &s);
	ck_assert_int_eq((long long)got, depth);
	for (i = 1; i <= n; i++) {
		if (s.count[i] == 0)
			missing++;
	}
	h_seen_free(&s);
	ck_assert_msg(missing == 0, "%lld of %lld rows never reached %s",
	    missing, n, queue);
	ck_assert_int_eq(s.other, 0);
	return depth - n;
}
