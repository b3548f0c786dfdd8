/*
 * harness_worker.h - what the worker's tests share: CustomerCreated
 * messages with fresh ids, published to queue outbox; the check that
 * each had its effect exactly once; and a lock that stops the worker's
 * transaction in the middle of a batch.
 */
#ifndef OUTBOX_TEST_HARNESS_WORKER_H
#define OUTBOX_TEST_HARNESS_WORKER_H

#include "buf.h"
#include "harness.h"
#include "uid.h"

/* Most messages a test publishes. */
#define H_MAXMSG 1000

/* Test messages: CustomerCreated bodies with fresh ids. */
struct h_msgs {
	size_t n;
	char id[H_MAXMSG][UID_LEN + 1];   /* message ids */
	char cid[H_MAXMSG][UID_LEN + 1];  /* customer ids */
	char email[H_MAXMSG][64];
	struct buf payload[H_MAXMSG];
	struct buf body[H_MAXMSG];
	const char *bodies[H_MAXMSG];
	const char *ids[H_MAXMSG];
};

/* Makes n CustomerCreated messages (emails tag0@..., tag1@...), the
 * name of message poison (-1: none) being "poison". */
void h_msgs_make(struct h_msgs *m, size_t n, const char *tag, long poison);
/* Message i of m gets the id id (its body made again). */
void h_msgs_reid(struct h_msgs *m, size_t i, const char *id);
/* The welcome emails of the customer of message i of m. */
long long h_msgs_welcomes(const struct h_msgs *m, size_t i);
/* Publishes messages from..from+n-1 of m (h_mq_publish). */
void h_msgs_publish(const struct h_msgs *m, size_t from, size_t n);
/* Frees what h_msgs_make allocated; m is empty again. */
void h_msgs_free(struct h_msgs *m);
/* Every message of m has exactly its welcome mail and its
 * processed_messages row, and there are no others. */
void h_msgs_assert_exactly_once(const struct h_msgs *m);

/* The copies read back from the dead-letter queue (the first 8), for
 * h_mq_collect: fn h_dlq_collect, ud a zeroed struct h_dlq_seen. */
struct h_dlq_seen {
	int n;
	char body[8][1024];
	char reason[8][256];  /* their x-dlq-reason */
};
void h_dlq_collect(void *ud, const struct mq_delivery *d);

/* on: the database refuses the welcome mail of a customer named
 * "poison" (a trigger signals an error: "test: poison refused"), as a
 * real refusal inside the worker's transaction; off: the trigger goes. */
void h_poison_refused(int on);

/* A connection of the test's own that holds, uncommitted, the welcome
 * mail of customer cid: the worker's transaction that reaches that row
 * waits for the lock, in the middle of its batch.  Roll it back and free
 * it to let the worker go on. */
db_conn *h_lock_customer(const char *cid);
/* Counts the worker's statement stuck on such a lock. */
extern const char h_lock_wait_sql[];

#endif
