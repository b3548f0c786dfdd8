/*
 * bench_publish.c - the raw reference figure for the relay: how fast a
 * plain rabbitmq-c client publishes persistent messages with publisher
 * confirms to a durable classic queue on the same broker, with a sliding
 * window of messages in flight.  No application code on purpose (it talks
 * to <amqp.h> directly): the relay's drain rate is compared with this.
 *
 *   outbox-bench-publish [--props] [--queue name] [count [inflight
 *                        [size]]]
 *       --props   give each message the properties the relay sends
 *                 (SPEC section 7: message_id, type, timestamp, headers
 *                 x-outbox-seq and traceparent); without it only
 *                 content_type and delivery_mode, the bare figure
 *       --queue   publish to this existing queue (say outbox, of
 *                 whatever type it was declared with: the relay's queue
 *                 on a cluster), neither declared nor deleted; the
 *                 messages stay in it
 *       count     messages to publish (default 100000)
 *       inflight  unconfirmed messages at most (default 1000)
 *       size      body bytes (default 320)
 *
 * Every message is persistent and published with mandatory.  Broker from
 * RABBITMQ_HOSTS (the first that answers, in order, as the daemons), else
 * RABBITMQ_HOST and RABBITMQ_PORT; RABBITMQ_USER, RABBITMQ_PASS,
 * RABBITMQ_VHOST (scripts/env.sh sets them).  Without --queue, publishes
 * to a scratch classic queue "bench.publish.<pid>" that it declares, then
 * deletes.  Prints one line:
 *   raw publish: <count> msgs in <s> s = <rate> msg/s (inflight <w>,
 *   <size> B, bare|props, <queue> on <host:port>)
 * Exits 1 on any error, nack or return.
 */
#include <amqp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "clock.h"
#include "mq.h"
#include "rawamqp.h"

struct bench_cfg {
	struct mq_params mq;
};

#define T struct bench_cfg
static const struct cfg_opt bench_opts[] = {
	MQ_CFG_ROWS(T, mq),
};
#undef T

