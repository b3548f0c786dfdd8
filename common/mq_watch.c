/*
 * mq_watch.c - the watchdog of the broker calls (mq_watch.h).
 */
#include "mq_watch.h"

#include <amqp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "mq.h"

/* How often the watchdog looks. */
#define MQ_WATCH_MS 100
/* A write in progress for this long is looked at: has the broker said
 * that it blocks publishing? */
#define MQ_PEEK_AFTER_MS 300
/* AMQP 0-9-1 connection.blocked: class 10, method 60. */
#define MQ_BLOCKED_CLASS 10
#define MQ_BLOCKED_METHOD 60

static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cv = PTHREAD_COND_INITIALIZER;
static struct mq_watch *watch_head;
static pthread_t watch_thread;
static int watch_running;
static volatile sig_atomic_t *watch_stop;
static long long watch_stop_seen;

/* Looks, without taking them, at the bytes the broker sent on fd and not
 * yet read: 1 if they hold a connection.blocked frame (its reason in
 * why).  A frame is recognised by its whole shape (type 1, channel 0,
 * class and method, reason length, frame end 0xCE), wherever it starts:
 * the library may have taken the start of the stream already. */
static int
peek_blocked(int fd, char *why, size_t whylen)
{
	unsigned char buf[8192];
	ssize_t got;
	size_t i, n, size, rlen;

	got = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (got <= 0)
		return 0;
	n = (size_t)got;
	for (i = 0; i + 12 <= n; i++) {
		if (buf[i] != AMQP_FRAME_METHOD || buf[i + 1] != 0 ||
		    buf[i + 2] != 0 || buf[i + 7] != 0 ||
		    buf[i + 8] != MQ_BLOCKED_CLASS || buf[i + 9] != 0 ||
		    buf[i + 10] != MQ_BLOCKED_METHOD)
			continue;
		size = (size_t)buf[i + 3] << 24 | (size_t)buf[i + 4] << 16 |
		    (size_t)buf[i + 5] << 8 | buf[i + 6];
		rlen = buf[i + 11];
		if (size != 5 + rlen || i + 7 + size >= n ||
		    buf[i + 7 + size] != AMQP_FRAME_END)
			continue;
		snprintf(why, whylen, "%.*s", (int)rlen,
		    (const char *)buf + i + 12);
		return 1;
	}
	return 0;
}

static void *
watch_main(void *arg)
{
	struct timespec ts;
	struct mq_watch *w;
	long long now;

	(void)arg;
	pthread_mutex_lock(&watch_mu);
	while (watch_head != NULL) {
		now = clock_ms();
		if (watch_stop != NULL && *watch_stop && watch_stop_seen == 0)
			watch_stop_seen = now;
		for (w = watch_head; w != NULL; w = w->next) {
			if (w->deadline == 0 || w->fd < 0)
				continue;
			/* A broker that blocks publishing reads no more: the
			 * write would only wait for its deadline. */
			if (now >= w->began + MQ_PEEK_AFTER_MS &&
			    peek_blocked(w->fd, w->why, sizeof(w->why)))
				w->blocked = 1;
			if (w->blocked || now >= w->deadline ||
			    (watch_stop_seen != 0 &&
			    now >= watch_stop_seen + MQ_WATCH_STOP_GRACE_MS)) {
				shutdown(w->fd, SHUT_RDWR);
				w->fired = 1;
				w->deadline = 0;
			}
		}
		/* The condition variable's clock: CLOCK_REALTIME. */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += MQ_WATCH_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&watch_cv, &watch_mu, &ts);
	}
	pthread_mutex_unlock(&watch_mu);
	return NULL;
}

int
mq_watch_add(struct mq_watch *w)
{
	int rc = 0;

	pthread_mutex_lock(&watch_mu);
	w->fd = -1;
	w->deadline = 0;
	w->next = watch_head;
	watch_head = w;
	if (!watch_running) {
		if (pthread_create(&watch_thread, NULL, watch_main, NULL) == 0)
			watch_running = 1;
		else
			rc = -1;
	}
	pthread_mutex_unlock(&watch_mu);
	return rc;
}

void
mq_watch_remove(struct mq_watch *w)
{
	struct mq_watch **pp;
	int join = 0;

	pthread_mutex_lock(&watch_mu);
	for (pp = &watch_head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	if (watch_head == NULL && watch_running) {
		watch_running = 0;
		join = 1;
		pthread_cond_broadcast(&watch_cv);
	}
	pthread_mutex_unlock(&watch_mu);
	if (join)
		pthread_join(watch_thread, NULL);
}

void
mq_watch_begin(struct mq_watch *w, int fd, int timeout_ms)
{
	pthread_mutex_lock(&watch_mu);
	w->fd = fd;
	w->began = clock_ms();
	w->deadline = w->began + timeout_ms;
	w->fired = 0;
	w->blocked = 0;
	pthread_mutex_unlock(&watch_mu);
}

int
mq_watch_end(struct mq_watch *w, int *blocked, char *why, size_t whylen)
{
	int fired;

	pthread_mutex_lock(&watch_mu);
	w->deadline = 0;
	w->fd = -1;
	fired = w->fired;
	w->fired = 0;
	if (w->blocked) {
		*blocked = 1;
		snprintf(why, whylen, "%s", w->why);
		w->blocked = 0;
	}
	pthread_mutex_unlock(&watch_mu);
	return fired;
}

void
mq_watch_stop(volatile sig_atomic_t *stop)
{
	pthread_mutex_lock(&watch_mu);
	watch_stop = stop;
	watch_stop_seen = 0;
	pthread_mutex_unlock(&watch_mu);
}

int
mq_watch_stopping(void)
{
	return watch_stop != NULL && *watch_stop;
}
