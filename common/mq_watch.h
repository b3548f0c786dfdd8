/*
 * mq_watch.h - deadlines on the broker calls of common/mq.c.
 *
 * rabbitmq-c writes without a deadline: a broker that stops reading (a
 * memory or disk alarm blocks publishing connections) keeps a publish or
 * an ack in send() for ever, and heartbeats do not help (the broker stops
 * watching them on a blocked connection).  mq.c brackets every call that
 * writes with mq_watch_begin/mq_watch_end; a watchdog thread shuts the
 * socket of a call past its deadline down, which makes the call fail and
 * the connection close.  It does so at once when the bytes the broker
 * sent and nobody read yet hold connection.blocked: the broker will read
 * no more.  Once the process was asked to stop (mq_watch_stop), every
 * call in progress gets at most MQ_WATCH_STOP_GRACE_MS more.  The thread
 * runs while some watch is registered.
 */
#ifndef OUTBOX_MQ_WATCH_H
#define OUTBOX_MQ_WATCH_H

#include <signal.h>
#include <stddef.h>

/* After a stop request, what every call may still take. */
#define MQ_WATCH_STOP_GRACE_MS 1000

/* One connection's watch; its fields belong to mq_watch.c (under its
 * lock). */
struct mq_watch {
	int fd;             /* the socket of the call in progress, or -1 */
	long long began;    /* when it began (clock_ms) */
	long long deadline; /* 0: no call in progress */
	int fired;          /* the watchdog cut it */
	int blocked;        /* the watchdog saw connection.blocked */
	char why[128];      /* the broker's reason for it */
	struct mq_watch *next;
};

/* Registers w (zeroed or ended) and starts the thread if it is not
 * running.  0, or -1 when the thread cannot start. */
int mq_watch_add(struct mq_watch *w);
/* Unregisters w; the thread ends with the last watch. */
void mq_watch_remove(struct mq_watch *w);
/* A call that may write starts on socket fd: the watchdog cuts it after
 * timeout_ms. */
void mq_watch_begin(struct mq_watch *w, int fd, int timeout_ms);
/* The call is over.  Returns 1 when the watchdog cut it short; *blocked
 * is set to 1 (and why to the broker's reason) when it saw
 * connection.blocked meanwhile, else left alone. */
int mq_watch_end(struct mq_watch *w, int *blocked, char *why,
    size_t whylen);
/* 1 once the process was asked to stop (mq_watch_stop, in mq.h). */
int mq_watch_stopping(void);

#endif
