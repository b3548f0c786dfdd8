/*
 * harness.c - integration-test support (see harness.h).
 */
#include "harness.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "buf.h"
#include "cfg.h"
#include "clock.h"

int
h_wait(int timeout_ms, int (*cond)(void *), void *ud)
{
	long long end = clock_ms() + timeout_ms;

	for (;;) {
		if (cond(ud))
			return 1;
		if (clock_ms() >= end)
			return 0;
		backoff_sleep(10, NULL);
	}
}

int
h_clock_passed(void *ud)
{
	return clock_ms() >= *(const long long *)ud;
}

const char *
h_env(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : def;
}

static int
h_env_int(const char *name, int def)
{
	int v;

	if (cfg_parse_int(h_env(name, ""), 1, 65535, &v) == -1)
		return def;
	return v;
}

void
h_db_params(struct db_params *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->host, sizeof(p->host), "%s", h_env("DB_HOST", "127.0.0.1"));
	snprintf(p->user, sizeof(p->user), "%s", h_env("DB_USER", "root"));
	snprintf(p->pass, sizeof(p->pass), "%s", h_env("DB_PASS", ""));
	snprintf(p->name, sizeof(p->name), "%s",
	    h_env("DB_NAME", "outbox-demo"));
	/* Unset: the test servers of scripts/ports.env, never the dev ones. */
	p->port = h_env_int("DB_PORT", 23306);
	p->connect_timeout_s = 2;
	p->io_timeout_s = 30;
}

void
h_mq_params(struct mq_params *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->host, sizeof(p->host), "%s",
	    h_env("RABBITMQ_HOST", "127.0.0.1"));
	snprintf(p->user, sizeof(p->user), "%s",
	    h_env("RABBITMQ_USER", "guest"));
	snprintf(p->pass, sizeof(p->pass), "%s",
	    h_env("RABBITMQ_PASS", "guest"));
	snprintf(p->vhost, sizeof(p->vhost), "/");
	/* Unset: the test servers of scripts/ports.env. */
	p->port = h_env_int("RABBITMQ_PORT", 23672);
	p->connect_timeout_s = 5;
	p->heartbeat_s = 0;
}

int
h_infra(const char *cmd)
{
	char line[1024];
	int st;

	snprintf(line, sizeof(line), "bash '%s/scripts/infra.sh' %s "
	    ">>'%s/infra.log' 2>&1", h_env("OUTBOX_ROOT", "."), cmd,
	    h_env("OUTBOX_TEST_LOGS", "/tmp"));
	st = system(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- logins ---- */

/* The logins of daemon role ("RELAY", ...) from scripts/roles.env, as
 * "DB_USER=...", "DB_PASS=...", "RABBITMQ_USER=...", "RABBITMQ_PASS=..."
 * strings in env; returns how many were found. */
static int
h_role_creds(const char *role, char env[4][192])
{
	static const char *const vars[4][2] = {
		{ "DB_USER", "DB_USER" },
		{ "DB_PASS", "DB_PASS" },
		{ "MQ_USER", "RABBITMQ_USER" },
		{ "MQ_PASS", "RABBITMQ_PASS" },
	};
	char path[512], line[256], key[64], *v;
	int i, n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/scripts/roles.env",
	    h_env("OUTBOX_ROOT", "."));
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL && n < 4) {
		line[strcspn(line, "\r\n")] = '\0';
		if ((v = strchr(line, '=')) == NULL)
			continue;
		*v++ = '\0';
		for (i = 0; i < 4; i++) {
			snprintf(key, sizeof(key), "OUTBOX_%s_%s", role,
			    vars[i][0]);
			if (strcmp(line, key) == 0)
				snprintf(env[n++], sizeof(env[0]), "%s=%s",
				    vars[i][1], v);
		}
	}
	fclose(f);
	return n;
}

/* Copies "NAME=value" of the role's logins into p's matching fields. */
static void
h_role_apply(const char *role, char *dbu, size_t dbulen, char *dbp,
    size_t dbplen, char *mqu, size_t mqulen, char *mqp, size_t mqplen)
{
	char creds[4][192];
	int i, n = h_role_creds(role, creds);

	for (i = 0; i < n; i++) {
		const char *v = strchr(creds[i], '=') + 1;

		if (strncmp(creds[i], "DB_USER=", 8) == 0 && dbu != NULL)
			snprintf(dbu, dbulen, "%s", v);
		else if (strncmp(creds[i], "DB_PASS=", 8) == 0 && dbp != NULL)
			snprintf(dbp, dbplen, "%s", v);
		else if (strncmp(creds[i], "RABBITMQ_USER=", 14) == 0 &&
		    mqu != NULL)
			snprintf(mqu, mqulen, "%s", v);
		else if (strncmp(creds[i], "RABBITMQ_PASS=", 14) == 0 &&
		    mqp != NULL)
			snprintf(mqp, mqplen, "%s", v);
	}
}

