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
/* Stops accepting connections, lets requests in flight finish, closes
 * everything.  The pool must still be running.  NULL is a no-op. */
void http_stop(struct http *h);

#endif
