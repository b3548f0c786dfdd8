/*
 * bench_publish.c - the raw reference figure for the relay: how fast a
 * plain rabbitmq-c client publishes persistent messages with publisher
 * confirms to a durable classic queue on the same broker, with a sliding
 * window of messages in flight.  No application code on purpose (it talks
 * to <amqp.h> directly): the relay's drain rate is compared with this.
 *
 *   outbox-bench-publish [--props] [count [inflight [size]]]
 *       --props   give each message the properties the relay sends
 *                 (SPEC section 7: message_id, type, timestamp, headers
 *                 x-outbox-seq and traceparent); without it only
 *                 content_type and delivery_mode, the bare figure
 *       count     messages to publish (default 100000)
 *       inflight  unconfirmed messages at most (default 1000)
 *       size      body bytes (default 320)
 *
 * Every message is persistent and published with mandatory.  Broker from
 * RABBITMQ_HOST, RABBITMQ_PORT, RABBITMQ_USER, RABBITMQ_PASS
 * (scripts/env.sh sets them).  Publishes to a scratch queue
 * "bench.publish.<pid>" that it declares, then deletes.  Prints one line:
 *   raw publish: <count> msgs in <s> s = <rate> msg/s (inflight <w>,
 *   <size> B, bare|props)
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
#include "rawamqp.h"

static const char *
env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : def;
}

int
main(int argc, char **argv)
{
	amqp_connection_state_t st;
	amqp_basic_properties_t props;
	amqp_frame_t frame;
	amqp_bytes_t body;
	struct timeval tv;
	unsigned char *settled;
	amqp_table_entry_t hdr[2];
	char queue[64], msgid[40], *buf;
	uint64_t published = 0, done = 0, low = 1, t, i;
	int count, inflight, size, port, rc, props_on = 0, skip = 0, ret = 1;
	double t0, dt;

	if (argc > 1 && strcmp(argv[1], "--props") == 0) {
		props_on = 1;
		skip = 1;
	}
	if (raw_arg_int(argc - skip, argv + skip, 1, 100000, 1, 100000000,
	    &count) == -1 ||
	    raw_arg_int(argc - skip, argv + skip, 2, 1000, 1, 65535,
	    &inflight) == -1 ||
	    raw_arg_int(argc - skip, argv + skip, 3, 320, 1, 1 << 20,
	    &size) == -1)
		return 2;
	if (cfg_parse_int(env_or("RABBITMQ_PORT", "5672"), 1, 65535,
	    &port) == -1) {
		fprintf(stderr, "bench: RABBITMQ_PORT: not a port\n");
		return 2;
	}
	settled = calloc((size_t)count + 2, 1);
	buf = malloc((size_t)size);
	if (settled == NULL || buf == NULL)
		return 1;
	memset(buf, 'x', (size_t)size);
	body.bytes = buf;
	body.len = (size_t)size;
	snprintf(queue, sizeof(queue), "bench.publish.%ld", (long)getpid());

	if (raw_open(&st, env_or("RABBITMQ_HOST", "127.0.0.1"), port, "/",
	    env_or("RABBITMQ_USER", "guest"),
	    env_or("RABBITMQ_PASS", "guest")) == -1)
		goto out;
	amqp_queue_declare(st, RAW_CH, amqp_cstring_bytes(queue), 0, 1, 0, 0,
	    amqp_empty_table);
	if (raw_check(amqp_get_rpc_reply(st), "queue.declare") == -1)
		goto out;
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
	    "%d B, %s)\n", count, dt, (double)count / dt, inflight, size,
	    props_on ? "props" : "bare");
	ret = 0;
	amqp_queue_delete(st, RAW_CH, amqp_cstring_bytes(queue), 0, 0);
	raw_check(amqp_get_rpc_reply(st), "queue.delete");
	amqp_channel_close(st, RAW_CH, AMQP_REPLY_SUCCESS);
	amqp_connection_close(st, AMQP_REPLY_SUCCESS);
out:
	amqp_destroy_connection(st);
	free(settled);
	free(buf);
	return ret;
}