void
h_role_db_params(const char *role, struct db_params *p)
{
	h_db_params(p);
	h_role_apply(role, p->user, sizeof(p->user), p->pass, sizeof(p->pass),
	    NULL, 0, NULL, 0);
}

db_conn *
h_role_db(const char *role)
{
	struct db_params p;
	db_conn *c;

	h_role_db_params(role, &p);
	c = db_new(&p);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(db_connect(c) == DB_OK, "%s login: %s", role,
	    db_error(c));
	return c;
}

int
h_audit_says(const struct h_daemon *d, const char *state, const char *what,
    long long v)
{
	char line[256];

	snprintf(line, sizeof(line), "  %-5s %-52s %lld\n", state, what, v);
	return h_log_contains(d, line);
}

void
h_role_mq_params(const char *role, struct mq_params *p)
{
	h_mq_params(p);
	h_role_apply(role, NULL, 0, NULL, 0, p->user, sizeof(p->user), p->pass,
	    sizeof(p->pass));
}

/* ---- database ---- */

static db_conn *h_conn;
static pid_t h_conn_pid;
/* External linkage so that the store is kept: LeakSanitizer sees the
 * parent's handle as reachable in a forked test. */
db_conn *h_conn_inherited;

db_conn *
h_db(void)
{
	struct db_params p;

	/* A forked test must not share its parent's socket: it makes its
	 * own, and keeps the parent's handle (reachable, untouched). */
	if (h_conn != NULL && h_conn_pid != getpid()) {
		h_conn_inherited = h_conn;
		h_conn = NULL;
	}
	if (h_conn == NULL) {
		h_db_params(&p);
		h_conn = db_new(&p);
		h_conn_pid = getpid();
		ck_assert_ptr_nonnull(h_conn);
	}
	return h_conn;
}

void
h_sql(const char *sql)
{
	db_conn *c = h_db();
	int rc = db_exec_sql(c, sql);

	if (rc == DB_ECONN)
		rc = db_exec_sql(c, sql);
	ck_assert_msg(rc == DB_OK, "%s: %s", sql, db_error(c));
}

struct h_count_ud {
	long long v;
};

static int
h_count_cb(void *ud, const struct db_col *cols, size_t ncols)
{
	struct h_count_ud *u = ud;

	if (ncols > 0 && !cols[0].is_null && u->v == -1)
		u->v = strtoll(cols[0].s, NULL, 10);
	return 0;
}

long long
h_count(const char *sql, const struct db_val *args, size_t nargs)
{
	struct h_count_ud u = { -1 };
	db_conn *c = h_db();
	int rc;

	rc = db_query(c, sql, args, nargs, h_count_cb, &u, NULL);
	if (rc == DB_ECONN)
		rc = db_query(c, sql, args, nargs, h_count_cb, &u, NULL);
	ck_assert_msg(rc == DB_OK, "%s: %s", sql, db_error(c));
	return u.v;
}

/* What h_wait_count or h_mq_wait_depth waits for. */
struct h_count_want {
	const char *what; /* the query, or the queue */
	long long want;
};

static int
h_count_reached(void *ud)
{
	const struct h_count_want *w = ud;

	return h_count(w->what, NULL, 0) >= w->want;
}

int
h_wait_count(const char *sql, long long want, int timeout_ms)
{
	struct h_count_want w = { sql, want };

	return h_wait(timeout_ms, h_count_reached, &w);
}

static int
h_depth_reached(void *ud)
{
	const struct h_count_want *w = ud;

	return h_mq_depth(w->what) == w->want;
}

void
h_mq_wait_depth(const char *queue, long long want)
{
	struct h_count_want w = { queue, want };

	ck_assert_msg(h_wait(30000, h_depth_reached, &w), "%s: %lld ready, "
	    "want %lld", queue, h_mq_depth(queue), want);
}

