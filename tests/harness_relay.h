/*
 * harness_relay.h - what the relay's tests share: numbered outbox rows,
 * their counts, waiting until they are published, and a queue read back
 * to check that every row reached it.
 *
 * Rows are inserted with SQL (MariaDB's sequence tables make 20,000 rows
 * one statement); message ids are H_ID_PREFIX + a 12-digit index, so that
 * a message read back tells which row it came from.
 */
#ifndef OUTBOX_TEST_HARNESS_RELAY_H
#define OUTBOX_TEST_HARNESS_RELAY_H

#include "harness.h"

#define H_ID_PREFIX "00000000-0000-4000-8000-"
#define H_EVENT "CustomerCreated"

/* Empties the outbox, the binlog position and the queues (a checked
 * fixture). */
void h_rows_reset(void);
/* Inserts rows first..first+count-1 (message id H_ID_PREFIX + index, a
 * customer payload), committed together. */
void h_rows_insert(long long first, long long count);
/* The same on the connection c (another thread's), without failing the
 * test: 0, or -1 when the insert failed or did not insert count rows
 * (db_error(c) says why). */
int h_rows_insert_on(db_conn *c, long long first, long long count);
/* Row 0 (message id H_ID_PREFIX + 0), committed alone: a customer
 * payload whose name is bytes characters long. */
void h_rows_insert_big(long long bytes);
/* For h_wait: 1 when row 0 is parked. */
int h_rows_big_parked(void *ud);
long long h_rows_unpublished(void);
long long h_rows_published(void);
/* Waits up to timeout_ms until at least n rows are published; fails the
 * test otherwise. */
void h_rows_wait_published(long long n, int timeout_ms);
/* Waits up to timeout_ms until no row is left unpublished; fails the
 * test otherwise. */
void h_rows_wait_all_published(int timeout_ms);

/* How many times each index 1..n came, and how many other messages. */
struct h_seen {
	long long n;
	unsigned *count; /* malloc'd: h_seen_free */
	long long other;
};

void h_seen_init(struct h_seen *s, long long n);
void h_seen_free(struct h_seen *s);
/* For h_mq_collect: counts the delivery d in the h_seen ud. */
void h_seen_fn(void *ud, const struct mq_delivery *d);

/* Reads every message of queue (its depth: nothing may be publishing)
 * and checks that each index 1..n came at least once; returns the
 * duplicates. */
long long h_rows_check_queue(const char *queue, long long n);

#endif
