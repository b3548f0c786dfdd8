/*
 * http.c - the API's HTTP layer: routing, limits, bodies, keep-alive,
 * suspend/resume around the database pool, the access log, and the
 * orderly stop (see http.h).
 *
 * Every answer to a complete request is given on the handler's last call
 * (or after a resume from there): libmicrohttpd 0.9.75 closes the
 * connection after an answer queued on the first call (it calls it
 * "early"), so the first call only reads the headers and decides; the
 * body, if any, is read (and dropped when the answer is already known,
 * up to APP_BODY_MAX), and the answer goes on the last call, keeping the
 * connection alive.  Only a body that passes APP_BODY_MAX gets its 413 at
 * once and its connection closed.
 */
#include "http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "buf.h"
#include "cfg.h"
#include "clock.h"
#include "log.h"
#include "obs.h"
#include "app_metrics.h"
#include "uid.h"
#include "validate.h"
#include "watchdog.h"

struct http {
	const struct app_config *cfg;
	struct pool *pool;
	struct MHD_Daemon *d;
	struct watchdog *wd;
	/* The listening socket once quiesced: libmicrohttpd's threads may
	 * still look at it until MHD_stop_daemon, so it is closed only
	 * after. */
	MHD_socket lfd;
	atomic_int stopping;
	/* Requests handed to the pool whose connection is not resumed yet:
	 * MHD_stop_daemon must not run while one is suspended. */
	atomic_int waiting;
};

enum route { R_NONE, R_CUSTOMERS, R_CUSTOMER, R_HEALTHZ, R_READYZ };
/* S_HEAD: headers read, the body (if any) coming; S_WAIT: in the pool;
 * S_DONE: the pool answered, the answer goes out; S_ANSWERED: queued. */
enum rstate { S_HEAD, S_WAIT, S_DONE, S_ANSWERED };

struct req {
	struct http *h;
	struct MHD_Connection *conn;
	struct wconn *wc;
	enum route route;
	enum rstate state;
	struct timespec start;
	struct buf body;
	int keep_body;      /* the body is kept (a valid POST /customers) */
	size_t body_seen;   /* body bytes received, kept or not */
	/* An answer decided from the headers, given once the request is
	 * complete (0: none). */
	int err_status;
	const char *err_allow;
	char err_msg[160];
	struct job job;
	int status;
	char method[16];
	char path[128];
};

