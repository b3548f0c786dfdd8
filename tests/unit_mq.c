/*
 * unit_mq.c - unit tests of the publisher's own framing (common/mq.c's
 * mq_frame_publish): for every kind of message the relay and the worker
 * send, its bytes are those rabbitmq-c's amqp_basic_publish writes for
 * the properties SPEC section 7 defines.  rabbitmq-c writes to a socket
 * of this process (a loopback pair: no broker).
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "mq.h"
#include "suites.h"

Suite *unit_mq_suite(void);

#define TS 1764758400ULL /* a fixed timestamp: the bytes hold it */
#define TRACE "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define EXCH "outbox.events"
#define RKEY "outbox"

/* A rabbitmq-c connection whose socket is connected to *peer, past the
 * protocol header a broker answers first, as after a login:
 * amqp_tune_connection then sets its frame size. */
static amqp_connection_state_t
rabbit_to_self(int *peer)
{
	static unsigned char hello[8] = { 'A', 'M', 'Q', 'P', 0, 0, 9, 1 };
	amqp_frame_t frame;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	amqp_connection_state_t st;
	amqp_socket_t *s;
	int l;

	l = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(l, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	st = amqp_new_connection();
	ck_assert_ptr_nonnull(st);
	s = amqp_tcp_socket_new(st);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(amqp_socket_open(s, "127.0.0.1",
	    (int)ntohs(a.sin_port)), AMQP_STATUS_OK);
	*peer = accept(l, NULL, NULL);
	ck_assert_int_ge(*peer, 0);
	close(l);
	ck_assert_int_eq(amqp_handle_input(st, (amqp_bytes_t){ 8, hello },
	    &frame), 8);
	return st;
}

/* Reads exactly n bytes from fd into p within 2 s, then checks that
 * nothing more came. */
static void
read_exactly(int fd, unsigned char *p, size_t n)
{
	struct pollfd q = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		ck_assert_int_eq(poll(&q, 1, 2000), 1);
		r = recv(fd, p + got, n - got, 0);
		ck_assert_int_gt(r, 0);
		got += (size_t)r;
	}
	ck_assert_int_eq(recv(fd, p, 1, MSG_DONTWAIT), -1);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The properties of SPEC section 7, built here on their own (the
 * expectation), from m. */
static void
spec_props(const struct mq_msg *m, amqp_basic_properties_t *p,
    amqp_table_entry_t hdr[3])
{
	int nh = 0;

	memset(p, 0, sizeof(*p));
	p->_flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
	    AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
	    AMQP_BASIC_HEADERS_FLAG;
	p->content_type = amqp_cstring_bytes("application/json");
	p->delivery_mode = 2;
	p->timestamp = m->timestamp;
	if (m->message_id != NULL) {
		p->_flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		p->message_id = amqp_cstring_bytes(m->message_id);
	}
	if (m->type != NULL) {
		p->_flags |= AMQP_BASIC_TYPE_FLAG;
		p->type = amqp_cstring_bytes(m->type);
	}
	if (m->seq >= 0) {
		hdr[nh].key = amqp_cstring_bytes("x-outbox-seq");
		hdr[nh].value.kind = AMQP_FIELD_KIND_I64;
		hdr[nh++].value.value.i64 = m->seq;
	}
	if (m->reason != NULL) {
		hdr[nh].key = amqp_cstring_bytes("x-dlq-reason");
		hdr[nh].value.kind = AMQP_FIELD_KIND_UTF8;
		hdr[nh++].value.value.bytes = amqp_cstring_bytes(m->reason);
	}
	if (m->traceparent != NULL) {
		hdr[nh].key = amqp_cstring_bytes("traceparent");
		hdr[nh].value.kind = AMQP_FIELD_KIND_UTF8;
		hdr[nh++].value.value.bytes =
		    amqp_cstring_bytes(m->traceparent);
	}
	p->headers.num_entries = nh;
	p->headers.entries = hdr;
}

/* The messages: the relay's (every property), a dead-lettered one (a
 * reason, no sequence), one with neither id nor type nor body, and
 * bodies around the frame size and larger than a frame. */
static void
cases(struct mq_msg *m, size_t *n, char *big, size_t bigcap, size_t room)
{
	static const char body[] =
	    "{\"id\":\"0190f0e2-7c1a-7b3e-9c4d-5e6f7a8b9c0d\",\"name\":"
	    "\"Ada\",\"email\":\"ada@example.com\"}";
	size_t k = 0, i;

	for (i = 0; i < bigcap; i++)
		big[i] = (char)('a' + i % 26);
	memset(m, 0, 8 * sizeof(*m));
	for (i = 0; i < 8; i++) {
		m[i].timestamp = TS;
		m[i].seq = -1;
	}
	m[k].body = body;
	m[k].len = sizeof(body) - 1;
	m[k].message_id = "0190f0e2-7c1a-7b3e-9c4d-5e6f7a8b9c0d";
	m[k].type = "CustomerCreated";
	m[k].seq = 123456789012LL;
	m[k++].traceparent = TRACE;
	m[k].body = body;
	m[k].len = sizeof(body) - 1;
	m[k].message_id = "0190f0e2-7c1a-7b3e-9c4d-5e6f7a8b9c0d";
	m[k].type = "CustomerCreated";
	m[k++].reason = "poison: the handler refused it 5 times";
	m[k++].body = NULL;
	/* Exactly one body frame, one byte more, and several. */
	m[k].body = big;
	m[k++].len = room;
	m[k].body = big;
	m[k++].len = room + 1;
	m[k].body = big;
	m[k].len = bigcap;
	m[k].seq = 0;
	m[k++].type = "CustomerCreated";
	*n = k;
}

START_TEST(frames_as_amqp_basic_publish)
{
	static const int frame_maxes[] = { 131072, 4096 };
	struct mq_msg m[8];
	amqp_basic_properties_t props;
	amqp_table_entry_t hdr[3];
	amqp_connection_state_t st;
	struct buf out;
	unsigned char *got;
	char *big;
	size_t n, i, bigcap = 300000;
	int peer, f, fm;

	big = malloc(bigcap);
	ck_assert_ptr_nonnull(big);
	st = rabbit_to_self(&peer);
	buf_init(&out, 1 << 20);
	for (f = 0; f < 2; f++) {
		fm = frame_maxes[f];
		ck_assert_int_eq(amqp_tune_connection(st, 0, fm, 0),
		    AMQP_STATUS_OK);
		ck_assert_int_eq(amqp_get_frame_max(st), fm);
		cases(m, &n, big, bigcap, (size_t)fm - 8);
		for (i = 0; i < n; i++) {
			buf_reset(&out);
			ck_assert_int_eq(mq_frame_publish(&out, (size_t)fm,
			    EXCH, RKEY, &m[i]), 0);
			spec_props(&m[i], &props, hdr);
			ck_assert_int_eq(amqp_basic_publish(st, 1,
			    amqp_cstring_bytes(EXCH), amqp_cstring_bytes(RKEY),
			    1, 0, &props, (amqp_bytes_t){ m[i].len,
			    (void *)(uintptr_t)m[i].body }), AMQP_STATUS_OK);
			got = malloc(out.len);
			ck_assert_ptr_nonnull(got);
			read_exactly(peer, got, out.len);
			ck_assert_msg(memcmp(got, out.data, out.len) == 0,
			    "frame_max %d, message %zu: %zu bytes differ from "
			    "rabbitmq-c's", fm, i, out.len);
			free(got);
		}
	}
	/* Frames follow one another in one buffer. */
	buf_reset(&out);
	ck_assert_int_eq(mq_frame_publish(&out, 4096, EXCH, RKEY, &m[0]), 0);
	n = out.len;
	ck_assert_int_eq(mq_frame_publish(&out, 4096, EXCH, RKEY, &m[0]), 0);
	ck_assert_uint_eq(out.len, 2 * n);
	ck_assert(memcmp(out.data, out.data + n, n) == 0);
	buf_free(&out);
	amqp_destroy_connection(st);
	close(peer);
	free(big);
}
END_TEST

/* What AMQP cannot carry is refused whole: out keeps what it had. */
START_TEST(frames_refused_whole)
{
	char longid[300];
	struct mq_msg m;
	struct buf out;
	size_t before;

	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	memset(&m, 0, sizeof(m));
	m.seq = -1;
	m.timestamp = TS;
	m.body = "{}";
	m.len = 2;
	buf_init(&out, 1 << 20);
	ck_assert_int_eq(mq_frame_publish(&out, 4096, EXCH, RKEY, &m), 0);
	before = out.len;
	m.message_id = longid; /* a short string holds 255 bytes */
	errno = 0;
	ck_assert_int_eq(mq_frame_publish(&out, 4096, EXCH, RKEY, &m), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(out.len, before);
	m.message_id = NULL;
	ck_assert_int_eq(mq_frame_publish(&out, 12, EXCH, RKEY, &m), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(out.len, before);
	/* A full buffer: refused, unchanged. */
	out.max = before + 10;
	ck_assert_int_eq(mq_frame_publish(&out, 4096, EXCH, RKEY, &m), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(out.len, before);
	buf_free(&out);
}
END_TEST

Suite *
unit_mq_suite(void)
{
	const TTest *const tests[] = { frames_as_amqp_basic_publish,
	    frames_refused_whole, NULL };
	Suite *s = suite_create("mq");

	suites_case(s, "mq", 0, NULL, NULL, tests);
	return s;
}