db_conn *
h_db_hold(const char *session, const char *sql, long long *n)
{
	struct db_params p;
	db_conn *c;

	h_db_params(&p);
	ck_assert_ptr_nonnull(c = db_new(&p));
	ck_assert_msg(db_exec(c, session, NULL, 0, NULL) == DB_OK, "%s: %s",
	    session, db_error(c));
	ck_assert_int_eq(db_begin(c), DB_OK);
	ck_assert_msg(db_query(c, sql, NULL, 0, db_count_row, n, NULL) ==
	    DB_OK, "%s: %s", sql, db_error(c));
	return c;
}

void
h_reset_tables(void)
{
	h_sql("DELETE FROM idempotency_keys");
	h_sql("DELETE FROM welcome_emails");
	h_sql("DELETE FROM processed_messages");
	h_sql("DELETE FROM outbox");
	h_sql("DELETE FROM customers");
	/* A stored binlog position makes the audit, the admin and the
	 * relay's gauges read binlog mode's meaning of published. */
	h_sql("DELETE FROM outbox_relay_position");
}

void
h_reset(void)
{
	h_reset_tables();
	h_mq_reset_queues();
}

/* ---- daemons ---- */

int
h_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}


/* What tells the three kinds apart. */
static const struct h_kind_info {
	const char *name;    /* in log names */
	const char *bin;     /* in $OUTBOX_BIN */
	const char *role;    /* its logins in scripts/roles.env */
	const char *nomet;   /* no metrics listener: several run at once */
	const char *started; /* its line once started */
} h_kinds[] = {
	[H_APP] = { "app", "outbox-app", "APP", "APP_METRICS_PORT=0",
	    "listening on" },
	[H_RELAY] = { "relay", "outbox-relay", "RELAY", "RELAY_METRICS_PORT=0",
	    "relay started" },
	[H_WORKER] = { "worker", "outbox-worker", "WORKER",
	    "WORKER_METRICS_PORT=0", "consuming " MQ_QUEUE },
	/* The schema's owner: the environment's login, no listener. */
	[H_MIGRATE] = { "migrate", "outbox-migrate", NULL, NULL,
	    "schema up to date" },
};

const char *
h_started_line(enum h_kind kind)
{
	return h_kinds[kind].started;
}

/* Forks and execs $OUTBOX_BIN/<bin> with the arguments args (NULL, or
 * NULL-terminated) and the environment plus env (NULL-terminated), stdout
 * and stderr appended to d->log.  The child dies with the calling
 * process. */
static void
h_fork(struct h_daemon *d, const char *bin, const char *const *args,
    const char *const *env)
{
	char path[512];
	char *argv[18];
	pid_t parent = getpid();
	struct stat st;
	int fd, i;

	snprintf(path, sizeof(path), "%s/%s", h_env("OUTBOX_BIN",
	    "build/san/bin"), bin);
	d->log_from = stat(d->log, &st) == 0 ? (long)st.st_size : 0;
	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		/* No child reads a terminal (outbox-admin asks on one). */
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 0);
			close(fd);
		}
		for (i = 0; env[i] != NULL; i++)
			putenv((char *)(uintptr_t)env[i]);
		argv[0] = (char *)(uintptr_t)bin;
		for (i = 0; args != NULL && args[i] != NULL && i < 16; i++)
			argv[i + 1] = (char *)(uintptr_t)args[i];
		argv[i + 1] = NULL;
		execv(path, argv);
		fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
}

void
h_spawn(struct h_daemon *d, enum h_kind kind, const char *test,
    const char *suffix, const char *const *extra)
{
	const struct h_kind_info *k = &h_kinds[kind];
	char creds[4][192], port[32];
	const char *env[40];
	size_t tl = strlen(test);
	int i, n, j = 0;

	/* START_TEST(x) runs x_fn: the log is named after x. */
	if (tl > 3 && strcmp(test + tl - 3, "_fn") == 0)
		tl -= 3;
	snprintf(d->name, sizeof(d->name), "%.*s-%s%s%s", (int)tl, test,
	    k->name, suffix != NULL ? "-" : "", suffix != NULL ? suffix : "");
	snprintf(d->log, sizeof(d->log), "%s/%s.log",
	    h_env("OUTBOX_TEST_LOGS", "/tmp"), d->name);
	/* Its own least-privilege logins first: extra may override them. */
	n = k->role != NULL ? h_role_creds(k->role, creds) : 0;
	for (i = 0; i < n; i++)
		env[j++] = creds[i];
	if (k->nomet != NULL)
		env[j++] = k->nomet;
	d->port = 0;
	if (kind == H_APP) {
		d->port = h_free_port();
		snprintf(port, sizeof(port), "APP_PORT=%d", d->port);
		env[j++] = port;
		env[j++] = "APP_BIND=127.0.0.1";
	}
	for (i = 0; extra != NULL && extra[i] != NULL; i++) {
		ck_assert_msg(j < (int)(sizeof(env) / sizeof(env[0])) - 1,
		    "%s: too many settings", d->name);
		env[j++] = extra[i];
	}
	env[j] = NULL;
	h_fork(d, k->bin, NULL, env);
}