static enum MHD_Result
http_respond(struct req *r, int status, const char *body, size_t len,
    const char *location, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/json");
	if (location != NULL && *location != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
		    location);
	if (allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (r->job.traceparent[0] != '\0')
		MHD_add_response_header(resp, "traceparent", r->job.traceparent);
	/* Stopping: the connection ends with this answer. */
	if (atomic_load(&r->h->stopping))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
		    "close");
	ret = MHD_queue_response(r->conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	r->status = status;
	r->state = S_ANSWERED;
	return ret;
}

/* Answers {"error": "<msg>"}. */
static enum MHD_Result
http_error(struct req *r, int status, const char *allow, const char *fmt,
    ...)
{
	char msg[512], *txt;
	enum MHD_Result ret;
	va_list ap;
	json_t *o;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = json_pack("{s:s}", "error", msg);
	txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (txt != NULL)
		ret = http_respond(r, status, txt, strlen(txt), NULL, allow);
	else
		ret = http_respond(r, status, "{\"error\":\"internal error\"}",
		    26, NULL, allow);
	free(txt);
	json_decref(o);
	return ret;
}

/* A body past APP_BODY_MAX, still arriving: the 413 is written to the
 * socket at once and the connection closed (returns MHD_NO), rather than
 * reading the rest.  libmicrohttpd cannot queue an answer while a body
 * comes in, and has written nothing for this request yet. */
static enum MHD_Result
http_refuse_body(struct req *r)
{
	const union MHD_ConnectionInfo *ci;
	char body[160], msg[512];
	int n, blen;

	blen = snprintf(body, sizeof(body), "{\"error\":\"request body larger "
	    "than %d bytes\"}", r->h->cfg->body_max);
	n = snprintf(msg, sizeof(msg), "HTTP/1.1 413 Content Too Large\r\n"
	    "Connection: close\r\nContent-Type: application/json\r\n"
	    "Content-Length: %d\r\n\r\n%s", blen, body);
	ci = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL && n > 0 && (size_t)n < sizeof(msg)) {
		/* A short write on a full socket is not retried: the client
		 * sees the connection close either way. */
		(void)send(ci->connect_fd, msg, (size_t)n,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		shutdown(ci->connect_fd, SHUT_WR);
	}
	r->status = 413;
	r->state = S_ANSWERED;
	return MHD_NO;
}

/* Called from a pool thread when the job has its answer. */
static void
http_job_done(struct job *j)
{
	struct req *r = j->ud;
	struct http *h = r->h;

	r->state = S_DONE;
	MHD_resume_connection(r->conn);
	atomic_fetch_sub(&h->waiting, 1);
}

/* Hands the job to the pool; its connection waits, suspended. */
static enum MHD_Result
http_submit(struct req *r)
{
	struct http *h = r->h;

	/* Counted before the stop is looked at: http_stop sets stopping
	 * before it reads the count, so one of the two sees the other. */
	atomic_fetch_add(&h->waiting, 1);
	if (atomic_load(&h->stopping)) {
		atomic_fetch_sub(&h->waiting, 1);
		return http_error(r, 503, NULL, "shutting down");
	}
	r->job.done = http_job_done;
	r->job.ud = r;
	r->state = S_WAIT;
	/* Suspend before submitting, so a fast answer cannot resume a
	 * connection that is not suspended yet. */
	MHD_suspend_connection(r->conn);
	pool_submit(h->pool, &r->job);
	return MHD_YES;
}

static enum route
http_route(const char *url, const char **id)
{
	static const char pfx[] = "/customers/";

	*id = NULL;
	if (strcmp(url, "/customers") == 0)
		return R_CUSTOMERS;
	if (strncmp(url, pfx, sizeof(pfx) - 1) == 0) {
		*id = url + sizeof(pfx) - 1;
		return R_CUSTOMER;
	}
	if (strcmp(url, "/healthz") == 0)
		return R_HEALTHZ;
	if (strcmp(url, "/readyz") == 0)
		return R_READYZ;
	return R_NONE;
}

static int
is_get(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* Remembers the answer to give once the request is complete. */
static enum MHD_Result
http_later(struct req *r, int status, const char *allow, const char *fmt,
    ...)
{
	va_list ap;

	r->err_status = status;
	r->err_allow = allow;
	va_start(ap, fmt);
	vsnprintf(r->err_msg, sizeof(r->err_msg), fmt, ap);
	va_end(ap);
	return MHD_YES;
}

/* First call of a request: headers are in, the body (if any) is not.
 * Decides what the request is; answers only what must close the
 * connection (stopping, a body announced too large). */
static enum MHD_Result
http_begin(struct req *r, const char *url, const char *method)
{
	const char *id, *ct, *cl, *key;
	char err[256];
	int len;

	if (atomic_load(&r->h->stopping))
		return http_error(r, 503, NULL, "shutting down");
	cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL && (cfg_parse_int(cl, 0, 2147483647, &len) == -1 ||
	    len > r->h->cfg->body_max))
		return http_error(r, 413, NULL,
		    "request body larger than %d bytes",
		    r->h->cfg->body_max);
	r->route = http_route(url, &id);
	switch (r->route) {
	case R_NONE:
		return http_later(r, 404, NULL, "no such resource: %.64s",
		    url);
	case R_HEALTHZ:
	case R_READYZ:
		if (!is_get(method))
			return http_later(r, 405, "GET, HEAD",
			    "method not allowed");
		return MHD_YES;
	case R_CUSTOMER:
		if (!is_get(method))
			return http_later(r, 405, "GET, HEAD",
			    "method not allowed");
		/* Ids are stored in lower case, compared byte by byte: an
		 * upper-case id names the same customer. */
		job_init(&r->job, JOB_GET);
		if (!uid_canonical(id, strlen(id), r->job.id))
			return http_later(r, 404, NULL, "customer not found");
		return MHD_YES;
	case R_CUSTOMERS:
		break;
	}
	if (strcmp(method, "POST") != 0)
		return http_later(r, 405, "POST", "method not allowed");
	ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!validate_json_content_type(ct))
		return http_later(r, 415, NULL,
		    "Content-Type must be application/json");
	job_init(&r->job, JOB_CREATE);
	/* Our span, in the caller's trace when it sent a valid traceparent
	 * (an invalid one is ignored, as the W3C spec asks). */
	trace_child(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    "traceparent"), r->job.traceparent);
	key = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    "Idempotency-Key");
	if (key != NULL) {
		if (validate_idem_key(key, strlen(key), err, sizeof(err)) == -1)
			return http_later(r, 400, NULL, "%s", err);
		memcpy(r->job.idem_key, key, strlen(key) + 1);
	}
	buf_init(&r->body, (size_t)r->h->cfg->body_max);
	r->keep_body = 1;
	return MHD_YES;
}

/* Last call of a request: it is complete; answer it or hand it to the
 * pool. */
