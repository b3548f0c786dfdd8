/*
 * obs.c - /metrics, /healthz and /readyz on libmicrohttpd.
 */
#include "obs.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"

struct obs {
	struct MHD_Daemon *d;
	int (*ready)(void *);
	void *ud;
};

static enum MHD_Result
obs_reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
    const char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (status == 405)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* A small JSON answer; its length from the text, never by hand. */
static enum MHD_Result
obs_json(struct MHD_Connection *conn, unsigned status, const char *body)
{
	return obs_reply(conn, status, "application/json", body,
	    strlen(body));
}

static enum MHD_Result
obs_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct obs *o = cls;
	struct buf b;
	enum MHD_Result ret;
	int known;

	(void)version;
	(void)upload_data;
	if (*con_cls == NULL) {
		*con_cls = o; /* headers first; answer on the next call */
		return MHD_YES;
	}
	*upload_data_size = 0;
	known = strcmp(url, "/metrics") == 0 || strcmp(url, "/healthz") == 0 ||
	    strcmp(url, "/readyz") == 0;
	if (!known)
		return obs_json(conn, 404, "{\"error\":\"no such resource\"}");
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return obs_json(conn, 405,
		    "{\"error\":\"method not allowed\"}");
	if (strcmp(url, "/healthz") == 0)
		return obs_json(conn, 200, "{\"status\":\"ok\"}");
	if (strcmp(url, "/readyz") == 0) {
		if (o->ready == NULL || o->ready(o->ud))
			return obs_json(conn, 200, "{\"status\":\"ready\"}");
		return obs_json(conn, 503, "{\"error\":\"not ready\"}");
	}
	buf_init(&b, 4 * 1024 * 1024);
	if (metrics_render(&b) == -1) {
		buf_free(&b);
		return obs_json(conn, 500, "{\"error\":\"internal error\"}");
	}
	ret = obs_reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8",
	    b.data ? b.data : "", b.len);
	buf_free(&b);
	return ret;
}

void
obs_mhd_log(void *cls, const char *fmt, va_list ap)
{
	const char *who = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_warnx("%s: %s", who, msg);
}

struct obs *
obs_start(const char *bind, int port, int (*ready)(void *), void *ud)
{
	struct sockaddr_in sa;
	struct obs *o;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, bind, &sa.sin_addr) != 1) {
		log_warnx("metrics listener: not an IPv4 address: %s", bind);
		return NULL;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return NULL;
	o->ready = ready;
	o->ud = ud;
	o->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, obs_handler, o,
	    MHD_OPTION_EXTERNAL_LOGGER, obs_mhd_log, "metrics listener",
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_CONNECTION_LIMIT, 64u,
	    MHD_OPTION_CONNECTION_TIMEOUT, 10u,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
	    MHD_OPTION_END);
	if (o->d == NULL) {
		log_warnx("metrics listener: cannot listen on %s:%d", bind,
		    port);
		free(o);
		return NULL;
	}
	log_info("metrics, health and readiness on %s:%d", bind, port);
	return o;
}

void
obs_stop(struct obs *o)
{
	if (o == NULL)
		return;
	MHD_stop_daemon(o->d);
	free(o);
}