int
main(int argc, char **argv)
{
	struct bench_cfg cfg;
	amqp_connection_state_t st = NULL;
	amqp_basic_properties_t props;
	amqp_frame_t frame;
	amqp_bytes_t body;
	struct timeval tv;
	unsigned char *settled;
	amqp_table_entry_t hdr[2];
	char queue[256], msgid[40], node[272], err[256], *buf;
	uint64_t published = 0, done = 0, low = 1, t, i;
	int count, inflight, size, rc, props_on = 0, given = 0, skip = 0;
	int ret = 1;
	double t0, dt;

	snprintf(queue, sizeof(queue), "bench.publish.%ld", (long)getpid());
	while (argc > skip + 1 && strncmp(argv[skip + 1], "--", 2) == 0) {
		if (strcmp(argv[skip + 1], "--props") == 0) {
			props_on = 1;
			skip++;
		} else if (strcmp(argv[skip + 1], "--queue") == 0 &&
		    argc > skip + 2 && argv[skip + 2][0] != '\0') {
			snprintf(queue, sizeof(queue), "%s", argv[skip + 2]);
			given = 1;
			skip += 2;
		} else {
			fprintf(stderr, "bench: %s: expected --props or "
			    "--queue <name>\n", argv[skip + 1]);
			return 2;
		}
	}
	if (raw_arg_int(argc - skip, argv + skip, 1, 100000, 1, 100000000,
	    &count) == -1 ||
	    raw_arg_int(argc - skip, argv + skip, 2, 1000, 1, 65535,
	    &inflight) == -1 ||
	    raw_arg_int(argc - skip, argv + skip, 3, 320, 1, 1 << 20,
	    &size) == -1)
		return 2;
	memset(&cfg, 0, sizeof(cfg));
	if (cfg_load(bench_opts, sizeof(bench_opts) / sizeof(bench_opts[0]),
	    &cfg, err, sizeof(err)) == -1 ||
	    mq_params_check(&cfg.mq, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench: %s\n", err);
		return 2;
	}
	settled = calloc((size_t)count + 2, 1);
	buf = malloc((size_t)size);
	if (settled == NULL || buf == NULL)
		goto out;
	memset(buf, 'x', (size_t)size);
	body.bytes = buf;
	body.len = (size_t)size;

	if (raw_open_first(&st, &cfg.mq, node, sizeof(node)) == -1)
		goto out;
	if (!given) {
		amqp_queue_declare(st, RAW_CH, amqp_cstring_bytes(queue), 0, 1,
		    0, 0, amqp_empty_table);
		if (raw_check(amqp_get_rpc_reply(st), "queue.declare") == -1)
			goto out;
	}
	amqp_confirm_select(st, RAW_CH);
	if (raw_check(amqp_get_rpc_reply(st), "confirm.select") == -1)
		goto out;

	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
	    AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;

	t0 = clock_s();
	while (done < (uint64_t)count) {
		/* Fill the window, then read what the broker has sent back
		 * (blocking only when the window is full or all are out). */
		while (published < (uint64_t)count &&
		    published - done < (uint64_t)inflight) {
			if (props_on) {
				/* What the relay sends (common/mq.c). */
				snprintf(msgid, sizeof(msgid),
				    "00000000-0000-4000-8000-%012llu",
				    (unsigned long long)published %
				    1000000000000ULL);
				props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG |
				    AMQP_BASIC_TYPE_FLAG |
				    AMQP_BASIC_TIMESTAMP_FLAG |
				    AMQP_BASIC_HEADERS_FLAG;
				props.message_id = amqp_cstring_bytes(msgid);
				props.type = amqp_cstring_bytes(
				    "CustomerCreated");
				props.timestamp = (uint64_t)time(NULL);
				hdr[0].key = amqp_cstring_bytes("x-outbox-seq");
				hdr[0].value.kind = AMQP_FIELD_KIND_I64;
				hdr[0].value.value.i64 = (int64_t)published;
				hdr[1].key = amqp_cstring_bytes("traceparent");
				hdr[1].value.kind = AMQP_FIELD_KIND_UTF8;
				hdr[1].value.value.bytes = amqp_cstring_bytes(
				    "00-4bf92f3577b34da6a3ce929d0e0e4736-"
				    "00f067aa0ba902b7-01");
				props.headers.num_entries = 2;
				props.headers.entries = hdr;
			}
			rc = amqp_basic_publish(st, RAW_CH, amqp_empty_bytes,
			    amqp_cstring_bytes(queue), 1, 0, &props, body);
			if (rc != AMQP_STATUS_OK) {
				fprintf(stderr, "bench: publish: %s\n",
				    amqp_error_string2(rc));
				goto out;
			}
			published++;
		}
		tv.tv_sec = 30;
		tv.tv_usec = 0;
		amqp_maybe_release_buffers(st);
		rc = amqp_simple_wait_frame_noblock(st, &frame, &tv);
		if (rc != AMQP_STATUS_OK) {
			fprintf(stderr, "bench: waiting for confirms: %s\n",
			    amqp_error_string2(rc));
			goto out;
		}
		if (frame.frame_type != AMQP_FRAME_METHOD)
			continue;
		if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
			fprintf(stderr, "bench: the broker nacked a message\n");
			goto out;
		}
		if (frame.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
			fprintf(stderr, "bench: a message was returned\n");
			goto out;
		}
		if (frame.payload.method.id != AMQP_BASIC_ACK_METHOD)
			continue;
		{
			amqp_basic_ack_t *a = frame.payload.method.decoded;

			t = a->delivery_tag;
			if (t == 0 || t > published)
				continue;
			if (a->multiple) {
				for (i = low; i <= t; i++) {
					if (!settled[i]) {
						settled[i] = 1;
						done++;
					}
				}
			} else if (!settled[t]) {
				settled[t] = 1;
				done++;
			}
			while (low <= published && settled[low])
				low++;
		}
	}
	dt = clock_s() - t0;
	printf("raw publish: %d msgs in %.2f s = %.0f msg/s (inflight %d, "
	    "%d B, %s, %s on %s)\n", count, dt, (double)count / dt, inflight,
	    size, props_on ? "props" : "bare", queue, node);
	ret = 0;
	if (!given) {
		amqp_queue_delete(st, RAW_CH, amqp_cstring_bytes(queue), 0, 0);
		raw_check(amqp_get_rpc_reply(st), "queue.delete");
	}
	amqp_channel_close(st, RAW_CH, AMQP_REPLY_SUCCESS);
	amqp_connection_close(st, AMQP_REPLY_SUCCESS);
out:
	if (st != NULL)
		amqp_destroy_connection(st);
	free(settled);
	free(buf);
	return ret;
}
