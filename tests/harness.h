/*
 * harness.h - what the integration tests share: the real servers'
 * settings, the daemons forked on free ports as their own logins with
 * their logs in files named after the test, an HTTP client, database and
 * broker helpers, and waiting with deadlines.  What only the relay's or
 * the worker's tests share is in harness_relay.h and harness_worker.h.
 *
 * Environment (set by tests/run.sh): DB_* and RABBITMQ_* of the test
 * servers, OUTBOX_BIN (folder of the binaries under test), OUTBOX_ROOT
 * (the repository), OUTBOX_TEST_LOGS (folder for daemon logs).
 */
#ifndef OUTBOX_TEST_HARNESS_H
#define OUTBOX_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "db.h"
#include "mq.h"

/* ---- waiting ---- */

/* Deadlines for what should take a second: generous, because the tests
 * run under ASan on a loaded machine.  A deadline says when to give up,
 * never how fast something must be. */
#define H_READY_MS 60000 /* a daemon's start, until it is ready */
#define H_STOP_MS 60000  /* a daemon's exit after SIGTERM */

/* Polls cond(ud) every 10 ms until it returns non-zero (returns 1) or
 * timeout_ms passes (returns 0). */
int h_wait(int timeout_ms, int (*cond)(void *), void *ud);
/* h_wait's condition for a stretch of time that is part of a scenario (an
 * idle connection, a frozen broker): clock_ms() reached *(long long *)ud. */
int h_clock_passed(void *ud);

/* ---- servers ---- */

/* Settings of the private servers, from the environment. */
void h_db_params(struct db_params *p);
void h_mq_params(struct mq_params *p);
/* Runs scripts/infra.sh <cmd> (db-stop, db-start, mq-stop, ...); returns
 * its exit status. */
int h_infra(const char *cmd);

extern db_conn *h_conn_inherited;

/* A connection of the test's own (created on first use, per process). */
db_conn *h_db(void);
/* Runs a statement without values; fails the test on error. */
void h_sql(const char *sql);
/* Runs a query whose first column of the first row is an integer; with
 * args.  Fails the test on error; returns -1 when there is no row. */
long long h_count(const char *sql, const struct db_val *args, size_t nargs);
/* Waits up to timeout_ms until sql (no values) counts at least want;
 * returns 1, or 0 when it did not. */
int h_wait_count(const char *sql, long long want, int timeout_ms);
/* Empties the tables of the system (customers, outbox, processed, ...). */
void h_reset_tables(void);
/* Empties the whole system: its tables (h_reset_tables) and its queues
 * (h_mq_reset_queues). */
void h_reset(void);

/* The settings of the private servers with the logins of a daemon role
 * ("APP", "RELAY", "WORKER", "AUDIT", "ADMIN") from scripts/roles.env. */
void h_role_db_params(const char *role, struct db_params *p);
/* A new connection of the role's login, connected; fails the test
 * otherwise.  Free with db_free. */
db_conn *h_role_db(const char *role);
/* A new connection of the schema's owner that runs session (SET ...),
 * begins a transaction and runs the locking read sql (one count), kept
 * in *n: locks held until db_rollback.  Fails the test on an error. */
db_conn *h_db_hold(const char *session, const char *sql, long long *n);
/* The environment variable name, or def when it is unset or empty. */
const char *h_env(const char *name, const char *def);
void h_role_mq_params(const char *role, struct mq_params *p);

/* ---- daemons ---- */

/* H_MIGRATE: outbox-migrate, as the environment's (administrator's)
 * login; it exits by itself (h_daemon_wait). */
enum h_kind { H_APP, H_RELAY, H_WORKER, H_MIGRATE };

struct h_daemon {
	pid_t pid;
	char name[128];
	char log[512];
	long log_from; /* where this run's lines begin in log (a daemon
	                * started again under the same name, a loop test's
	                * next iteration, appends to it) */
	int port;      /* the app's HTTP port */
};

/* Forks the daemon of kind (outbox-app, outbox-relay, outbox-worker from
 * $OUTBOX_BIN) as its own least-privilege login (scripts/roles.env), the
 * app on a free port of 127.0.0.1 (d->port), without a metrics listener,
 * with the environment plus extra ("NAME=value" strings, NULL-terminated,
 * which may override all of that).  Its stdout and stderr go to
 * $OUTBOX_TEST_LOGS/<test>-<kind>.log, or <test>-<kind>-<suffix>.log:
 * test is the name of the calling function (a test's START_TEST(x) body
 * is x_fn, whose "_fn" is dropped), suffix tells apart the daemons of one
 * kind that a test starts (NULL: none).  The daemon dies with the test
 * process.  Does not wait: for a daemon that must refuse to start. */
