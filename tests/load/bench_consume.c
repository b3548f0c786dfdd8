/*
 * bench_consume.c - the raw reference figure for the worker: how fast a
 * plain rabbitmq-c consumer drains queued messages from the same broker
 * with the same prefetch and multiple-acks, doing no application work.
 * The raw drain talks to <amqp.h> directly on purpose (no mq.c, no
 * decoding, no database); the worker's drain rate is compared with it.
 *
 *   outbox-bench-consume raw [count [prefetch [ack_every]]]
 *       Declares a scratch durable queue "bench.consume.<pid>", fills it
 *       with count persistent CustomerCreated messages (the bodies the
 *       relay sends, ~330 B), then drains it: basic.qos prefetch, one
 *       multiple-ack every ack_every deliveries (and at the end).  Prints
 *         raw consume: <count> msgs in <s> s = <rate> msg/s (..., <queue>
 *         on <host:port>)
 *       and deletes the queue.  Defaults 100000, 2000, 500 (the worker's
 *       WORKER_PREFETCH and WORKER_BATCH_MAX defaults).
 *   outbox-bench-consume fill [count]
 *       Publishes count such messages (unique ids) to queue outbox, with
 *       confirms, for the worker to drain.  Default 100000.
 *   outbox-bench-consume drain [count [prefetch [ack_every]]]
 *       The raw drain of "raw" on queue outbox itself (fill it first, and
 *       stop the worker): the same queue and messages the worker drains.
 *   outbox-bench-consume declare
 *       Declares the daemons' topology (mq_declare_topology: queues
 *       outbox and outbox.dlq of RABBITMQ_QUEUE_TYPE) through the first
 *       broker that answers, as a daemon's first start would: a quorum
 *       queue's leader is then that node.
 *   outbox-bench-consume wait [count [timeout_s [above]]]
 *       Waits until processed_messages holds count rows (default 100000,
 *       timeout 600 s) with a message id above `above` (default: all;
 *       with history in the table, a version-7 id of the drain's start
 *       counts the drain's rows through the primary key, never a scan of
 *       the history), then prints the worker's drain rate from the first
 *       to the last processed_at:
 *         worker drain: <count> msgs in <s> s = <rate> msg/s
 *
 * Servers from DB_* and RABBITMQ_* (scripts/env.sh sets them); the
 * brokers of RABBITMQ_HOSTS (else RABBITMQ_HOST:RABBITMQ_PORT) tried in
 * their order, the first that answers used, as the daemons do (the raw
 * drain's line names it).  Exits 1 on any error.  Not part of `make test`: `make bench-consume` builds it.
 */
#include <amqp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "buf.h"
#include "cfg.h"
#include "clock.h"
#include "db.h"
#include "mq.h"
#include "msg.h"
#include "rawamqp.h"
#include "timefmt.h"
#include "uid.h"

/* Messages per confirmed publish batch while filling. */
#define FILL_CHUNK 1000
/* The drains' window unless given: the worker's WORKER_PREFETCH and
 * WORKER_BATCH_MAX defaults (worker/config.c). */
#define RAW_PREFETCH 2000
#define RAW_ACK_EVERY 500

struct bench_cfg {
	struct db_params db;
	struct mq_params mq;
};

#define T struct bench_cfg
static const struct cfg_opt bench_opts[] = {
	DB_CFG_ROWS(T, db),
	MQ_CFG_ROWS(T, mq),
};
#undef T

/* Publishes count CustomerCreated messages to queue (default exchange),
 * FILL_CHUNK at a time with confirms.  0 or -1. */