static enum MHD_Result
http_complete(struct req *r)
{
	struct http *h = r->h;
	char err[512];
	int st;

	watchdog_request_read(h->wd, r->wc);
	if (atomic_load(&h->stopping))
		return http_error(r, 503, NULL, "shutting down");
	if (r->err_status != 0)
		return http_error(r, r->err_status, r->err_allow, "%s",
		    r->err_msg);
	switch (r->route) {
	case R_HEALTHZ:
		return http_respond(r, 200, "{\"status\":\"ok\"}", 15, NULL,
		    NULL);
	case R_READYZ:
		job_init(&r->job, JOB_PING);
		return http_submit(r);
	case R_CUSTOMER:
		return http_submit(r);
	case R_CUSTOMERS:
		st = validate_customer_body(r->body.data ? r->body.data : "",
		    r->body.len, &r->job.req, err, sizeof(err));
		buf_free(&r->body);
		if (st != 0)
			return http_error(r, st, NULL, "%s", err);
		return http_submit(r);
	case R_NONE:
		break;
	}
	return http_error(r, 500, NULL, "internal error");
}

static enum MHD_Result
http_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	const union MHD_ConnectionInfo *ci;
	struct http *h = cls;
	struct req *r = *con_cls;

	(void)version;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		r->h = h;
		r->conn = conn;
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		r->wc = ci != NULL ? ci->socket_context : NULL;
		clock_gettime(CLOCK_MONOTONIC, &r->start);
		snprintf(r->method, sizeof(r->method), "%s", method);
		snprintf(r->path, sizeof(r->path), "%s", url);
		buf_init(&r->body, 0);
		*con_cls = r;
		return http_begin(r, url, method);
	}
	switch (r->state) {
	case S_HEAD:
		if (*upload_data_size == 0)
			return http_complete(r);
		r->body_seen += *upload_data_size;
		if (r->body_seen > (size_t)h->cfg->body_max)
			return http_refuse_body(r);
		if (r->keep_body && buf_append(&r->body, upload_data,
		    *upload_data_size) == -1)
			return http_refuse_body(r);
		*upload_data_size = 0;
		return MHD_YES;
	case S_DONE:
		return http_respond(r, r->job.status, r->job.body.data ?
		    r->job.body.data : "", r->job.body.len,
		    r->job.status == 201 ? r->job.location : NULL, NULL);
	case S_ANSWERED:
		/* A body arriving after an early answer (413 announced,
		 * stopping) is dropped. */
		*upload_data_size = 0;
		return MHD_YES;
	case S_WAIT:
		break;
	}
	log_warnx("http: request in unexpected state %d", (int)r->state);
	return MHD_NO;
}

static void
http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	static const enum app_route routes[] = {
		[R_NONE] = ROUTE_OTHER, [R_CUSTOMERS] = ROUTE_CUSTOMERS,
		[R_CUSTOMER] = ROUTE_CUSTOMER, [R_HEALTHZ] = ROUTE_HEALTHZ,
		[R_READYZ] = ROUTE_READYZ,
	};
	const union MHD_ConnectionInfo *ci;
	struct http *h = cls;
	struct req *r = *con_cls;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci != NULL)
		watchdog_request_done(h->wd, ci->socket_context);
	if (r == NULL)
		return;
	app_metrics_request(routes[r->route], r->status,
	    clock_ms_since(&r->start) / 1e3);
	/* The path comes from the client: log.c escapes what could forge a
	 * line. */
	if (h->cfg->access_log) {
		if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
			log_info("%d - %.3fms %s %s", r->status,
			    clock_ms_since(&r->start), r->method, r->path);
		else
			log_info("%d - %.3fms %s %s (connection closed: %d)",
			    r->status, clock_ms_since(&r->start), r->method, r->path,
			    (int)toe);
	}
	buf_free(&r->body);
	job_clear(&r->job);
	free(r);
	*con_cls = NULL;
}

/* libmicrohttpd's connection notifications: the watchdog's list. */
static void
http_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	struct http *h = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci != NULL ?
		    watchdog_add(h->wd, ci->connect_fd) : NULL;
	} else {
		watchdog_remove(h->wd, *socket_context);
		*socket_context = NULL;
	}
}