void h_spawn(struct h_daemon *d, enum h_kind kind, const char *test,
    const char *suffix, const char *const *extra);
/* h_spawn, then waits (H_READY_MS) until the daemon is ready: the app
 * answers /readyz with 200, the relay and the worker logged their started
 * line (h_started_line).  Fails the test otherwise. */
void h_start(struct h_daemon *d, enum h_kind kind, const char *test,
    const char *suffix, const char *const *extra);
/* h_start from a test or fixture, its log named after it. */
#define H_START(d, kind, suffix, extra)                                     \
	h_start((d), (kind), __func__, (suffix), (extra))
/* The line a daemon of kind logs once started ("listening on", "relay
 * started", "consuming outbox"). */
const char *h_started_line(enum h_kind kind);

/* outbox-sqlproxy (tests/sqlproxy.c) between a daemon and the private
 * MariaDB: start the daemon with env as an extra setting. */
struct h_proxy {
	struct h_daemon d; /* the proxy's process and log */
	int port;
	char env[32];      /* "DB_PORT=<port>" */
};

/* Starts the proxy on a free port, its log named after test; waits until
 * it listens.  Stop it with h_daemon_stop(&p->d, ...). */
void h_proxy_start(struct h_proxy *p, const char *test);
/* Arms one cut: the next COMMIT of any connection is forwarded, then that
 * connection is closed on both sides (the reply is lost). */
void h_proxy_cut(struct h_proxy *p);
/* Cuts done so far. */
int h_proxy_cuts(const struct h_proxy *p);

/* SIGTERM, then waits up to timeout_ms; returns the exit status (0..255),
 * 128+signal if killed by one, or -1 on timeout (then SIGKILLed). */
int h_daemon_stop(struct h_daemon *d, int timeout_ms);
/* SIGTERM: the daemon must exit 0 within H_STOP_MS (so LeakSanitizer
 * found nothing either), having logged "stopped" and no sanitizer
 * report.  Fails the test otherwise. */
void h_stop_clean(struct h_daemon *d);
/* Waits up to timeout_ms for the daemon to exit by itself; returns as
 * h_daemon_stop, -1 on timeout (the daemon is left running). */
int h_daemon_wait(struct h_daemon *d, int timeout_ms);
/* SIGKILL and reap. */
void h_daemon_kill9(struct h_daemon *d);
/* 1 if the daemon's log contains needle. */
int h_log_contains(const struct h_daemon *d, const char *needle);
/* Number of lines of the log that contain needle. */
int h_log_count(const struct h_daemon *d, const char *needle);
/* Waits up to timeout_ms until at least n lines of the log contain
 * needle; returns 1, or 0 when they did not. */
int h_wait_log(const struct h_daemon *d, const char *needle, int n,
    int timeout_ms);
/* A free TCP port on 127.0.0.1. */
int h_free_port(void);

/* ---- raw TCP ---- */

/* A TCP connection to 127.0.0.1:port, or -1. */
int h_tcp_connect(int port);
/* Waits up to timeout_ms for the peer to close fd (read returns 0 or an
 * error), appending what it sent to out (NUL-terminated, at most outlen
 * - 1 bytes; out may be NULL).  Returns 1 when closed, 0 at the
 * deadline. */
int h_tcp_wait_closed(int fd, int timeout_ms, char *out, size_t outlen);
/* Reads fd, appending to out (NUL-terminated, outlen > 0), until out
 * contains needle (returns 1), the peer closes (-1) or timeout_ms passes
 * (0). */
int h_tcp_read_until(int fd, const char *needle, int timeout_ms, char *out,
    size_t outlen);

/* Runs outbox-audit (the audit login, AUDIT_GRACE_S=0, and extra:
 * "NAME=value" strings, NULL-terminated, or NULL) to its end; its report
 * in d->log, named after test.  Returns its exit status. */
int h_audit(struct h_daemon *d, const char *test, const char *const *extra);

/* 1 if the audit's report d (h_audit, text) has the line of check what:
 * state ("ok", "FAIL", "info") and the count v. */
int h_audit_says(const struct h_daemon *d, const char *state,
    const char *what, long long v);

/* Runs outbox-admin with the arguments args (NULL-terminated, at most
 * 16) as the admin's logins, with extra ("NAME=value" strings,
 * NULL-terminated, or NULL), standard input /dev/null, to its end; its
 * output (standard output and error) alone in d->log, named after test
 * and the run's number.  Returns its exit status (128+9 when it was
 * killed by SIGKILL). */
int h_admin(struct h_daemon *d, const char *test, const char *const *args,
    const char *const *extra);