static int
fill(const struct mq_params *p, const char *queue, int count)
{
	struct mq_msg *msgs;
	struct buf *bodies;
	char (*ids)[UID_LEN + 1];
	struct customer c;
	struct timespec ts;
	struct buf pl;
	mq_conn *mq;
	int done = 0, k, i, ret = -1;
	char mail[64];

	mq = mq_new(p);
	msgs = calloc(FILL_CHUNK, sizeof(*msgs));
	bodies = calloc(FILL_CHUNK, sizeof(*bodies));
	ids = calloc(FILL_CHUNK, sizeof(*ids));
	if (mq == NULL || msgs == NULL || bodies == NULL || ids == NULL)
		goto out;
	if (mq_connect(mq, 1) == -1 || mq_declare_topology(mq) == -1) {
		fprintf(stderr, "bench: %s\n", mq_error(mq));
		goto out;
	}
	for (i = 0; i < FILL_CHUNK; i++)
		buf_init(&bodies[i], 4096);
	buf_init(&pl, 4096);
	timefmt_now(&ts);
	while (done < count) {
		k = count - done < FILL_CHUNK ? count - done : FILL_CHUNK;
		for (i = 0; i < k; i++) {
			memset(&c, 0, sizeof(c));
			uid_new(c.id);
			uid_new(ids[i]);
			snprintf(mail, sizeof(mail), "bench%d@example.com",
			    done + i);
			c.email = mail;
			c.name = "Bench Customer";
			timefmt_rfc3339(&ts, c.created_at, sizeof(c.created_at));
			timefmt_rfc3339(&ts, c.updated_at, sizeof(c.updated_at));
			buf_reset(&pl);
			buf_reset(&bodies[i]);
			if (msg_customer_json(&c, &pl) == -1 ||
			    msg_event_body(ids[i], MSG_EVENT_CUSTOMER_CREATED,
			    pl.data, pl.len, &bodies[i]) == -1)
				goto out_bufs;
			memset(&msgs[i], 0, sizeof(msgs[i]));
			msgs[i].body = bodies[i].data;
			msgs[i].len = bodies[i].len;
			msgs[i].message_id = ids[i];
			msgs[i].type = MSG_EVENT_CUSTOMER_CREATED;
			msgs[i].seq = done + i + 1;
		}
		if (mq_publish_batch(mq, "", queue, msgs, (size_t)k,
		    30000) == -1) {
			fprintf(stderr, "bench: publish: %s\n", mq_error(mq));
			goto out_bufs;
		}
		for (i = 0; i < k; i++) {
			if (msgs[i].result != MQ_ACKED) {
				fprintf(stderr, "bench: message not confirmed\n");
				goto out_bufs;
			}
		}
		done += k;
	}
	ret = 0;
out_bufs:
	for (i = 0; i < FILL_CHUNK; i++)
		buf_free(&bodies[i]);
	buf_free(&pl);
out:
	mq_free(mq);
	free(msgs);
	free(bodies);
	free(ids);
	return ret;
}