struct http *
http_start(const struct app_config *cfg, struct pool *pool)
{
	struct sockaddr_in sa;
	struct http *h;
	unsigned flags;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)cfg->port);
	if (inet_pton(AF_INET, cfg->bind, &sa.sin_addr) != 1) {
		log_warnx("APP_BIND: not an IPv4 address: %s", cfg->bind);
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->cfg = cfg;
	h->pool = pool;
	h->lfd = MHD_INVALID_SOCKET;
	atomic_init(&h->stopping, 0);
	atomic_init(&h->waiting, 0);
	if ((h->wd = watchdog_start(cfg->request_timeout_s)) == NULL) {
		free(h);
		return NULL;
	}
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	{
		/* The thread-pool option is given only for a pool: MHD warns
		 * about a size of 0 or 1. */
		struct MHD_OptionItem threads[] = {
			{ MHD_OPTION_THREAD_POOL_SIZE,
			    (intptr_t)cfg->http_threads, NULL },
			{ MHD_OPTION_END, 0, NULL },
		};

		if (cfg->http_threads <= 1)
			threads[0].option = MHD_OPTION_END;
		h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL,
		    http_handler, h,
		    MHD_OPTION_EXTERNAL_LOGGER, obs_mhd_log, "http",
		    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		    MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned)cfg->max_connections,
		    MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned)cfg->conn_timeout_s,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		    (size_t)cfg->conn_memory_kib * 1024,
		    MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		    MHD_OPTION_NOTIFY_COMPLETED, http_completed, h,
		    MHD_OPTION_NOTIFY_CONNECTION, http_notify, h,
		    MHD_OPTION_ARRAY, threads,
		    MHD_OPTION_END);
	}
	if (h->d == NULL) {
		log_warnx("http: cannot listen on %s:%d", cfg->bind,
		    cfg->port);
		watchdog_free(h->wd);
		free(h);
		return NULL;
	}
	log_info("listening on %s:%d", cfg->bind, cfg->port);
	return h;
}

static unsigned
http_connections(struct http *h)
{
	const union MHD_DaemonInfo *info;

	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return info != NULL ? info->num_connections : 0;
}

/* Waits until cond(h) is false or the deadline (clock_ms) passes. */
static void
http_wait(struct http *h, int (*cond)(struct http *), long long deadline)
{
	while (cond(h) && clock_ms() < deadline)
		backoff_sleep(10, NULL);
}

static int
http_has_waiting(struct http *h)
{
	return atomic_load(&h->waiting) > 0;
}

static int
http_has_connections(struct http *h)
{
	return http_connections(h) > 0;
}

int
http_stop(struct http *h)
{
	long long t0 = clock_ms(), deadline, abort_at, hard;
	int timeout_ms, left;

	if (h == NULL)
		return 0;
	timeout_ms = h->cfg->shutdown_timeout_s * 1000;
	deadline = t0 + timeout_ms;
	/* What the database has not finished by then is rolled back, with
	 * a quarter of the time (at most 3 s) left to do it and answer. */
	abort_at = deadline - (timeout_ms / 4 < 3000 ? timeout_ms / 4 : 3000);
	/* Every request from now on is answered 503 (Connection: close);
	 * set before the count of waiting requests is read (http_submit). */
	atomic_store(&h->stopping, 1);
	/* No new connection: the listening socket leaves libmicrohttpd and
	 * stops listening at once (connections the kernel had completed are
	 * reset), but stays open until MHD_stop_daemon, which may still
	 * look at it from its threads. */
	h->lfd = MHD_quiesce_daemon(h->d);
	if (h->lfd != MHD_INVALID_SOCKET)
		shutdown(h->lfd, SHUT_RDWR);
	watchdog_close_idle(h->wd);
	http_wait(h, http_has_waiting, abort_at);
	if ((left = atomic_load(&h->waiting)) > 0) {
		log_warnx("shutdown: %d requests still waiting for the "
		    "database after %lld ms: rolling them back", left,
		    clock_ms() - t0);
		pool_abort(h->pool);
		/* pool_abort answered them all, unless the database hangs
		 * beyond its own timeouts. */
		hard = clock_ms() + (long long)(h->cfg->db.io_timeout_s +
		    h->cfg->db.connect_timeout_s) * 1000;
		http_wait(h, http_has_waiting, hard);
		if ((left = atomic_load(&h->waiting)) > 0) {
			/* MHD_stop_daemon would abort with a suspended
			 * connection: leave without it. */
			log_warnx("shutdown: %d requests never got an answer "
			    "from the database", left);
			return -1;
		}
	}
	/* The answers go out; their connections close (Connection: close),
	 * idle ones were closed. */
	http_wait(h, http_has_connections, deadline);
	if (http_connections(h) > 0)
		log_info("shutdown: closing %u connections", http_connections(h));
	MHD_stop_daemon(h->d);
	if (h->lfd != MHD_INVALID_SOCKET)
		close(h->lfd);
	watchdog_free(h->wd);
	log_info("http stopped after %lld ms", clock_ms() - t0);
	free(h);
	return 0;
}
