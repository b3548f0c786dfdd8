/*
 * harness.h - what the integration tests share: the real servers'
 * settings, daemons forked on free ports with their logs in files, an
 * HTTP client, database assertions, and waiting with deadlines.
 *
 * Environment (set by tests/run.sh): DB_* and RABBITMQ_* of the test
 * servers, OUTBOX_BIN (folder of the binaries under test), OUTBOX_ROOT
 * (the repository), OUTBOX_TEST_LOGS (folder for daemon logs).
 */
#ifndef OUTBOX_TEST_HARNESS_H
#define OUTBOX_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include "db.h"
#include "mq.h"

/* ---- waiting ---- */

/* Polls cond(ud) every 10 ms until it returns non-zero (returns 1) or
 * timeout_ms passes (returns 0). */
int h_wait(int timeout_ms, int (*cond)(void *), void *ud);
long long h_now_ms(void);

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
/* Empties the tables of the system (customers, outbox, processed, ...). */
void h_reset_tables(void);

/* ---- daemons ---- */

struct h_daemon {
	pid_t pid;
	char name[64];
	char log[512];
	int port;
};

/* Forks and execs $OUTBOX_BIN/<bin> with the environment plus extra
 * ("NAME=value" strings, NULL-terminated), stderr and stdout to a log file
 * named after name.  The child dies with the test process. */
void h_daemon_start(struct h_daemon *d, const char *bin, const char *name,
    const char *const *extra);
/* SIGTERM, then waits up to timeout_ms; returns the exit status (0..255),
 * 128+signal if killed by one, or -1 on timeout (then SIGKILLed). */
int h_daemon_stop(struct h_daemon *d, int timeout_ms);
/* Waits up to timeout_ms for the daemon to exit by itself; returns as
 * h_daemon_stop, -1 on timeout (the daemon is left running). */
int h_daemon_wait(struct h_daemon *d, int timeout_ms);
/* SIGKILL and reap. */
void h_daemon_kill9(struct h_daemon *d);
/* 1 if the daemon's log contains needle. */
int h_log_contains(const struct h_daemon *d, const char *needle);
/* Number of lines of the log that contain needle. */
int h_log_count(const struct h_daemon *d, const char *needle);
/* A free TCP port on 127.0.0.1. */
int h_free_port(void);

/* Starts outbox-app on a free port and waits for /readyz (fails the test
 * when it is not ready within 15 s). */
void h_app_start(struct h_daemon *d, const char *name,
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
/* 1 if body is {"error": "<non-empty string>"} and nothing else. */
int h_is_error_body(const char *body);

/* ---- broker (relay tests) ---- */

/* A new broker connection of the test's own (channel 1, no confirm mode);
 * fails the test when the broker does not answer.  Free with mq_free. */
mq_conn *h_mq_open(void);
/* Declares the system's topology (mq_declare_topology) and empties the
 * queues outbox and outbox.dlq. */
void h_mq_reset_queues(void);
/* Ready messages in queue, or -1 when the queue does not exist. */
long long h_mq_depth(const char *queue);
/* Consumes (and acks) up to n messages of queue, calling fn for each,
 * until n came or timeout_ms passed; returns how many came. */
size_t h_mq_collect(const char *queue, size_t n, int timeout_ms,
    void (*fn)(void *ud, const struct mq_delivery *d), void *ud);
/* Runs rabbitmqctl with args (shell words) against the private broker,
 * through `scripts/infra.sh mq-ctl` (same node name and cookie).  Its
 * standard output goes to out (may be NULL), NUL-terminated.  Returns the
 * exit status. */
int h_mq_ctl(const char *args, char *out, size_t outlen);

/* Starts outbox-relay as its own database and RabbitMQ user (from
 * scripts/roles.env, least privilege) with the environment plus extra,
 * and waits (15 s) for its "relay started" line; fails the test
 * otherwise. */
void h_relay_start(struct h_daemon *d, const char *name,
    const char *const *extra);

/* ---- broker and worker (worker tests) ---- */

/* Publishes n bodies to queue outbox through the default exchange,
 * persistent, on a confirm-mode connection of its own; message_id ids[i]
 * when ids and ids[i] are not NULL.  Fails the test unless the broker
 * confirmed every message. */
void h_mq_publish(const char *const *bodies, const char *const *ids,
    size_t n);
/* Ready and unacknowledged messages of queue, from rabbitmqctl (slow:
 * about half a second).  0, or -1 when the queue is not listed. */
int h_mq_counts(const char *queue, long long *ready, long long *unacked);

/* Starts outbox-worker as its own database and RabbitMQ user (from
 * scripts/roles.env, least privilege) with the environment plus extra,
 * and waits (15 s) for its "consuming outbox" line; fails the test
 * otherwise. */
void h_worker_start(struct h_daemon *d, const char *name,
    const char *const *extra);

/* The settings of the private servers with the logins of a daemon role
 * ("APP", "RELAY", "WORKER", "AUDIT") from scripts/roles.env. */
void h_role_db_params(const char *role, struct db_params *p);
void h_role_mq_params(const char *role, struct mq_params *p);

#endif
