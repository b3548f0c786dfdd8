/*
 * it_privileges.c - each daemon's logins get what it needs and nothing
 * more (scripts/db-users.sql, scripts/rabbitmq-definitions.*): the
 * statements each database login may and may not run, and what the
 * worker's and the relay's RabbitMQ users may not do.  The logins are the
 * daemons' own, from scripts/roles.env (APP, RELAY, WORKER, AUDIT),
 * outbox-admin's (ADMIN) and the binlog reader's (BINLOG: the relay's
 * binlog mode; it connects without a database, having no table grant).
 */
#include <check.h>
#include <string.h>

#include "harness.h"
#include "suites.h"

Suite *it_privileges_suite(void);


/* Runs sql as role's login; returns db_errno (0 when it was allowed). */
static unsigned
as_role(const char *role, const char *sql)
{
	struct db_params p;
	unsigned e = 0;
	db_conn *c;

	h_role_db_params(role, &p);
	if (strcmp(role, "BINLOG") == 0)
		p.name[0] = '\0';
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
	{ "WORKER", "UPDATE processed_messages SET event_name = 'x' WHERE "
	    "message_id = ''", 0 },
	{ "WORKER", "DELETE FROM welcome_emails WHERE customer_id = ''", 0 },
	{ "AUDIT", "DELETE FROM outbox WHERE seq = 0", 0 },
	/* outbox-admin: parked rows released, nothing else written. */
	{ "ADMIN", "DELETE FROM outbox WHERE seq = 0", 0 },
	{ "ADMIN", "UPDATE outbox SET published_at = NOW() WHERE seq = 0", 0 },
	{ "ADMIN", "UPDATE outbox SET payload = '{}' WHERE seq = 0", 0 },
	{ "ADMIN", "INSERT INTO outbox (message_id, event_name, payload, "
	    "created_at) VALUES ('x', 'y', '{}', NOW())", 0 },
	{ "ADMIN", "SELECT COUNT(*) FROM customers", 0 },
	{ "ADMIN", "SELECT COUNT(*) FROM welcome_emails", 0 },
	{ "ADMIN", "DELETE FROM processed_messages WHERE message_id = ''", 0 },
	{ "ADMIN", "INSERT INTO processed_messages (message_id, event_name, "
	    "processed_at) VALUES ('x', 'y', NOW())", 0 },
	/* The binlog reader (migration 013): no table at all; the relay's
	 * login no replication privilege. */
	{ "BINLOG", "SELECT COUNT(*) FROM `outbox-demo`.outbox", 0 },
	{ "BINLOG", "SELECT COUNT(*) FROM `outbox-demo`.customers", 0 },
	{ "BINLOG", "SELECT COUNT(*) FROM `outbox-demo`.outbox_relay_position",
	    0 },
	{ "BINLOG", "UPDATE `outbox-demo`.outbox_relay_position SET last_seq "
	    "= 0", 0 },
	{ "RELAY", "SHOW MASTER STATUS", 0 },
	{ "RELAY", "SHOW BINARY LOGS", 0 },
	{ "APP", "SELECT COUNT(*) FROM outbox_relay_position", 0 },
	{ "WORKER", "SELECT COUNT(*) FROM outbox_relay_position", 0 },
	{ "AUDIT", "UPDATE outbox_relay_position SET last_seq = 0", 0 },
	{ "ADMIN", "UPDATE outbox_relay_position SET last_seq = 0", 0 },
	/* And what each needs is allowed. */
	{ "BINLOG", "SHOW MASTER STATUS", 1 },
	{ "BINLOG", "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, "
	    "@@binlog_row_metadata, @@sync_binlog, @@server_id", 1 },
	/* The relay's position, one upsert per batch (here writing no
	 * row). */
	{ "RELAY", "INSERT INTO outbox_relay_position (id, gtid, last_seq, "
	    "updated_at) SELECT 1, '', NULL, NOW(6) FROM DUAL WHERE 0 = 1 ON "
	    "DUPLICATE KEY UPDATE gtid = VALUES(gtid), last_seq = "
	    "VALUES(last_seq), updated_at = VALUES(updated_at)", 1 },
	{ "RELAY", "SELECT gtid, last_seq FROM outbox_relay_position", 1 },
	{ "AUDIT", "SELECT gtid, last_seq FROM outbox_relay_position", 1 },
	{ "APP", "SELECT COUNT(*) FROM customers", 1 },
	{ "RELAY", "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL", 1 },
	{ "WORKER", "SELECT COUNT(*) FROM processed_messages", 1 },
	/* Its inbox retention (migration 011). */
	{ "WORKER", "DELETE FROM processed_messages WHERE processed_at < "
	    "'1970-01-02'", 1 },
	{ "AUDIT", "SELECT COUNT(*) FROM welcome_emails", 1 },
	{ "ADMIN", "SELECT COUNT(*), MIN(created_at), MAX(published_at) FROM "
	    "outbox WHERE published_at IS NULL AND parked_at IS NULL AND "
	    "attempts > 0", 1 },
	{ "ADMIN", "SELECT MAX(processed_at) FROM processed_messages", 1 },
	{ "ADMIN", "UPDATE outbox SET parked_at = NULL, attempts = 0, "
	    "next_attempt_at = NULL WHERE published_at IS NULL AND parked_at "
	    "IS NOT NULL AND seq IN (0)", 1 },
	{ "ADMIN", "SELECT seq FROM outbox WHERE parked_at IS NOT NULL AND "
	    "seq IN (0) FOR UPDATE", 1 },
};

