/*
 * watchdog.c - the whole-request deadline and the close of idle
 * connections at shutdown (see watchdog.h).
 */
#include "watchdog.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "app_metrics.h"
#include "backoff.h"
#include "clock.h"
#include "log.h"

/* How often the connections are looked at: a request is cut at most this
 * long after its deadline. */
#define WATCHDOG_TICK_MS 100

struct wconn {
	struct wconn *prev, *next;
	int fd;
	long long started_ms; /* its request's first byte; 0: none seen */
	uint64_t seen;        /* bytes received when the last answer went */
	uint64_t read_at;     /* bytes received when the request was read */
	int busy;             /* the request is complete, being answered */
	int closed;           /* shut down by us */
};

struct watchdog {
	pthread_mutex_t mu;
	struct wconn *head;
	long long timeout_ms;
	int close_idle;
	volatile sig_atomic_t stop;
	pthread_t th;
};

/* Bytes the kernel received on fd so far, or 0 when it cannot say. */
static uint64_t
bytes_received(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return 0;
	return ti.tcpi_bytes_received;
}

/* Ends the connection: libmicrohttpd sees the socket closed at its next
 * read or write and drops it (its socket stays open until then). */
static void
wconn_close(struct wconn *c)
{
	shutdown(c->fd, SHUT_RDWR);
	c->closed = 1;
}

/* One look at one connection (under the lock). */
static void
wconn_check(struct watchdog *w, struct wconn *c, long long now)
{
	if (c->busy || c->closed)
		return;
	if (c->started_ms == 0 && bytes_received(c->fd) > c->seen)
		c->started_ms = now;
	if (c->started_ms == 0) {
		if (w->close_idle)
			wconn_close(c);
		return;
	}
	if (now - c->started_ms >= w->timeout_ms) {
		wconn_close(c);
		app_metrics_request_cut();
		log_debug("http: a request not complete %lld ms after its "
		    "first byte: connection closed", now - c->started_ms);
	}
}

static void *
watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	struct wconn *c;
	long long now;

	while (!w->stop) {
		backoff_sleep(WATCHDOG_TICK_MS, &w->stop);
		now = clock_ms();
		pthread_mutex_lock(&w->mu);
		for (c = w->head; c != NULL; c = c->next)
			wconn_check(w, c, now);
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

struct watchdog *
watchdog_start(int request_timeout_s)
{
	struct watchdog *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		log_warnx("http watchdog: out of memory");
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	w->timeout_ms = (long long)request_timeout_s * 1000;
	if (pthread_create(&w->th, NULL, watchdog_main, w) != 0) {
		log_warnx("http watchdog: cannot start its thread");
		pthread_mutex_destroy(&w->mu);
		free(w);
		return NULL;
	}
	return w;
}

void
watchdog_free(struct watchdog *w)
{
	if (w == NULL)
		return;
	w->stop = 1;
	pthread_join(w->th, NULL);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

struct wconn *
watchdog_add(struct watchdog *w, int fd)
{
	struct wconn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->fd = fd;
	pthread_mutex_lock(&w->mu);
	c->next = w->head;
	if (w->head != NULL)
		w->head->prev = c;
	w->head = c;
	pthread_mutex_unlock(&w->mu);
	return c;
}

void
watchdog_remove(struct watchdog *w, struct wconn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&w->mu);
	free(c);
}

void
watchdog_request_read(struct watchdog *w, struct wconn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	c->busy = 1;
	c->read_at = bytes_received(c->fd);
	pthread_mutex_unlock(&w->mu);
}

void
watchdog_request_done(struct watchdog *w, struct wconn *c)
{
	uint64_t now_bytes;

	if (c == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	now_bytes = bytes_received(c->fd);
	/* Bytes that came while the answer was being made belong to the
	 * next request: its clock starts now. */
	c->started_ms = c->busy && now_bytes > c->read_at ? clock_ms() : 0;
	c->seen = now_bytes;
	c->busy = 0;
	pthread_mutex_unlock(&w->mu);
}

void
watchdog_close_idle(struct watchdog *w)
{
	struct wconn *c;
	long long now = clock_ms();

	pthread_mutex_lock(&w->mu);
	w->close_idle = 1;
	for (c = w->head; c != NULL; c = c->next)
		wconn_check(w, c, now);
	pthread_mutex_unlock(&w->mu);
}
