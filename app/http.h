/*
 * http.h - the HTTP API on libmicrohttpd: routing, limits, request bodies,
 * responses, access log.  Database work goes to the pool; a connection
 * waiting for it is suspended, so no client ever blocks the event loop.
 */
#ifndef OUTBOX_APP_HTTP_H
#define OUTBOX_APP_HTTP_H

#include "config.h"
#include "pool.h"

struct http;

/* Listens and serves in background threads.  NULL on failure (logged). */
struct http *http_start(const struct app_config *cfg, struct pool *pool);
/* The orderly stop, within APP_SHUTDOWN_TIMEOUT: no new connection from
 * now on (the listening socket stops listening at once); requests
 * already read are answered; later requests on kept-alive connections
 * get 503 with Connection: close, idle connections are closed; requests
 * whose transaction the database has not finished at three quarters of
 * the timeout (at most 3 s before it) are rolled back and answered
 * (pool_abort); then everything is closed and freed.  The pool must
 * still be running.  Returns 0, or -1 when requests were left without
 * an answer (the database hung beyond its own timeouts): then the HTTP
 * server is left running and not freed, and the process must exit.
 * NULL is a no-op. */
int http_stop(struct http *h);

#endif