START_TEST(database_grants)
{
	unsigned e = as_role(grants[_i].role, grants[_i].sql);

	if (grants[_i].allowed)
		ck_assert_msg(e == 0, "%s: %s refused (%u)", grants[_i].role,
		    grants[_i].sql, e);
	else
		/* 1227: a global privilege (REPLICATION SLAVE, BINLOG
		 * MONITOR) missing. */
		ck_assert_msg(e == 1142 || e == 1143 || e == 1227, "%s: %s: "
		    "want refused (1142, 1143, 1227), got %u",
		    grants[_i].role, grants[_i].sql, e);
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

/* The broker refused c's last call with 403 (access refused); then c
 * connects again (confirm: in confirm mode; -1: not at all). */
static void
refused_403(mq_conn *c, int confirm)
{
	ck_assert_msg(strstr(mq_error(c), "403") != NULL, "want 403: %s",
	    mq_error(c));
	if (confirm >= 0)
		ck_assert_int_eq(mq_connect(c, confirm), 0);
}

/* outbox-admin's RabbitMQ user: it takes (and gives back) what is in
 * outbox.dlq and publishes through the default exchange; it cannot
 * consume or take from queue outbox, declare anything, or publish to the
 * dead-letter exchange. */
START_TEST(admin_broker_permissions)
{
	struct mq_delivery d;
	struct mq_params p;
	struct mq_msg m;
	uint32_t n;
	mq_conn *c;

	h_mq_reset_queues();
	memset(&m, 0, sizeof(m));
	m.body = "{}";
	m.len = 2;
	m.message_id = "00000000-0000-4000-8000-000000000002";
	h_role_mq_params("ADMIN", &p);
	c = mq_new(&p);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(mq_connect(c, 1) == 0, "admin login: %s", mq_error(c));
	/* Allowed: publish to outbox through the default exchange, read
	 * the depths, take from the DLQ and give back. */
	ck_assert_int_eq(mq_publish_batch(c, "", MQ_QUEUE, &m, 1, 5000), 0);
	ck_assert_int_eq(m.result, MQ_ACKED);
	ck_assert_int_eq(mq_queue_depth(c, MQ_QUEUE, &n, NULL), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(mq_get(c, MQ_DLQ, &d), 0);
	/* Refused: 403, each closing the connection (reopened). */
	ck_assert_int_eq(mq_get(c, MQ_QUEUE, &d), -1);
	refused_403(c, 1);
	ck_assert_int_eq(mq_consume(c, MQ_QUEUE, 1), -1);
	refused_403(c, 1);
	ck_assert_int_eq(mq_queue_declare(c, "outbox.admin-test"), -1);
	refused_403(c, 1);
	ck_assert_int_eq(mq_publish_batch(c, MQ_DLX, "", &m, 1, 5000), -1);
	refused_403(c, -1);
	mq_free(c);
}
END_TEST

/* The audit only reads queue depths (passive declares, which need no
 * permission): its RabbitMQ user can neither declare nor delete a queue
 * of the topology (a delete would take every message in it). */
START_TEST(audit_cannot_change_the_topology)
{
	struct mq_params p;
	uint32_t n;
	mq_conn *c;

	h_mq_reset_queues();
	h_role_mq_params("AUDIT", &p);
	c = mq_new(&p);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(mq_connect(c, 0) == 0, "audit login: %s", mq_error(c));
	ck_assert_int_eq(mq_queue_depth(c, MQ_DLQ, &n, NULL), 0);
	ck_assert_int_eq(mq_queue_delete(c, MQ_DLQ), -1);
	refused_403(c, 0);
	ck_assert_int_eq(mq_declare_topology(c), -1);
	refused_403(c, -1);
	mq_free(c);
	ck_assert_int_ge(h_mq_depth(MQ_DLQ), 0);
}
END_TEST

Suite *
it_privileges_suite(void)
{
	const TTest *const broker[] = { broker_permissions,
	    admin_broker_permissions, audit_cannot_change_the_topology, NULL };
	Suite *s = suite_create("privileges");

	tcase_add_loop_test(suites_case(s, "logins", 60, NULL, NULL, broker),
	    database_grants, 0, (int)(sizeof(grants) / sizeof(grants[0])));
	return s;
}