/* ---- HTTP ---- */

struct h_resp {
	long status;
	char *body;        /* NUL-terminated, malloc'd */
	size_t len;
	char location[256];
	char allow[64];
	char content_type[128];
};

/* One request to http://127.0.0.1:<port><path>.  ctype may be NULL (no
 * Content-Type), body may be NULL; headers is a NULL-terminated list of
 * "Name: value" or NULL.  Returns 0, or -1 when no HTTP answer came
 * (status 0). */
int h_http(int port, const char *method, const char *path, const char *ctype,
    const char *body, size_t len, const char *const *headers,
    struct h_resp *r);
void h_resp_free(struct h_resp *r);
/* The /metrics text of the listener on port (malloc'd); fails the test
 * unless it answers 200 with Prometheus' text format. */
char *h_scrape(int port);
/* The value of the series written exactly as series ("name" or
 * "name{labels}") in text; -1 when absent. */
double h_series_value(const char *text, const char *series);
/* The series' value on the listener on port (h_scrape). */
double h_metric(int port, const char *series);
/* Waits up to timeout_ms until the series on port is at least want;
 * fails the test otherwise. */
void h_wait_metric(int port, const char *series, double want,
    int timeout_ms);
/* The same, until the series is exactly want (a gauge going down too). */
void h_wait_metric_is(int port, const char *series, double want,
    int timeout_ms);
/* 1 if body is {"error": "<non-empty string>"} and nothing else. */
int h_is_error_body(const char *body);

/* ---- broker ---- */

/* A new broker connection of the test's own (channel 1, no confirm mode);
 * fails the test when the broker does not answer.  Free with mq_free. */
mq_conn *h_mq_open(void);
/* The same in confirm mode (publisher confirms). */
mq_conn *h_mq_open_confirm(void);
/* Declares the system's topology (mq_declare_topology) and empties the
 * queues outbox and outbox.dlq. */
void h_mq_reset_queues(void);
/* Ready messages in queue, or -1 when the queue does not exist. */
long long h_mq_depth(const char *queue);
/* Consumes (and acks) up to n messages of queue, calling fn for each,
 * until n came or timeout_ms passed; returns how many came. */
size_t h_mq_collect(const char *queue, size_t n, int timeout_ms,
    void (*fn)(void *ud, const struct mq_delivery *d), void *ud);
/* Publishes n bodies to queue outbox through the default exchange,
 * persistent, on a confirm-mode connection of its own; message_id ids[i]
 * when ids and ids[i] are not NULL.  Fails the test unless the broker
 * confirmed every message. */
void h_mq_publish(const char *const *bodies, const char *const *ids,
    size_t n);
/* h_mq_publish with the AMQP timestamp ts (seconds since the epoch; 0:
 * now) on every message. */
void h_mq_publish_at(const char *const *bodies, const char *const *ids,
    size_t n, uint64_t ts);
/* Runs rabbitmqctl with args (shell words) against the private broker,
 * through `scripts/infra.sh mq-ctl` (same node name and cookie).  Its
 * standard output goes to out (may be NULL), NUL-terminated.  Returns the
 * exit status. */
int h_mq_ctl(const char *args, char *out, size_t outlen);
/* on: a disk alarm on the private broker (its free-disk limit far above
 * the free space: it blocks every publishing connection), waited for;
 * off: RabbitMQ's default limit again (50 MB), the alarm is over.  Fails
 * the test when rabbitmqctl does. */
void h_mq_disk_alarm(int on);
/* Ready and unacknowledged messages of queue, from rabbitmqctl (slow:
 * about half a second).  0, or -1 when the queue is not listed. */
int h_mq_counts(const char *queue, long long *ready, long long *unacked);
/* The row of `rabbitmqctl list_queues name <columns>` (shell words) for
 * queue, without its name, into row (tab-separated); 0, or -1 when the
 * queue is not listed. */
int h_mq_queue_row(const char *queue, const char *columns, char *row,
    size_t len);
/* After database crashes that took transactions back (it_durability.c,
 * it_binlog.c): the queue outbox drained, no processed id without its
 * outbox row, no welcome email without its customer; nothing was
 * published or applied for them.  seen: how many the worker had seen
 * before their crash, of rounds (for the message). */
void h_assert_no_phantoms(int seen, int rounds);
/* Waits (30 s at most) until queue holds exactly want ready messages;
 * fails the test otherwise. */
void h_mq_wait_depth(const char *queue, long long want);
/* Waits up to timeout_ms until queue holds no message, ready or
 * unacknowledged (every one acked); fails the test otherwise. */
void h_mq_wait_drained(const char *queue, int timeout_ms);

#endif
