/*
 * harness_worker.c - CustomerCreated messages for the worker's tests
 * (see harness_worker.h).
 */
#include "harness_worker.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "msg.h"
#include "timefmt.h"

void
h_msgs_make(struct h_msgs *m, size_t n, const char *tag, long poison)
{
	struct customer c;
	struct timespec ts;
	size_t i;

	ck_assert_uint_le(n, H_MAXMSG);
	m->n = n;
	timefmt_now(&ts);
	for (i = 0; i < n; i++) {
		memset(&c, 0, sizeof(c));
		uid_new(m->id[i]);
		uid_new(m->cid[i]);
		memcpy(c.id, m->cid[i], UID_LEN + 1);
		snprintf(m->email[i], sizeof(m->email[i]), "%s%zu@example.com",
		    tag, i);
		c.email = m->email[i];
		c.name = (long)i == poison ? "poison" : "Worker Test";
		timefmt_rfc3339(&ts, c.created_at, sizeof(c.created_at));
		timefmt_rfc3339(&ts, c.updated_at, sizeof(c.updated_at));
		buf_init(&m->payload[i], 4096);
		buf_init(&m->body[i], 4096);
		ck_assert_int_eq(msg_customer_json(&c, &m->payload[i]), 0);
		ck_assert_int_eq(msg_event_body(m->id[i],
		    MSG_EVENT_CUSTOMER_CREATED, m->payload[i].data,
		    m->payload[i].len, &m->body[i]), 0);
		m->bodies[i] = m->body[i].data;
		m->ids[i] = m->id[i];
	}
}

void
h_msgs_reid(struct h_msgs *m, size_t i, const char *id)
{
	ck_assert_uint_lt(i, m->n);
	snprintf(m->id[i], sizeof(m->id[i]), "%s", id);
	buf_reset(&m->body[i]);
	ck_assert_int_eq(msg_event_body(m->id[i], MSG_EVENT_CUSTOMER_CREATED,
	    m->payload[i].data, m->payload[i].len, &m->body[i]), 0);
	m->bodies[i] = m->body[i].data;
}

long long
h_msgs_welcomes(const struct h_msgs *m, size_t i)
{
	struct db_val a = DB_STR(m->cid[i]);

	return h_count("SELECT COUNT(*) FROM welcome_emails WHERE "
	    "customer_id = ?", &a, 1);
}

void
h_msgs_publish(const struct h_msgs *m, size_t from, size_t n)
{
	h_mq_publish(m->bodies + from, m->ids + from, n);
}

void
h_msgs_free(struct h_msgs *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		buf_free(&m->payload[i]);
		buf_free(&m->body[i]);
	}
	m->n = 0;
}

void
h_msgs_assert_exactly_once(const struct h_msgs *m)
{
	struct db_val a[2];
	size_t i;

	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM welcome_emails", NULL,
	    0), (long long)m->n);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM processed_messages",
	    NULL, 0), (long long)m->n);
	for (i = 0; i < m->n; i++) {
		a[0] = DB_STR(m->cid[i]);
		a[1] = DB_STR(m->id[i]);
		ck_assert_msg(h_count("SELECT COUNT(*) FROM welcome_emails w "
		    "JOIN processed_messages p ON p.message_id = w.message_id "
		    "WHERE w.customer_id = ? AND w.message_id = ?", a, 2) == 1,
		    "message %zu (%s) not handled exactly once", i, m->id[i]);
	}
}

void
h_dlq_collect(void *ud, const struct mq_delivery *d)
{
	struct h_dlq_seen *s = ud;

	if (s->n >= 8)
		return;
	snprintf(s->body[s->n], sizeof(s->body[0]), "%.*s", (int)d->len,
	    d->body);
	snprintf(s->reason[s->n], sizeof(s->reason[0]), "%s", d->reason);
	s->n++;
}

void
h_poison_refused(int on)
{
	h_sql("DROP TRIGGER IF EXISTS test_welcome_poison");
	if (on)
		h_sql("CREATE TRIGGER test_welcome_poison BEFORE INSERT ON "
		    "welcome_emails FOR EACH ROW IF NEW.name = 'poison' THEN "
		    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'test: poison "
		    "refused'; END IF");
}

db_conn *
h_lock_customer(const char *cid)
{
	struct db_params p;
	struct db_val a[2];
	char mid[UID_LEN + 1];
	db_conn *c;

	h_db_params(&p);
	c = db_new(&p);
	ck_assert_ptr_nonnull(c);
	uid_new(mid);
	a[0] = DB_STR(cid);
	a[1] = DB_STR(mid);
	ck_assert_int_eq(db_begin(c), DB_OK);
	ck_assert_int_eq(db_exec(c, "INSERT INTO welcome_emails (customer_id, "
	    "message_id, email, name, created_at) VALUES (?, ?, 'lock@x.io', "
	    "'lock', UTC_TIMESTAMP(6))", a, 2, NULL), DB_OK);
	return c;
}

/* A statement of the worker takes milliseconds; INNODB_TRX does not list
 * its transaction reliably on MariaDB 10.11, the process list does. */
const char h_lock_wait_sql[] = "SELECT COUNT(*) FROM "
    "information_schema.PROCESSLIST WHERE COMMAND = 'Execute' AND "
    "INFO LIKE 'INSERT INTO welcome_emails%' AND TIME_MS >= 300";