/* Drains count messages of queue with the raw library.  0 or -1. */
static int
drain_raw(const struct mq_params *p, const char *queue, int count,
    int prefetch, int ack_every)
{
	amqp_connection_state_t st;
	amqp_envelope_t env;
	amqp_rpc_reply_t r;
	struct timeval tv;
	uint64_t last = 0;
	int got = 0, unacked = 0, ret = -1;
	double t0 = 0, dt;
	char node[272];

	if (raw_open_first(&st, p, node, sizeof(node)) == -1)
		goto out;
	amqp_basic_qos(st, RAW_CH, 0, (uint16_t)prefetch, 0);
	if (raw_check(amqp_get_rpc_reply(st), "basic.qos") == -1)
		goto out;
	amqp_basic_consume(st, RAW_CH, amqp_cstring_bytes(queue),
	    amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	if (raw_check(amqp_get_rpc_reply(st), "basic.consume") == -1)
		goto out;
	while (got < count) {
		tv.tv_sec = 30;
		tv.tv_usec = 0;
		amqp_maybe_release_buffers(st);
		r = amqp_consume_message(st, &env, &tv, 0);
		if (raw_check(r, "consume") == -1)
			goto out;
		if (got == 0)
			t0 = clock_s();
		last = env.delivery_tag;
		amqp_destroy_envelope(&env);
		got++;
		if (++unacked >= ack_every || got == count) {
			if (amqp_basic_ack(st, RAW_CH, last, 1) !=
			    AMQP_STATUS_OK) {
				fprintf(stderr, "bench: ack failed\n");
				goto out;
			}
			unacked = 0;
		}
	}
	dt = clock_s() - t0;
	printf("raw consume: %d msgs in %.2f s = %.0f msg/s (prefetch %d, "
	    "multiple-ack every %d, %s on %s)\n", count, dt,
	    (double)count / dt, prefetch, ack_every, queue, node);
	ret = 0;
	amqp_channel_close(st, RAW_CH, AMQP_REPLY_SUCCESS);
	amqp_connection_close(st, AMQP_REPLY_SUCCESS);
out:
	amqp_destroy_connection(st);
	return ret;
}

/* Declares (durable) or deletes a scratch queue.  0 or -1. */
static int
scratch(const struct mq_params *p, const char *queue, int create)
{
	amqp_connection_state_t st;
	char node[272];
	int ret = -1;

	if (raw_open_first(&st, p, node, sizeof(node)) == -1)
		goto out;
	if (create)
		amqp_queue_declare(st, RAW_CH, amqp_cstring_bytes(queue), 0, 1,
		    0, 0, amqp_empty_table);
	else
		amqp_queue_delete(st, RAW_CH, amqp_cstring_bytes(queue), 0, 0);
	if (raw_check(amqp_get_rpc_reply(st), "queue.declare/delete") == -1)
		goto out;
	ret = 0;
	amqp_channel_close(st, RAW_CH, AMQP_REPLY_SUCCESS);
	amqp_connection_close(st, AMQP_REPLY_SUCCESS);
out:
	amqp_destroy_connection(st);
	return ret;
}

/* The daemons' topology, declared through the first broker that
 * answers.  0 or -1. */
static int
declare(const struct mq_params *p)
{
	mq_conn *mq;
	int ret = -1;

	if ((mq = mq_new(p)) == NULL)
		return -1;
	if (mq_connect(mq, 0) == -1 || mq_declare_topology(mq) == -1)
		fprintf(stderr, "bench: %s\n", mq_error(mq));
	else
		ret = 0;
	mq_free(mq);
	return ret;
}

struct span {
	char first[TIMEFMT_LEN];
	char last[TIMEFMT_LEN];
	long long n;
};

static int
span_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct span *s = ud;

	if (ncols < 3 || cols[0].is_null)
		return 0;
	s->n = strtoll(cols[0].s, NULL, 10);
	if (!cols[1].is_null)
		snprintf(s->first, sizeof(s->first), "%s", cols[1].s);
	if (!cols[2].is_null)
		snprintf(s->last, sizeof(s->last), "%s", cols[2].s);
	return 0;
}