/* Runs the tool bin (args: NULL-terminated, or NULL) as role's logins
 * with the settings pre (may be NULL) then extra (may be NULL), its
 * output in the log named name, to its end; returns its exit status. */
static int
h_tool(struct h_daemon *d, const char *bin, const char *role,
    const char *name, const char *const *args, const char *pre,
    const char *const *extra)
{
	char creds[4][192];
	const char *env[16];
	int i, n, j = 0;

	n = h_role_creds(role, creds);
	for (i = 0; i < n; i++)
		env[j++] = creds[i];
	if (pre != NULL)
		env[j++] = pre;
	for (i = 0; extra != NULL && extra[i] != NULL; i++) {
		ck_assert_msg(j < (int)(sizeof(env) / sizeof(env[0])) - 1,
		    "%s: too many settings", bin);
		env[j++] = extra[i];
	}
	env[j] = NULL;
	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(d->log, sizeof(d->log), "%s/%s.log",
	    h_env("OUTBOX_TEST_LOGS", "/tmp"), d->name);
	h_fork(d, bin, args, env);
	return h_daemon_wait(d, 60000);
}

int
h_audit(struct h_daemon *d, const char *test, const char *const *extra)
{
	char name[128];

	snprintf(name, sizeof(name), "%s-audit", test);
	return h_tool(d, "outbox-audit", "AUDIT", name, NULL,
	    "AUDIT_GRACE_S=0", extra);
}

int
h_admin(struct h_daemon *d, const char *test, const char *const *args,
    const char *const *extra)
{
	static int runs;
	size_t tl = strlen(test);
	char name[128], path[512];

	if (tl > 3 && strcmp(test + tl - 3, "_fn") == 0)
		tl -= 3;
	snprintf(name, sizeof(name), "%.*s-admin-%d", (int)tl, test, ++runs);
	/* This run's output alone, whatever an earlier run left. */
	snprintf(path, sizeof(path), "%s/%s.log",
	    h_env("OUTBOX_TEST_LOGS", "/tmp"), name);
	unlink(path);
	return h_tool(d, "outbox-admin", "ADMIN", name, args, NULL, extra);
}

static int
h_proxy_listening(void *ud)
{
	return h_log_contains(ud, "listening on");
}

void
h_proxy_start(struct h_proxy *p, const char *test)
{
	static const char *const noenv[] = { NULL };
	char lport[16], uport[16];
	const char *args[] = { lport, uport, NULL };
	struct db_params dp;

	h_role_db_params("APP", &dp);
	p->port = h_free_port();
	snprintf(lport, sizeof(lport), "%d", p->port);
	snprintf(uport, sizeof(uport), "%d", dp.port);
	snprintf(p->env, sizeof(p->env), "DB_PORT=%d", p->port);
	snprintf(p->d.name, sizeof(p->d.name), "%s-sqlproxy", test);
	snprintf(p->d.log, sizeof(p->d.log), "%s/%s.log",
	    h_env("OUTBOX_TEST_LOGS", "/tmp"), p->d.name);
	h_fork(&p->d, "outbox-sqlproxy", args, noenv);
	ck_assert_msg(h_wait(H_READY_MS, h_proxy_listening, &p->d),
	    "outbox-sqlproxy not listening (log %s)", p->d.log);
}

void
h_proxy_cut(struct h_proxy *p)
{
	ck_assert_int_eq(kill(p->d.pid, SIGUSR1), 0);
}

int
h_proxy_cuts(const struct h_proxy *p)
{
	return h_log_count(&p->d, "cut after COMMIT");
}

int
h_tcp_connect(int port)
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

