/*
 * http.c - the API's HTTP layer.
 */
#include "http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "backoff.h"
#include "buf.h"
#include "cfg.h"
#include "clock.h"
#include "log.h"
#include "obs.h"
#include "app_metrics.h"
#include "uid.h"
#include "validate.h"

/* How long shutdown waits for idle keep-alive clients to leave. */
#define HTTP_DRAIN_MS 1000

struct http {
	const struct app_config *cfg;
	struct pool *pool;
	struct MHD_Daemon *d;
};

enum route { R_NONE, R_CUSTOMERS, R_CUSTOMER, R_HEALTHZ, R_READYZ };
enum rstate { S_NEW, S_BODY, S_WAIT, S_DONE, S_ANSWERED };

struct req {
	struct http *h;
	struct MHD_Connection *conn;
	enum route route;
	volatile enum rstate state;
	struct timespec start;
	struct buf body;
	int too_large;
	struct job job;
	int has_job;
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

/* Called from a pool thread when the job has its answer. */
static void
http_job_done(struct job *j)
{
	struct req *r = j->ud;

	r->state = S_DONE;
	MHD_resume_connection(r->conn);
}

static void
http_submit(struct req *r)
{
	r->job.done = http_job_done;
	r->job.ud = r;
	r->has_job = 1;
	r->state = S_WAIT;
	/* Suspend before submitting, so a fast answer cannot resume a
	 * connection that is not suspended yet. */
	MHD_suspend_connection(r->conn);
	pool_submit(r->h->pool, &r->job);
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

/* First call of a request: headers are in, the body (if any) is not. */
static enum MHD_Result
http_begin(struct req *r, const char *url, const char *method)
{
	const char *id, *ct, *cl, *key;
	char err[256];
	int len;

	r->route = http_route(url, &id);
	switch (r->route) {
	case R_NONE:
		return http_error(r, 404, NULL, "no such resource: %.64s",
		    url);
	case R_HEALTHZ:
		if (!is_get(method))
			return http_error(r, 405, "GET, HEAD",
			    "method not allowed");
		return http_respond(r, 200, "{\"status\":\"ok\"}", 15, NULL,
		    NULL);
	case R_READYZ:
		if (!is_get(method))
			return http_error(r, 405, "GET, HEAD",
			    "method not allowed");
		job_init(&r->job, JOB_PING);
		http_submit(r);
		return MHD_YES;
	case R_CUSTOMER:
		if (!is_get(method))
			return http_error(r, 405, "GET, HEAD",
			    "method not allowed");
		if (!uid_valid(id, strlen(id)))
			return http_error(r, 404, NULL, "customer not found");
		job_init(&r->job, JOB_GET);
		memcpy(r->job.id, id, UID_LEN + 1);
		http_submit(r);
		return MHD_YES;
	case R_CUSTOMERS:
		break;
	}
	if (strcmp(method, "POST") != 0)
		return http_error(r, 405, "POST", "method not allowed");
	ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!validate_json_content_type(ct))
		return http_error(r, 415, NULL,
		    "Content-Type must be application/json");
	cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL && (cfg_parse_int(cl, 0, 2147483647, &len) == -1 ||
	    len > r->h->cfg->body_max))
		return http_error(r, 413, NULL,
		    "request body larger than %d bytes",
		    r->h->cfg->body_max);
	job_init(&r->job, JOB_CREATE);
	/* Our span, in the caller's trace when it sent a valid traceparent
	 * (an invalid one is ignored, as the W3C spec asks). */
	trace_child(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    "traceparent"), r->job.traceparent);
	key = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    "Idempotency-Key");
	if (key != NULL) {
		if (validate_idem_key(key, strlen(key), err, sizeof(err)) == -1)
			return http_error(r, 400, NULL, "%s", err);
		memcpy(r->job.idem_key, key, strlen(key) + 1);
	}
	buf_init(&r->body, (size_t)r->h->cfg->body_max);
	r->state = S_BODY;
	return MHD_YES;
}

static enum MHD_Result
http_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http *h = cls;
	struct req *r = *con_cls;
	char err[512];
	int st;

	(void)version;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		r->h = h;
		r->conn = conn;
		clock_gettime(CLOCK_MONOTONIC, &r->start);
		snprintf(r->method, sizeof(r->method), "%s", method);
		snprintf(r->path, sizeof(r->path), "%s", url);
		buf_init(&r->body, 0);
		*con_cls = r;
		return http_begin(r, url, method);
	}
	switch (r->state) {
	case S_BODY:
		if (*upload_data_size > 0) {
			if (!r->too_large && buf_append(&r->body, upload_data,
			    *upload_data_size) == -1)
				r->too_large = 1;
			*upload_data_size = 0;
			return MHD_YES;
		}
		if (r->too_large)
			return http_error(r, 413, NULL,
			    "request body larger than %d bytes",
			    h->cfg->body_max);
		st = validate_customer_body(r->body.data ? r->body.data : "",
		    r->body.len, &r->job.req, err, sizeof(err));
		buf_free(&r->body);
		if (st != 0)
			return http_error(r, st, NULL, "%s", err);
		http_submit(r);
		return MHD_YES;
	case S_DONE:
		return http_respond(r, r->job.status, r->job.body.data ?
		    r->job.body.data : "", r->job.body.len,
		    r->job.status == 201 ? r->job.location : NULL, NULL);
	case S_ANSWERED:
		/* A body arriving after an early answer (413, 415) is read
		 * and dropped. */
		*upload_data_size = 0;
		return MHD_YES;
	case S_NEW:
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
	struct http *h = cls;
	struct req *r = *con_cls;

	(void)conn;
	static const enum app_route routes[] = {
		[R_NONE] = ROUTE_OTHER, [R_CUSTOMERS] = ROUTE_CUSTOMERS,
		[R_CUSTOMER] = ROUTE_CUSTOMER, [R_HEALTHZ] = ROUTE_HEALTHZ,
		[R_READYZ] = ROUTE_READYZ,
	};

	if (r == NULL)
		return;
	app_metrics_request(routes[r->route], r->status,
	    clock_ms_since(&r->start) / 1e3);
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
		    MHD_OPTION_ARRAY, threads,
		    MHD_OPTION_END);
	}
	if (h->d == NULL) {
		log_warnx("http: cannot listen on %s:%d", cfg->bind,
		    cfg->port);
		free(h);
		return NULL;
	}
	log_info("listening on %s:%d", cfg->bind, cfg->port);
	return h;
}

void
http_stop(struct http *h)
{
	const union MHD_DaemonInfo *info;
	unsigned waited = 0;

	if (h == NULL)
		return;
	MHD_quiesce_daemon(h->d);
	/* Requests in the pool get their answers (the pool finishes
	 * them); then idle keep-alive clients get a moment to leave. */
	while (pool_pending(h->pool) > 0)
		backoff_sleep(10, NULL);
	while (waited < HTTP_DRAIN_MS) {
		info = MHD_get_daemon_info(h->d,
		    MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (info == NULL || info->num_connections == 0)
			break;
		backoff_sleep(10, NULL);
		waited += 10;
	}
	MHD_stop_daemon(h->d);
	free(h);
}