/* Waits for count processed messages; prints the worker's drain rate. */
static int
wait_processed(const struct db_params *p, int count, int timeout_s,
    const char *above)
{
	struct db_val arg = DB_STR(above);
	struct timespec a, b;
	struct span s;
	db_conn *db;
	double t_end, dt;
	int ret = -1;

	if ((db = db_new(p)) == NULL)
		return -1;
	t_end = clock_s() + timeout_s;
	for (;;) {
		memset(&s, 0, sizeof(s));
		if (db_query(db, "SELECT COUNT(*), MIN(processed_at), "
		    "MAX(processed_at) FROM processed_messages WHERE "
		    "message_id > ?", &arg, 1, span_row, &s, NULL) != DB_OK) {
			fprintf(stderr, "bench: %s\n", db_error(db));
			goto out;
		}
		if (s.n >= count)
			break;
		if (clock_s() > t_end) {
			fprintf(stderr, "bench: only %lld of %d processed after "
			    "%d s\n", s.n, count, timeout_s);
			goto out;
		}
		backoff_sleep(200, NULL);
	}
	if (timefmt_parse_sql(s.first, &a) == -1 ||
	    timefmt_parse_sql(s.last, &b) == -1) {
		fprintf(stderr, "bench: bad timestamps\n");
		goto out;
	}
	dt = (double)(b.tv_sec - a.tv_sec) +
	    (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("worker drain: %lld msgs in %.2f s = %.0f msg/s (first to "
	    "last processed_at)\n", s.n, dt, dt > 0 ? (double)s.n / dt : 0.0);
	ret = 0;
out:
	db_free(db);
	return ret;
}

/* count, prefetch and ack_every of raw and drain, from argv[2..4]:
 * 0, or -1 said on stderr. */
static int
drain_args(int argc, char **argv, int *count, int *prefetch,
    int *ack_every)
{
	if (raw_arg_int(argc, argv, 2, 100000, 1, 10000000, count) == -1 ||
	    raw_arg_int(argc, argv, 3, RAW_PREFETCH, 1, 65535,
	    prefetch) == -1 ||
	    raw_arg_int(argc, argv, 4, RAW_ACK_EVERY, 1, 65535,
	    ack_every) == -1)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct bench_cfg cfg;
	char err[256], queue[64];
	int count, a2, a3, rc;

	if (argc < 2) {
		fprintf(stderr, "usage: outbox-bench-consume raw [count "
		    "[prefetch [ack_every]]] | fill [count] | drain [count "
		    "[prefetch [ack_every]]] | declare | wait [count "
		    "[timeout_s]]\n");
		return 2;
	}
	memset(&cfg, 0, sizeof(cfg));
	if (cfg_load(bench_opts, sizeof(bench_opts) / sizeof(bench_opts[0]),
	    &cfg, err, sizeof(err)) == -1 ||
	    mq_params_check(&cfg.mq, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench: %s\n", err);
		return 2;
	}
	if (strcmp(argv[1], "raw") == 0) {
		if (drain_args(argc, argv, &count, &a2, &a3) == -1)
			return 2;
		snprintf(queue, sizeof(queue), "bench.consume.%ld",
		    (long)getpid());
		if (scratch(&cfg.mq, queue, 1) == -1)
			return 1;
		rc = fill(&cfg.mq, queue, count);
		if (rc == 0)
			rc = drain_raw(&cfg.mq, queue, count, a2, a3);
		scratch(&cfg.mq, queue, 0);
		return rc == 0 ? 0 : 1;
	}
	if (strcmp(argv[1], "drain") == 0) {
		if (drain_args(argc, argv, &count, &a2, &a3) == -1)
			return 2;
		return drain_raw(&cfg.mq, MQ_QUEUE, count, a2, a3) == 0 ? 0 : 1;
	}
	if (strcmp(argv[1], "fill") == 0) {
		if (raw_arg_int(argc, argv, 2, 100000, 1, 10000000, &count) == -1)
			return 2;
		rc = fill(&cfg.mq, MQ_QUEUE, count);
		if (rc == 0)
			printf("filled %s with %d messages\n", MQ_QUEUE, count);
		return rc == 0 ? 0 : 1;
	}
	if (strcmp(argv[1], "declare") == 0)
		return declare(&cfg.mq) == 0 ? 0 : 1;
	if (strcmp(argv[1], "wait") == 0) {
		if (raw_arg_int(argc, argv, 2, 100000, 1, 10000000, &count) == -1 ||
		    raw_arg_int(argc, argv, 3, 600, 1, 86400, &a2) == -1)
			return 2;
		db_global_init();
		rc = wait_processed(&cfg.db, count, a2, argc > 4 ? argv[4] :
		    "");
		db_global_end();
		return rc == 0 ? 0 : 1;
	}
	fprintf(stderr, "bench: unknown mode %s\n", argv[1]);
	return 2;
}