/* Reads fd into out until needle is in it (1), the peer closed (-1 when a
 * needle was given, else 1) or the deadline passed (0). */
static int
h_tcp_read(int fd, const char *needle, int timeout_ms, char *out,
    size_t outlen)
{
	long long end = clock_ms() + timeout_ms;
	struct pollfd pfd = { fd, POLLIN, 0 };
	size_t used = out != NULL ? strlen(out) : 0;
	char tmp[4096];
	ssize_t r;

	for (;;) {
		if (needle != NULL && strstr(out, needle) != NULL)
			return 1;
		if (clock_ms() >= end)
			return 0;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		r = read(fd, tmp, sizeof(tmp));
		if (r <= 0)
			return needle != NULL ? -1 : 1;
		if (out != NULL && used + 1 < outlen) {
			if ((size_t)r > outlen - 1 - used)
				r = (ssize_t)(outlen - 1 - used);
			memcpy(out + used, tmp, (size_t)r);
			used += (size_t)r;
			out[used] = '\0';
		}
	}
}

int
h_tcp_wait_closed(int fd, int timeout_ms, char *out, size_t outlen)
{
	return h_tcp_read(fd, NULL, timeout_ms, out, outlen);
}

int
h_tcp_read_until(int fd, const char *needle, int timeout_ms, char *out,
    size_t outlen)
{
	return h_tcp_read(fd, needle, timeout_ms, out, outlen);
}

struct h_ready {
	const struct h_daemon *d;
	enum h_kind kind;
};

static int
h_is_ready(void *ud)
{
	const struct h_ready *r = ud;
	struct h_resp resp;
	int ok;

	if (r->kind != H_APP)
		return h_log_contains(r->d, h_kinds[r->kind].started);
	if (h_http(r->d->port, "GET", "/readyz", NULL, NULL, 0, NULL,
	    &resp) == -1)
		return 0;
	ok = resp.status == 200;
	h_resp_free(&resp);
	return ok;
}

void
h_start(struct h_daemon *d, enum h_kind kind, const char *test,
    const char *suffix, const char *const *extra)
{
	struct h_ready r = { d, kind };

	h_spawn(d, kind, test, suffix, extra);
	ck_assert_msg(h_wait(H_READY_MS, h_is_ready, &r), "%s not ready in "
	    "%d s (log %s)", d->name, H_READY_MS / 1000, d->log);
}

static int
h_reap(struct h_daemon *d, int timeout_ms)
{
	long long end = clock_ms() + timeout_ms;
	int st;
	pid_t r;

	for (;;) {
		r = waitpid(d->pid, &st, WNOHANG);
		if (r == d->pid) {
			d->pid = 0;
			if (WIFEXITED(st))
				return WEXITSTATUS(st);
			return 128 + WTERMSIG(st);
		}
		if (r < 0 || clock_ms() >= end)
			return -1;
		backoff_sleep(10, NULL);
	}
}

int
h_daemon_wait(struct h_daemon *d, int timeout_ms)
{
	if (d->pid <= 0)
		return -1;
	return h_reap(d, timeout_ms);
}

int
h_daemon_stop(struct h_daemon *d, int timeout_ms)
{
	int rc;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	rc = h_reap(d, timeout_ms);
	if (rc == -1 && d->pid > 0) {
		kill(d->pid, SIGKILL);
		h_reap(d, 5000);
		d->pid = 0;
	}
	return rc;
}

void
h_stop_clean(struct h_daemon *d)
{
	const char *name = d->name;

	ck_assert_msg(h_daemon_stop(d, H_STOP_MS) == 0, "%s: no exit 0 within "
	    "%d s of SIGTERM (log %s)", name, H_STOP_MS / 1000, d->log);
	ck_assert_msg(h_log_contains(d, "stopped"), "%s: no \"stopped\" "
	    "(log %s)", name, d->log);
	ck_assert_msg(!h_log_contains(d, "AddressSanitizer"), "%s: ASan "
	    "report (log %s)", name, d->log);
	ck_assert_msg(!h_log_contains(d, "runtime error"), "%s: UBSan "
	    "report (log %s)", name, d->log);
}

void
h_daemon_kill9(struct h_daemon *d)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGKILL);
	h_reap(d, 5000);
	d->pid = 0;
}

