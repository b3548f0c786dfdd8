/*
 * it_durability.c - nothing is published, answered or acked on the
 * strength of a transaction the database may still lose.
 *
 * InnoDB makes a commit visible to other sessions before its redo log is
 * on disk.  This suite runs a MariaDB of its own (own folder and port,
 * see hold_server_up) with tests/fsync_hold.c preloaded: while the hold
 * file exists, the server's redo log is held back, so a transaction made
 * meanwhile is committed in memory, visible to every session, and a
 * kill -9 of the server takes it away for certain.  Each test commits
 * such a transaction, lets the daemons see it, kills the server, starts
 * it again, and checks that nothing they did or said outlives the lost
 * transaction:
 *   - the relay published no message (and the worker applied no effect)
 *     for an outbox row that recovery dropped;
 *   - the app answered no 409, no GET 200 and no Idempotency-Key replay
 *     for a customer that recovery dropped;
 *   - the worker acked no message as a duplicate of a processed id that
 *     recovery dropped.
 * Every test first checks that the held transaction really was lost:
 * otherwise it proves nothing and fails.
 *
 * Environment: OUTBOX_HOLD_DB_PORT (23307), OUTBOX_HOLD_VAR (the
 * server's folder, default $OUTBOX_TEST_LOGS/../var-hold), besides the
 * harness's.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "cfg.h"
#include "clock.h"
#include "harness.h"
#include "msg.h"
#include "suites.h"
#include "timefmt.h"
#include "uid.h"

Suite *it_durability_suite(void);

static char hold_var[512];
static char hold_file[600];
static char hold_port[16];

/* Runs scripts/infra.sh cmd against the suite's own MariaDB; returns its
 * exit status. */
