/*
 * watchdog.h - the whole-request deadline of the HTTP API, and the close
 * of idle keep-alive connections at shutdown.
 *
 * libmicrohttpd bounds only inactivity (APP_CONN_TIMEOUT): a client that
 * sends a byte now and then holds its connection for ever.  The watchdog
 * keeps, per connection, when its current request began and closes the
 * connection (shutdown(2) of its socket; libmicrohttpd then drops it)
 * once that request is not complete APP_REQUEST_TIMEOUT after its first
 * byte, whatever the phase: request line, headers or body.  The first
 * byte of a request is seen in the kernel's count of bytes received on
 * the socket (TCP_INFO tcpi_bytes_received), read every WATCHDOG_TICK_MS:
 * the clock of a request starts at the first tick after its first byte
 * arrived; after an answer, bytes that came while it was being answered
 * start the next request's clock at once.  A complete request (being
 * answered) has no deadline here: the database side bounds its time.
 *
 * Thread-safe: libmicrohttpd's threads add, mark and remove connections,
 * the watchdog's own thread reads and closes them; a connection's socket
 * is only touched while it is in the list (libmicrohttpd closes it after
 * the remove).
 */
#ifndef OUTBOX_APP_WATCHDOG_H
#define OUTBOX_APP_WATCHDOG_H

struct watchdog;
struct wconn;

/* Starts the watchdog's thread: requests not complete within
 * request_timeout_s seconds of their first byte are cut.  NULL on
 * failure (logged).  Free with watchdog_free. */
struct watchdog *watchdog_start(int request_timeout_s);
/* Stops the thread and frees; every connection must have been removed.
 * NULL is a no-op. */
void watchdog_free(struct watchdog *w);

/* A new connection on socket fd (libmicrohttpd's "started"
 * notification); returns its state (NULL when out of memory: that
 * connection then has no deadline). */
struct wconn *watchdog_add(struct watchdog *w, int fd);
/* The connection is closing (libmicrohttpd's "closed" notification):
 * forgotten, its socket no longer touched.  c may be NULL. */
void watchdog_remove(struct watchdog *w, struct wconn *c);
/* Its current request is complete (the last call of the request
 * handler): no deadline while it is being answered. */
void watchdog_request_read(struct watchdog *w, struct wconn *c);
/* Its answer is sent (or the request ended): the next request's clock
 * starts with its first byte. */
void watchdog_request_done(struct watchdog *w, struct wconn *c);
/* Shutdown: from now on, connections with no request in progress
 * (idle keep-alive ones, and each one once its answer is sent) are
 * closed. */
void watchdog_close_idle(struct watchdog *w);

#endif