int
h_log_count(const struct h_daemon *d, const char *needle)
{
	char line[16384];
	int n = 0;
	FILE *f;

	if ((f = fopen(d->log, "r")) == NULL)
		return 0;
	/* Only this run's lines (a loop test's iterations share a log). */
	if (fseek(f, d->log_from, SEEK_SET) != 0) {
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, needle) != NULL)
			n++;
	}
	fclose(f);
	return n;
}

int
h_log_contains(const struct h_daemon *d, const char *needle)
{
	return h_log_count(d, needle) > 0;
}

struct h_log_want {
	const struct h_daemon *d;
	const char *needle;
	int n;
};

static int
h_log_reached(void *ud)
{
	const struct h_log_want *w = ud;

	return h_log_count(w->d, w->needle) >= w->n;
}

int
h_wait_log(const struct h_daemon *d, const char *needle, int n,
    int timeout_ms)
{
	struct h_log_want w = { d, needle, n };

	return h_wait(timeout_ms, h_log_reached, &w);
}

/* ---- HTTP ---- */

struct h_body {
	struct buf b;
};

static size_t
h_write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct h_body *hb = ud;

	if (buf_append(&hb->b, p, size * n) == -1)
		return 0;
	return size * n;
}

static size_t
h_header_cb(char *p, size_t size, size_t n, void *ud)
{
	struct h_resp *r = ud;
	size_t len = size * n, vl;
	struct {
		const char *name;
		char *dst;
		size_t cap;
	} want[] = {
		{ "Location:", r->location, sizeof(r->location) },
		{ "Allow:", r->allow, sizeof(r->allow) },
		{ "Content-Type:", r->content_type, sizeof(r->content_type) },
	};
	size_t i, nl;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		nl = strlen(want[i].name);
		if (len > nl && strncasecmp(p, want[i].name, nl) == 0) {
			const char *v = p + nl;

			vl = len - nl;
			while (vl > 0 && (*v == ' '))
				v++, vl--;
			while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
				vl--;
			if (vl >= want[i].cap)
				vl = want[i].cap - 1;
			memcpy(want[i].dst, v, vl);
			want[i].dst[vl] = '\0';
		}
	}
	return len;
}

int
h_http(int port, const char *method, const char *path, const char *ctype,
    const char *body, size_t len, const char *const *headers,
    struct h_resp *r)
{
	struct curl_slist *hl = NULL;
	struct h_body hb;
	char url[1024], ct[256];
	CURLcode rc;
	CURL *c;
	int i;

	memset(r, 0, sizeof(*r));
	buf_init(&hb.b, 16 * 1024 * 1024);
	if ((c = curl_easy_init()) == NULL)
		return -1;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
	}
	/* libcurl adds a form Content-Type to a body unless told: an empty
	 * "Content-Type:" removes the header. */
	if (ctype != NULL)
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
	else
		snprintf(ct, sizeof(ct), "Content-Type:");
	hl = curl_slist_append(hl, ct);
	hl = curl_slist_append(hl, "Expect:");
	for (i = 0; headers != NULL && headers[i] != NULL; i++)
		hl = curl_slist_append(hl, headers[i]);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &hb);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, h_header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	if (buf_append(&hb.b, "", 0) == -1) {
		buf_free(&hb.b);
		return -1;
	}
	if (rc != CURLE_OK) {
		buf_free(&hb.b);
		return -1;
	}
	r->body = hb.b.data;
	r->len = hb.b.len;
	return 0;
}

void
h_resp_free(struct h_resp *r)
{
	free(r->body);
	r->body = NULL;
}

int
h_is_error_body(const char *body)
{
	json_t *o, *e;
	int ok;

	if (body == NULL || (o = json_loads(body, 0, NULL)) == NULL)
		return 0;
	e = json_object_get(o, "error");
	ok = json_is_object(o) && json_object_size(o) == 1 &&
	    json_is_string(e) && json_string_length(e) > 0;
	json_decref(o);
	return ok;
}

/* ---- broker ---- */


static mq_conn *
h_mq_open_mode(int confirm)
{
	struct mq_params p;
	mq_conn *c;

	h_mq_params(&p);
	c = mq_new(&p);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(mq_connect(c, confirm) == 0, "broker: %s", mq_error(c));
	return c;
}

mq_conn *
h_mq_open(void)
{
	return h_mq_open_mode(0);
}

mq_conn *
h_mq_open_confirm(void)
{
	return h_mq_open_mode(1);
}