static int
hold_infra(const char *cmd)
{
	char line[2048];
	int st;

	/* Persistent statistics are written by a background transaction
	 * that holds the table's dictionary entry while it commits: with
	 * the log held, it would block every statement on the table. */
	snprintf(line, sizeof(line), "OUTBOX_VAR='%s' OUTBOX_DB_PORT='%s' "
	    "OUTBOX_DB_ARGS='--innodb-stats-persistent=OFF' "
	    "OUTBOX_DB_PRELOAD='%s/../lib/outbox-fsync-hold.so' "
	    "OUTBOX_HOLD_FILE='%s' bash '%s/scripts/infra.sh' %s "
	    ">>'%s/infra-hold.log' 2>&1", hold_var, hold_port,
	    h_env("OUTBOX_BIN", "build/san/bin"), hold_file,
	    h_env("OUTBOX_ROOT", "."), cmd, h_env("OUTBOX_TEST_LOGS", "/tmp"));
	st = system(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Unchecked fixture (parent process): the server, migrated. */
static void
hold_server_up(void)
{
	char line[2048];
	int st;

	snprintf(hold_port, sizeof(hold_port), "%s",
	    h_env("OUTBOX_HOLD_DB_PORT", "23307"));
	snprintf(hold_var, sizeof(hold_var), "%s",
	    h_env("OUTBOX_HOLD_VAR", ""));
	if (hold_var[0] == '\0')
		snprintf(hold_var, sizeof(hold_var), "%s/../var-hold",
		    h_env("OUTBOX_TEST_LOGS", "/tmp"));
	mkdir(hold_var, 0755);
	snprintf(hold_file, sizeof(hold_file), "%s/hold", hold_var);
	unlink(hold_file);
	if (hold_infra("db-start") != 0) {
		fprintf(stderr, "durability: cannot start the MariaDB of the "
		    "suite (see infra-hold.log)\n");
		return;
	}
	snprintf(line, sizeof(line), "DB_PORT='%s' '%s/outbox-migrate' "
	    ">>'%s/infra-hold.log' 2>&1", hold_port,
	    h_env("OUTBOX_BIN", "build/san/bin"),
	    h_env("OUTBOX_TEST_LOGS", "/tmp"));
	st = system(line);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "durability: migrations failed (see "
		    "infra-hold.log)\n");
}

static void
hold_server_down(void)
{
	unlink(hold_file);
	hold_infra("db-stop");
}

/* Checked fixture (each forked test): talk to the suite's server. */
static void
use_hold_server(void)
{
	setenv("DB_PORT", hold_port, 1);
	unlink(hold_file);
}

static void
hold(int on)
{
	FILE *f;

	if (!on) {
		unlink(hold_file);
		return;
	}
	f = fopen(hold_file, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
}

static int
db_answers(void *ud)
{
	(void)ud;
	return db_ping(h_db()) == DB_OK;
}

/* kill -9 of the server while the hold is on, then a restart. */
static void
crash_and_restart(void)
{
	ck_assert_int_eq(hold_infra("db-kill"), 0);
	hold(0);
	ck_assert_int_eq(hold_infra("db-start"), 0);
	ck_assert_msg(h_wait(30000, db_answers, NULL), "server not back");
}

static long long
count1(const char *sql, const char *arg)
{
	struct db_val a = DB_STR(arg);

	return h_count(sql, &a, 1);
}

/* ---- a transaction committed while the log is held ---------------- */

struct held_txn {
	pthread_t th;
	char cust_id[UID_LEN + 1];
	char msg_id[UID_LEN + 1];
	char email[64];
	const char *idem_key;   /* also store an idempotency key, or NULL */
	int processed_only;     /* only a processed_messages row for msg_id */
	int rc;                 /* of the COMMIT: fails when the server dies */
	struct buf body;        /* the customer JSON */
};

static const char SQL_CUST[] = "INSERT INTO customers (id, email, name, "
    "created_at, updated_at) VALUES (?, ?, 'Held', ?, ?)";
static const char SQL_OUTBOX[] = "INSERT INTO outbox (message_id, "
    "event_name, payload, created_at) VALUES (?, 'CustomerCreated', ?, ?)";
static const char SQL_IDEM[] = "INSERT INTO idempotency_keys (idem_key, "
    "request_email, request_name, status, customer_id, response_body, "
    "created_at) VALUES (?, ?, 'Held', 201, ?, ?, ?)";
/* Its event name tells the held row from the worker's own. */
static const char SQL_PROCESSED[] = "INSERT INTO processed_messages "
    "(message_id, event_name, processed_at) VALUES (?, 'Held', "
    "UTC_TIMESTAMP(6))";

static void *
held_commit(void *arg)
{
	struct held_txn *t = arg;
	struct db_params p;
	struct db_val a[5];
	char ts[TIMEFMT_LEN];
	struct timespec now;
	db_conn *c;

	h_db_params(&p);
	c = db_new(&p);
	timefmt_now(&now);
	timefmt_sql(&now, ts, sizeof(ts));
	t->rc = db_begin(c);
	if (t->rc == DB_OK && t->processed_only) {
		a[0] = DB_STR(t->msg_id);
		t->rc = db_exec(c, SQL_PROCESSED, a, 1, NULL);
	} else if (t->rc == DB_OK) {
		a[0] = DB_STR(t->cust_id);
		a[1] = DB_STR(t->email);
		a[2] = DB_STR(ts);
		a[3] = DB_STR(ts);
		t->rc = db_exec(c, SQL_CUST, a, 4, NULL);
		a[0] = DB_STR(t->msg_id);
		a[1] = DB_STRN(t->body.data, t->body.len);
		a[2] = DB_STR(ts);
		if (t->rc == DB_OK)
			t->rc = db_exec(c, SQL_OUTBOX, a, 3, NULL);
		a[0] = DB_STR(t->idem_key ? t->idem_key : "");
		a[1] = DB_STR(t->email);
		a[2] = DB_STR(t->cust_id);
		a[3] = DB_STRN(t->body.data, t->body.len);
		a[4] = DB_STR(ts);
		if (t->rc == DB_OK && t->idem_key != NULL)
			t->rc = db_exec(c, SQL_IDEM, a, 5, NULL);
	}
	/* Blocks while the log is held; fails when the server dies. */
	if (t->rc == DB_OK)
		t->rc = db_commit(c);
	else
		db_rollback(c);
	db_free(c);
	return NULL;
}

struct visible_ud {
	const char *sql;
	const char *arg;
};

static int
visible(void *ud)
{
	struct visible_ud *u = ud;

	return count1(u->sql, u->arg) == 1;
}

/* Starts t's transaction with the log held and waits until its rows are
 * visible to other sessions. */
static void
held_start(struct held_txn *t, const char *tag)
{
	struct customer cu;
	struct timespec now;
	struct visible_ud v;

	uid_new(t->cust_id);
	uid_new(t->msg_id);
	snprintf(t->email, sizeof(t->email), "%s-%.8s@example.com", tag,
	    t->cust_id);
	memset(&cu, 0, sizeof(cu));
	memcpy(cu.id, t->cust_id, sizeof(cu.id));
	cu.email = t->email;
	cu.name = "Held";
	timefmt_now(&now);
	timefmt_rfc3339(&now, cu.created_at, sizeof(cu.created_at));
	memcpy(cu.updated_at, cu.created_at, sizeof(cu.updated_at));
	buf_init(&t->body, 4096);
	ck_assert_int_eq(msg_customer_json(&cu, &t->body), 0);
	hold(1);
	ck_assert_int_eq(pthread_create(&t->th, NULL, held_commit, t), 0);
	v.sql = t->processed_only ?
	    "SELECT COUNT(*) FROM processed_messages WHERE message_id = ?" :
	    "SELECT COUNT(*) FROM customers WHERE id = ?";
	v.arg = t->processed_only ? t->msg_id : t->cust_id;
	ck_assert_msg(h_wait(30000, visible, &v), "the held transaction "
	    "never became visible (%d: %s)", t->rc, t->rc == DB_OK ? "" :
	    "see the held thread's statements");
}

/* After the crash: the commit failed and its rows are gone (else the
 * test did not open the window it is about). */
static void
held_lost(struct held_txn *t)
{
	long long left;

	pthread_join(t->th, NULL);
	ck_assert_msg(t->rc != DB_OK, "the held commit returned: the log was "
	    "not held");
	if (t->processed_only)
		left = count1("SELECT COUNT(*) FROM processed_messages WHERE "
		    "message_id = ? AND event_name = 'Held'", t->msg_id);
	else
		left = count1("SELECT COUNT(*) FROM customers WHERE id = ?",
		    t->cust_id) + count1("SELECT COUNT(*) FROM outbox WHERE "
		    "message_id = ?", t->msg_id);
	ck_assert_msg(left == 0, "the held transaction survived the crash: "
	    "nothing was proven");
	buf_free(&t->body);
}

/* ---- relay and worker ---------------------------------------------- */

struct sql_ud {
	const char *sql;
	const char *arg;
	long long want;
};

static int
sql_reached(void *ud)
{
	struct sql_ud *u = ud;

	return db_ping(h_db()) == DB_OK && count1(u->sql, u->arg) >= u->want;
}

static void
post_direct(const char *tag, char *cust_id)
{
	struct held_txn t;
	struct db_val a[4];
	char ts[TIMEFMT_LEN], msg_id[UID_LEN + 1];
	struct customer cu;
	struct timespec now;
	struct buf body;
	db_conn *c = h_db();

	memset(&t, 0, sizeof(t));
	uid_new(cust_id);
	uid_new(msg_id);
	snprintf(t.email, sizeof(t.email), "%s-%.8s@example.com", tag,
	    cust_id);
	memset(&cu, 0, sizeof(cu));
	memcpy(cu.id, cust_id, sizeof(cu.id));
	cu.email = t.email;
	cu.name = "Direct";
	timefmt_now(&now);
	timefmt_rfc3339(&now, cu.created_at, sizeof(cu.created_at));
	memcpy(cu.updated_at, cu.created_at, sizeof(cu.updated_at));
	timefmt_sql(&now, ts, sizeof(ts));
	buf_init(&body, 4096);
	ck_assert_int_eq(msg_customer_json(&cu, &body), 0);
	ck_assert_int_eq(db_begin(c), DB_OK);
	a[0] = DB_STR(cust_id);
	a[1] = DB_STR(t.email);
	a[2] = DB_STR(ts);
	a[3] = DB_STR(ts);
	ck_assert_int_eq(db_exec(c, SQL_CUST, a, 4, NULL), DB_OK);
	a[0] = DB_STR(msg_id);
	a[1] = DB_STRN(body.data, body.len);
	a[2] = DB_STR(ts);
	ck_assert_int_eq(db_exec(c, SQL_OUTBOX, a, 3, NULL), DB_OK);
	ck_assert_int_eq(db_commit(c), DB_OK);
	buf_free(&body);
}

/* Waits until the customer's welcome email exists. */
static int
handled(const char *cust_id, int timeout_ms)
{
	struct sql_ud u = { "SELECT COUNT(*) FROM welcome_emails WHERE "
	    "customer_id = ?", cust_id, 1 };

	return h_wait(timeout_ms, sql_reached, &u);
}

static const char *const fast_retry[] = {
	"RELAY_RECONNECT_MAX_MS=300", "RELAY_POLL_MS=10",
	"WORKER_RETRY_BASE_MS=50", "WORKER_RETRY_MAX_MS=300", NULL,
};

/* OUTBOX_HOLD_ROUNDS (1): crashes in the relay test; `make chaos` runs
 * it long. */
static int
hold_rounds(void)
{
	int n;

	if (cfg_parse_int(h_env("OUTBOX_HOLD_ROUNDS", "1"), 1, 1000, &n) == -1)
		return 1;
	return n;
}

START_TEST(relay_publishes_no_event_for_a_commit_a_crash_takes_back)
{
	struct h_daemon relay = { 0 }, worker = { 0 };
	struct held_txn t;
	struct sql_ud seen;
	char warm[UID_LEN + 1], after[UID_LEN + 1];
	int published = 0, round, rounds = hold_rounds();

	h_reset();
	H_START(&relay, H_RELAY, NULL, fast_retry);
	H_START(&worker, H_WORKER, NULL, fast_retry);
	/* The path works, and every table is open. */
	post_direct("warm", warm);
	ck_assert_msg(handled(warm, 60000), "the warm-up message was not "
	    "handled");

	for (round = 0; round < rounds; round++) {
		memset(&t, 0, sizeof(t));
		held_start(&t, "held");
		/* Today's relay publishes the visible row within a poll,
		 * and the worker's processed row appears (visible, its
		 * commit held too). */
		seen.sql = "SELECT COUNT(*) FROM processed_messages WHERE "
		    "message_id = ?";
		seen.arg = t.msg_id;
		seen.want = 1;
		published += h_wait(rounds > 1 ? 1000 : 3000, sql_reached,
		    &seen);
		crash_and_restart();
		held_lost(&t);
	}

	/* The system settles: a new customer goes all the way through, and
	 * nothing is left in the queue. */
	post_direct("after", after);
	ck_assert_msg(handled(after, 60000), "nothing handled after the "
	    "restart (logs %s, %s)", relay.log, worker.log);
	h_assert_no_phantoms(published, rounds);
	ck_assert_int_eq(h_daemon_stop(&relay, H_STOP_MS), 0);
	ck_assert_int_eq(h_daemon_stop(&worker, H_STOP_MS), 0);
	if (rounds > 1)
		printf("durability: %d crashes of the database with a commit "
		    "held, 0 events published for them\n", rounds);
}
END_TEST

/* ---- the app ------------------------------------------------------- */

struct ask {
	pthread_t th;
	int port;
	const char *method;
	char path[128];
	char body[256];
	const char *header;
	long status;      /* 0: no answer */
	long long at_ms;  /* when it came */
};

static void *
ask_run(void *arg)
{
	struct ask *a = arg;
	const char *hdrs[2] = { a->header, NULL };
	struct h_resp r;

	if (h_http(a->port, a->method, a->path, a->body[0] ?
	    "application/json" : NULL, a->body[0] ? a->body : NULL,
	    strlen(a->body), hdrs, &r) == 0) {
		a->status = r.status;
		h_resp_free(&r);
	}
	a->at_ms = clock_ms();
	return NULL;
}

/* The three asks of q all answered. */
static int
all_answered(void *ud)
{
	const struct ask *q = ud;

	return q[0].at_ms != 0 && q[1].at_ms != 0 && q[2].at_ms != 0;
}

START_TEST(app_reports_nothing_a_crash_takes_back)
{
	static const char *const app_env[] = { "APP_DB_POOL=2", NULL };
	struct h_daemon app = { 0 };
	struct held_txn t;
	struct ask q[3];
	char idem_hdr[80], idem_key[40], uid[UID_LEN + 1];
	long long killed_at;
	int i;

	h_reset_tables();
	H_START(&app, H_APP, NULL, app_env);
	uid_new(uid);
	snprintf(idem_key, sizeof(idem_key), "hold-%.8s", uid);
	snprintf(idem_hdr, sizeof(idem_hdr), "Idempotency-Key: %s", idem_key);

	memset(&t, 0, sizeof(t));
	t.idem_key = idem_key;
	held_start(&t, "app");
	memset(q, 0, sizeof(q));
	for (i = 0; i < 3; i++)
		q[i].port = app.port;
	/* 409 for the held email. */
	q[0].method = "POST";
	snprintf(q[0].path, sizeof(q[0].path), "/customers");
	snprintf(q[0].body, sizeof(q[0].body), "{\"email\":\"%s\","
	    "\"name\":\"Other\"}", t.email);
	/* 200 for the held customer. */
	q[1].method = "GET";
	snprintf(q[1].path, sizeof(q[1].path), "/customers/%s", t.cust_id);
	/* The replay of the held key's 201. */
	q[2].method = "POST";
	snprintf(q[2].path, sizeof(q[2].path), "/customers");
	snprintf(q[2].body, sizeof(q[2].body), "{\"email\":\"%s\","
	    "\"name\":\"Held\"}", t.email);
	q[2].header = idem_hdr;
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&q[i].th, NULL, ask_run,
		    &q[i]), 0);
	/* Today's app answers at once; give it the time to. */
	(void)h_wait(1500, all_answered, q);
	killed_at = clock_ms();
	crash_and_restart();
	for (i = 0; i < 3; i++)
		pthread_join(q[i].th, NULL);
	held_lost(&t);

	for (i = 0; i < 3; i++) {
		/* Whatever came before the crash was a claim about the held
		 * transaction; after it, a 503 (or a fresh 201 for the POST
		 * of the freed email) is fine. */
		ck_assert_msg(!(q[i].at_ms != 0 && q[i].at_ms < killed_at &&
		    q[i].status != 503), "%s %s answered %ld before the crash, "
		    "about a customer that the crash took back", q[i].method,
		    q[i].path, q[i].status);
		ck_assert_msg(q[i].status != 200 && q[i].status != 409,
		    "%s %s answered %ld about a customer that does not exist",
		    q[i].method, q[i].path, q[i].status);
	}
	ck_assert_int_eq(h_daemon_stop(&app, H_STOP_MS), 0);
}
END_TEST

/* ---- the worker ---------------------------------------------------- */

START_TEST(worker_acks_no_duplicate_of_a_commit_a_crash_takes_back)
{
	struct h_daemon worker = { 0 };
	struct held_txn t;
	struct buf body;
	const char *bodies[1], *ids[1];

	h_reset();
	H_START(&worker, H_WORKER, NULL, fast_retry);

	memset(&t, 0, sizeof(t));
	t.processed_only = 1;
	held_start(&t, "dup");
	/* The message whose id the held transaction marked processed. */
	buf_init(&body, 4096);
	ck_assert_int_eq(msg_event_body(t.msg_id, MSG_EVENT_CUSTOMER_CREATED,
	    t.body.data, t.body.len, &body), 0);
	bodies[0] = body.data;
	ids[0] = t.msg_id;
	h_mq_publish(bodies, ids, 1);
	/* Today's worker sees the id and acks at once as a duplicate;
	 * give it the time to. */
	(void)h_wait_log(&worker, "Duplicate message", 1, 3000);
	crash_and_restart();
	held_lost(&t);

	/* Unacked, the message comes back and is handled for real. */
	ck_assert_msg(handled(t.cust_id, 60000), "the message was acked as a "
	    "duplicate of a processed id that the crash took back: its "
	    "effect is lost (log %s)", worker.log);
	ck_assert_int_eq(count1("SELECT COUNT(*) FROM processed_messages "
	    "WHERE message_id = ?", t.msg_id), 1);
	buf_free(&body);
	ck_assert_int_eq(h_daemon_stop(&worker, H_STOP_MS), 0);
}
END_TEST

Suite *
it_durability_suite(void)
{
	const TTest *const phantom[] = {
	    relay_publishes_no_event_for_a_commit_a_crash_takes_back, NULL };
	const TTest *const answers[] = {
	    app_reports_nothing_a_crash_takes_back,
	    worker_acks_no_duplicate_of_a_commit_a_crash_takes_back, NULL };
	Suite *s = suite_create("durability");

	/* Each case runs the suite's MariaDB (started, then stopped). */
	tcase_add_unchecked_fixture(suites_case(s, "phantom events", 1200,
	    use_hold_server, NULL, phantom), hold_server_up,
	    hold_server_down);
	tcase_add_unchecked_fixture(suites_case(s, "answers and acks", 180,
	    use_hold_server, NULL, answers), hold_server_up,
	    hold_server_down);
	return s;
}