void
h_mq_reset_queues(void)
{
	mq_conn *c = h_mq_open();

	ck_assert_msg(mq_declare_topology(c) == 0, "declare: %s",
	    mq_error(c));
	ck_assert_msg(mq_purge(c, MQ_QUEUE, NULL) == 0, "purge: %s",
	    mq_error(c));
	ck_assert_msg(mq_purge(c, MQ_DLQ, NULL) == 0, "purge: %s",
	    mq_error(c));
	mq_free(c);
}

long long
h_mq_depth(const char *queue)
{
	mq_conn *c = h_mq_open();
	uint32_t n = 0;
	long long r;

	r = mq_queue_depth(c, queue, &n, NULL) == 0 ? (long long)n : -1;
	mq_free(c);
	return r;
}

size_t
h_mq_collect(const char *queue, size_t n, int timeout_ms,
    void (*fn)(void *ud, const struct mq_delivery *d), void *ud)
{
	struct mq_delivery d;
	long long end = clock_ms() + timeout_ms, left;
	mq_conn *c = h_mq_open();
	uint64_t last = 0;
	size_t got = 0;
	int rc;

	ck_assert_msg(mq_consume(c, queue, 500) == 0, "consume %s: %s", queue,
	    mq_error(c));
	while (got < n && (left = end - clock_ms()) > 0) {
		rc = mq_next(c, &d, left < 200 ? (int)left : 200);
		ck_assert_msg(rc >= 0, "consume %s: %s", queue, mq_error(c));
		if (rc == 0)
			continue;
		if (fn != NULL)
			fn(ud, &d);
		last = d.tag;
		got++;
		mq_delivery_free(&d);
		/* Ack in groups: prefetch 500 never stalls. */
		if (got % 100 == 0)
			ck_assert_int_eq(mq_ack(c, last, 1), 0);
	}
	if (last != 0)
		ck_assert_int_eq(mq_ack(c, last, 1), 0);
	mq_free(c);
	return got;
}

int
h_mq_ctl(const char *args, char *out, size_t outlen)
{
	char line[2048];
	size_t n = 0, r;
	FILE *f;
	int st;

	snprintf(line, sizeof(line), "bash '%s/scripts/infra.sh' mq-ctl %s "
	    "2>>'%s/infra.log'", h_env("OUTBOX_ROOT", "."), args,
	    h_env("OUTBOX_TEST_LOGS", "/tmp"));
	if ((f = popen(line, "r")) == NULL)
		return -1;
	if (out != NULL && outlen > 0) {
		while (n < outlen - 1 &&
		    (r = fread(out + n, 1, outlen - 1 - n, f)) > 0)
			n += r;
		out[n] = '\0';
	}
	/* Drain what did not fit, so that the command never blocks. */
	while (fread(line, 1, sizeof(line), f) > 0)
		;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
h_mq_alarm_on(void *ud)
{
	char out[512];

	(void)ud;
	return h_mq_ctl("eval 'rabbit_alarm:get_alarms().'", out,
	    sizeof(out)) == 0 && strstr(out, "resource_limit") != NULL;
}

void
h_mq_disk_alarm(int on)
{
	ck_assert_int_eq(h_mq_ctl(on ? "set_disk_free_limit 1000000GB" :
	    "set_disk_free_limit 50MB", NULL, 0), 0);
	if (on)
		ck_assert_msg(h_wait(10000, h_mq_alarm_on, NULL), "the broker "
		    "raised no disk alarm");
}

char *
h_scrape(int port)
{
	struct h_resp r;
	char *body;

	ck_assert_int_eq(h_http(port, "GET", "/metrics", NULL, NULL, 0, NULL,
	    &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(strncmp(r.content_type, "text/plain; version=0.0.4",
	    25) == 0, "Content-Type %s", r.content_type);
	body = r.body;
	r.body = NULL;
	h_resp_free(&r);
	return body;
}

double
h_series_value(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -1;
}

double
h_metric(int port, const char *series)
{
	char *text = h_scrape(port);
	double v = h_series_value(text, series);

	free(text);
	return v;
}

struct h_metric_want {
	int port;
	const char *series;
	double want;
	int exact; /* 1: equal to want; 0: at least want */
};

static int
h_metric_reached(void *ud)
{
	struct h_metric_want *a = ud;
	double v = h_metric(a->port, a->series);

	return a->exact ? v == a->want : v >= a->want;
}

void
h_wait_metric(int port, const char *series, double want, int timeout_ms)
{
	struct h_metric_want a = { port, series, want, 0 };

	ck_assert_msg(h_wait(timeout_ms, h_metric_reached, &a), "%s on :%d is "
	    "%g after %d ms, want at least %g", series, port,
	    h_metric(port, series), timeout_ms, want);
}

void
h_wait_metric_is(int port, const char *series, double want, int timeout_ms)
{
	struct h_metric_want a = { port, series, want, 1 };

	ck_assert_msg(h_wait(timeout_ms, h_metric_reached, &a), "%s on :%d is "
	    "%g after %d ms, want %g", series, port, h_metric(port, series),
	    timeout_ms, want);
}

void
h_mq_publish(const char *const *bodies, const char *const *ids, size_t n)
{
	h_mq_publish_at(bodies, ids, n, 0);
}

void
h_mq_publish_at(const char *const *bodies, const char *const *ids, size_t n,
    uint64_t ts)
{
	struct mq_params p;
	struct mq_msg *m;
	mq_conn *c;
	size_t i;

	h_mq_params(&p);
	c = mq_new(&p);
	m = calloc(n > 0 ? n : 1, sizeof(*m));
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(m);
	ck_assert_msg(mq_connect(c, 1) == 0, "broker: %s", mq_error(c));
	for (i = 0; i < n; i++) {
		m[i].body = bodies[i];
		m[i].len = strlen(bodies[i]);
		m[i].message_id = ids != NULL ? ids[i] : NULL;
		m[i].type = NULL;
		m[i].timestamp = ts;
	}
	ck_assert_msg(mq_publish_batch(c, "", MQ_QUEUE, m, n, 30000) == 0,
	    "publish: %s", mq_error(c));
	for (i = 0; i < n; i++)
		ck_assert_msg(m[i].result == MQ_ACKED, "message %zu not "
		    "confirmed (%d)", i, (int)m[i].result);
	free(m);
	mq_free(c);
}

int
h_mq_queue_row(const char *queue, const char *columns, char *row, size_t len)
{
	char out[8192], args[512], name[256], *line, *save = NULL;

	snprintf(args, sizeof(args), "list_queues -q --no-table-headers name "
	    "%s", columns);
	if (h_mq_ctl(args, out, sizeof(out)) != 0)
		return -1;
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%255s", name) == 1 &&
		    strcmp(name, queue) == 0) {
			snprintf(row, len, "%s", line + strlen(name));
			return 0;
		}
	}
	return -1;
}

int
h_mq_counts(const char *queue, long long *ready, long long *unacked)
{
	char row[512];

	if (h_mq_queue_row(queue, "messages_ready messages_unacknowledged",
	    row, sizeof(row)) != 0 ||
	    sscanf(row, "%lld %lld", ready, unacked) != 2)
		return -1;
	return 0;
}

static int
h_mq_drained(void *ud)
{
	long long ready, unacked;

	return h_mq_counts(ud, &ready, &unacked) == 0 && ready == 0 &&
	    unacked == 0;
}

void
h_mq_wait_drained(const char *queue, int timeout_ms)
{
	long long ready = -1, unacked = -1;

	if (h_wait(timeout_ms, h_mq_drained, (void *)(uintptr_t)queue))
		return;
	h_mq_counts(queue, &ready, &unacked);
	ck_abort_msg("queue %s not drained within %d ms: %lld ready, %lld "
	    "unacked", queue, timeout_ms, ready, unacked);
}

void
h_assert_no_phantoms(int seen, int rounds)
{
	long long ready = -1, unacked = -1;

	ck_assert_int_eq(h_mq_counts("outbox", &ready, &unacked), 0);
	ck_assert_msg(ready == 0 && unacked == 0, "queue not drained: %lld "
	    "ready, %lld unacked", ready, unacked);
	ck_assert_msg(h_count("SELECT COUNT(*) FROM processed_messages p "
	    "LEFT JOIN outbox o ON o.message_id = p.message_id "
	    "WHERE o.message_id IS NULL", NULL, 0) == 0, "the relay published "
	    "messages for outbox rows the crashes took back (the worker saw "
	    "%d of %d before the crash), and the worker applied them",
	    seen, rounds);
	ck_assert_int_eq(h_count("SELECT COUNT(*) FROM welcome_emails w "
	    "LEFT JOIN customers c ON c.id = w.customer_id WHERE c.id IS NULL",
	    NULL, 0), 0);
}
