/*
 * mq.c - the rabbitmq-c wrapper: connection, topology, confirmed batch
 * publishing, consuming.
 */
#include "mq.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "mq_watch.h"

#define MQ_CHANNEL 1
#define MQ_FRAME_MAX 131072
/* The longest a broker call may write, unless mq_set_op_timeout says. */
#define MQ_OP_TIMEOUT_MS 30000

/* A batch published in confirm mode whose confirms are not all in
 * (mq_publish_start .. mq_publish_wait).  Its tags are consecutive. */
struct mq_inflight {
	struct mq_msg *msgs;
	size_t n;
	uint64_t first;      /* delivery tag of msgs[0] */
	size_t low;          /* msgs[0 .. low) all have their confirm */
	size_t open;         /* messages still without a confirm */
	unsigned char *done; /* per message: its confirm came */
};

struct mq_conn {
	struct mq_params p;
	struct mq_host hosts[MQ_HOSTS_MAX]; /* the host list */
	size_t nhosts;
	size_t cur;         /* the host connected to, or lost last */
	size_t start;       /* where the next mq_connect starts */
	int lost;           /* a connection to hosts[cur] was lost */
	char cur_name[272]; /* "host:port" of hosts[cur] */
	int mismatch;       /* the topology differs (mq_topology_mismatch) */
	amqp_connection_state_t st;
	int connected;
	int confirm;
	uint64_t next_tag; /* delivery tag of the next publish (confirm mode) */
	struct mq_inflight infl[MQ_INFLIGHT_MAX]; /* oldest first */
	size_t ninfl;
	int channel_closed; /* the broker closed our channel (close-ok sent) */
	unsigned refusal;   /* its reply code, until mq_take_refusal */
	int blocked;        /* the broker blocked publishing (alarm) */
	char blocked_why[128];
	int op_timeout_ms;  /* the longest a call may write */
	long long fence_ms; /* no message written from then on (0: none) */
	int fenced;         /* the last mq_publish_start stopped there */
	struct mq_watch watch;
	struct buf out;     /* frames of the batch being published */
	char err[512];
};

struct mq_priv {
	amqp_envelope_t env;
};

static void
mq_set_err(mq_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
mq_set_err(mq_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

/* Describes an RPC reply; 0 when it is a normal reply. */
static int
mq_check_reply(mq_conn *c, amqp_rpc_reply_t r, const char *what)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return 0;
	case AMQP_RESPONSE_NONE:
		mq_set_err(c, "%s: missing RPC reply", what);
		break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		mq_set_err(c, "%s: %s", what, amqp_error_string2(r.library_error));
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;

			mq_set_err(c, "%s: connection closed by broker: %u %.*s",
			    what, m->reply_code, (int)m->reply_text.len,
			    (const char *)m->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;

			mq_set_err(c, "%s: channel closed by broker: %u %.*s",
			    what, m->reply_code, (int)m->reply_text.len,
			    (const char *)m->reply_text.bytes);
		} else {
			mq_set_err(c, "%s: broker error, method 0x%08x", what,
			    r.reply.id);
		}
		break;
	}
	return -1;
}

/* ---- deadlines on broker calls (mq_watch.c) ------------------------- */

/* A call that may write starts: the watchdog ends it after the op
 * timeout. */
static void
watch_begin(mq_conn *c)
{
	mq_watch_begin(&c->watch, c->st != NULL ? amqp_get_sockfd(c->st) : -1,
	    c->op_timeout_ms);
}

/* The call is over.  1 when the watchdog had cut it short; a
 * connection.blocked it saw meanwhile counts as read. */
static int
watch_end(mq_conn *c)
{
	int blocked = 0;
	int fired = mq_watch_end(&c->watch, &blocked, c->blocked_why,
	    sizeof(c->blocked_why));

	if (blocked)
		c->blocked = 1;
	return fired;
}

void
mq_set_op_timeout(mq_conn *c, int ms)
{
	c->op_timeout_ms = ms > 0 ? ms : MQ_OP_TIMEOUT_MS;
}

size_t
mq_host_next(size_t k, size_t n)
{
	return n == 0 ? 0 : (k + 1) % n;
}

#define MQ_HOST_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789.-_"

/* One element of RABBITMQ_HOSTS, s[0 .. len): host[:port].  0 or -1. */
static int
mq_host_parse(const char *s, size_t len, int defport, struct mq_host *h,
    char *err, size_t errlen)
{
	const char *colon = memchr(s, ':', len);
	size_t hlen = colon != NULL ? (size_t)(colon - s) : len;
	size_t plen = colon != NULL ? len - hlen - 1 : 0;
	char port[16];

	if (s[0] == '[' || (colon != NULL && memchr(colon + 1, ':', plen))) {
		snprintf(err, errlen, "RABBITMQ_HOSTS: \"%.*s\": IPv6 "
		    "addresses are not supported; use a host name", (int)len,
		    s);
		return -1;
	}
	if (hlen == 0 || hlen >= sizeof(h->host) ||
	    strspn(s, MQ_HOST_CHARS) < hlen) {
		snprintf(err, errlen, "RABBITMQ_HOSTS: \"%.*s\": %s", (int)len,
		    s, hlen == 0 ? "empty host" : hlen >= sizeof(h->host) ?
		    "host name too long" : "a host is letters, digits, "
		    "'.', '-', '_'");
		return -1;
	}
	memcpy(h->host, s, hlen);
	h->host[hlen] = '\0';
	h->port = defport;
	if (colon == NULL)
		return 0;
	if (plen > 0 && plen < sizeof(port)) {
		memcpy(port, colon + 1, plen);
		port[plen] = '\0';
		if (cfg_parse_int(port, 1, 65535, &h->port) == 0)
			return 0;
	}
	snprintf(err, errlen, "RABBITMQ_HOSTS: \"%.*s\": the port must be "
	    "1..65535", (int)len, s);
	return -1;
}

int
mq_hosts_parse(const struct mq_params *p, struct mq_host *out, size_t max,
    char *err, size_t errlen)
{
	const char *s = p->hosts, *comma;
	size_t n = 0, len;

	if (max == 0 || max > INT_MAX) {
		snprintf(err, errlen, "RABBITMQ_HOSTS: bad list size");
		return -1;
	}
	if (s[0] == '\0') {
		snprintf(out[0].host, sizeof(out[0].host), "%s", p->host);
		out[0].port = p->port;
		return 1;
	}
	for (;;) {
		comma = strchr(s, ',');
		len = comma != NULL ? (size_t)(comma - s) : strlen(s);
		if (len == 0) {
			snprintf(err, errlen, "RABBITMQ_HOSTS: empty element "
			    "(host %zu)", n + 1);
			return -1;
		}
		if (n == max) {
			snprintf(err, errlen, "RABBITMQ_HOSTS: more than %zu "
			    "hosts", max);
			return -1;
		}
		if (mq_host_parse(s, len, p->port, &out[n], err, errlen) == -1)
			return -1;
		n++;
		if (comma == NULL)
			return (int)n;
		s = comma + 1;
	}
}

int
mq_params_check(const struct mq_params *p, char *err, size_t errlen)
{
	struct mq_host h[MQ_HOSTS_MAX];

	return mq_hosts_parse(p, h, MQ_HOSTS_MAX, err, errlen) == -1 ? -1 : 0;
}

int
mq_host_index(const mq_conn *c, const char **name)
{
	if (!c->connected)
		return -1;
	if (name != NULL)
		*name = c->cur_name;
	return (int)c->cur;
}

/* The connection to hosts[cur] is gone: the next mq_connect starts with
 * the host after it. */
static void
mq_mark_lost(mq_conn *c)
{
	if (!c->connected)
		return;
	c->lost = 1;
	c->start = mq_host_next(c->cur, c->nhosts);
}

mq_conn *
mq_new(const struct mq_params *p)
{
	mq_conn *c = calloc(1, sizeof(*c));
	char err[512];
	int n;

	if (c == NULL)
		return NULL;
	c->p = *p;
	/* The daemons checked the list at start (mq_params_check). */
	if ((n = mq_hosts_parse(p, c->hosts, MQ_HOSTS_MAX, err,
	    sizeof(err))) == -1) {
		log_warnx("%s", err);
		free(c);
		return NULL;
	}
	c->nhosts = (size_t)n;
	c->op_timeout_ms = MQ_OP_TIMEOUT_MS;
	buf_init(&c->out, INT_MAX);
	if (mq_watch_add(&c->watch) == -1) {
		free(c);
		return NULL;
	}
	return c;
}

/* Forgets the batches in flight: their unconfirmed messages stay
 * MQ_PENDING. */
static void
mq_inflight_clear(mq_conn *c)
{
	size_t k;

	for (k = 0; k < c->ninfl; k++)
		free(c->infl[k].done);
	c->ninfl = 0;
}

void
mq_disconnect(mq_conn *c)
{
	mq_inflight_clear(c);
	if (c->st == NULL)
		return;
	if (c->connected) {
		/* Polite close; a dead peer just makes these fail, one that
		 * does not read is cut by the watchdog. */
		watch_begin(c);
		amqp_channel_close(c->st, MQ_CHANNEL, AMQP_REPLY_SUCCESS);
		amqp_connection_close(c->st, AMQP_REPLY_SUCCESS);
		watch_end(c);
	}
	mq_mark_lost(c);
	amqp_destroy_connection(c->st);
	c->st = NULL;
	c->connected = 0;
}

int
mq_move_on(mq_conn *c, const char *why)
{
	if (c->nhosts < 2 || !c->connected)
		return 0;
	mq_disconnect(c);
	mq_set_err(c, "%s", why);
	return 1;
}

void
mq_free(mq_conn *c)
{
	if (c == NULL)
		return;
	mq_disconnect(c);
	mq_watch_remove(&c->watch);
	buf_free(&c->out);
	memset(c->p.pass, 0, sizeof(c->p.pass));
	free(c);
}

int
mq_is_connected(const mq_conn *c)
{
	return c->connected;
}

const char *
mq_error(const mq_conn *c)
{
	return c->err;
}

/* Login (asking for connection.blocked notifications), channel, confirm
 * mode.  0 or -1. */
static int
mq_handshake(mq_conn *c, int confirm)
{
	amqp_table_entry_t caps[1], props[1];
	amqp_table_t client;

	caps[0].key = amqp_cstring_bytes("connection.blocked");
	caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[0].value.value.boolean = 1;
	props[0].key = amqp_cstring_bytes("capabilities");
	props[0].value.kind = AMQP_FIELD_KIND_TABLE;
	props[0].value.value.table.num_entries = 1;
	props[0].value.value.table.entries = caps;
	client.num_entries = 1;
	client.entries = props;
	if (mq_check_reply(c, amqp_login_with_properties(c->st, c->p.vhost, 0,
	    MQ_FRAME_MAX, c->p.heartbeat_s, &client, AMQP_SASL_METHOD_PLAIN,
	    c->p.user, c->p.pass), "login") == -1)
		return -1;
	amqp_channel_open(c->st, MQ_CHANNEL);
	if (mq_check_reply(c, amqp_get_rpc_reply(c->st), "channel.open") == -1)
		return -1;
	c->confirm = confirm;
	c->next_tag = 1;
	c->refusal = 0;
	c->channel_closed = 0;
	c->blocked = 0;
	if (confirm) {
		amqp_confirm_select(c->st, MQ_CHANNEL);
		if (mq_check_reply(c, amqp_get_rpc_reply(c->st),
		    "confirm.select") == -1)
			return -1;
	}
	return 0;
}

/* One try of host h.  0 or -1 (error set). */
static int
mq_connect_one(mq_conn *c, const struct mq_host *h, int confirm)
{
	struct timeval tv;
	amqp_socket_t *sock;
	int rc;

	if ((c->st = amqp_new_connection()) == NULL) {
		mq_set_err(c, "out of memory");
		return -1;
	}
	if ((sock = amqp_tcp_socket_new(c->st)) == NULL) {
		mq_set_err(c, "cannot create socket");
		goto fail;
	}
	tv.tv_sec = c->p.connect_timeout_s;
	tv.tv_usec = 0;
	rc = amqp_socket_open_noblock(sock, h->host, h->port, &tv);
	if (rc != AMQP_STATUS_OK) {
		mq_set_err(c, "connect %s:%d: %s", h->host, h->port,
		    amqp_error_string2(rc));
		goto fail;
	}
	watch_begin(c);
	rc = mq_handshake(c, confirm);
	if (watch_end(c)) {
		mq_set_err(c, "connect %s:%d: no answer within %d ms",
		    h->host, h->port, c->op_timeout_ms);
		rc = -1;
	}
	if (rc == -1)
		goto fail;
	c->connected = 1;
	return 0;
fail:
	amqp_destroy_connection(c->st);
	c->st = NULL;
	return -1;
}

int
mq_connect(mq_conn *c, int confirm)
{
	size_t k, i;

	if (c->connected)
		return 0;
	mq_disconnect(c);
	if (c->lost && c->nhosts > 1 && !c->mismatch)
		log_warnx("broker %s lost; failing over to %s:%d", c->cur_name,
		    c->hosts[c->start].host, c->hosts[c->start].port);
	c->lost = 0;
	for (k = 0; k < c->nhosts; k++) {
		i = (c->start + k) % c->nhosts;
		if (mq_connect_one(c, &c->hosts[i], confirm) == 0) {
			c->cur = i;
			snprintf(c->cur_name, sizeof(c->cur_name), "%s:%d",
			    c->hosts[i].host, c->hosts[i].port);
			/* Retries against a mismatched topology stay
			 * quiet: its one warning said it all. */
			if (c->mismatch)
				log_debug("connected to broker %s",
				    c->cur_name);
			else
				log_info("connected to broker %s",
				    c->cur_name);
			return 0;
		}
		if (c->nhosts > 1)
			log_debug("broker %s:%d: %s", c->hosts[i].host,
			    c->hosts[i].port, c->err);
	}
	return -1;
}

/* After the broker closed our channel (close-ok sent): the same channel
 * again, in confirm mode if it was.  0, or -1. */
static int
mq_reopen_channel(mq_conn *c)
{
	amqp_channel_open(c->st, MQ_CHANNEL);
	if (amqp_get_rpc_reply(c->st).reply_type != AMQP_RESPONSE_NORMAL)
		return -1;
	c->next_tag = 1;
	if (c->confirm) {
		amqp_confirm_select(c->st, MQ_CHANNEL);
		if (amqp_get_rpc_reply(c->st).reply_type !=
		    AMQP_RESPONSE_NORMAL)
			return -1;
	}
	return 0;
}

/* After an error (the error text is kept): what was in flight is
 * forgotten; a channel the broker closed is opened again on the same
 * connection, anything else closes the connection.  Returns -1. */
static int
mq_fail(mq_conn *c)
{
	mq_inflight_clear(c);
	if (c->channel_closed && c->st != NULL && c->connected) {
		c->channel_closed = 0;
		if (mq_reopen_channel(c) == 0)
			return -1;
	}
	c->channel_closed = 0;
	if (c->st != NULL) {
		amqp_destroy_connection(c->st);
		c->st = NULL;
	}
	mq_mark_lost(c);
	c->connected = 0;
	return -1;
}

int
mq_blocked(const mq_conn *c, const char **why)
{
	if (why != NULL)
		*why = c->blocked_why;
	return c->blocked;
}

int
mq_give_up(mq_conn *c, const char *why)
{
	mq_set_err(c, "%s", why);
	return mq_fail(c);
}

unsigned
mq_take_refusal(mq_conn *c)
{
	unsigned code = c->refusal;

	c->refusal = 0;
	return code;
}

static int mq_declare_all(mq_conn *c);

int
mq_declare_topology(mq_conn *c)
{
	int rc;

	if (!c->connected) {
		mq_set_err(c, "not connected");
		return -1;
	}
	watch_begin(c);
	rc = mq_declare_all(c);
	if (watch_end(c))
		mq_set_err(c, "declaring the topology took over %d ms",
		    c->op_timeout_ms);
	return rc == 0 ? 0 : mq_fail(c);
}

const char *const mq_queue_type_names[] = { "classic", "quorum", NULL };

static void
mq_arg_str(amqp_table_entry_t *e, const char *key, const char *val)
{
	e->key = amqp_cstring_bytes(key);
	e->value.kind = AMQP_FIELD_KIND_UTF8;
	e->value.value.bytes = amqp_cstring_bytes(val);
}

/* Declares durable queue q with the n arguments a (plus x-queue-type
 * when quorum).  0, or -1 (error set; a refusal of its arguments sets
 * the mismatch). */
static int
mq_declare_queue(mq_conn *c, const char *q, amqp_table_entry_t *a, int n)
{
	amqp_rpc_reply_t r;
	amqp_table_t tbl;

	if (c->p.queue_type == MQ_QUORUM)
		mq_arg_str(&a[n++], "x-queue-type", "quorum");
	tbl.num_entries = n;
	tbl.entries = a;
	amqp_queue_declare(c->st, MQ_CHANNEL, amqp_cstring_bytes(q), 0, 1, 0,
	    0, tbl);
	r = amqp_get_rpc_reply(c->st);
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
	    ((amqp_channel_close_t *)r.reply.decoded)->reply_code ==
	    AMQP_PRECONDITION_FAILED) {
		amqp_channel_close_t *m = r.reply.decoded;

		c->mismatch = 1;
		mq_set_err(c, "queue %s exists with other arguments than "
		    "RABBITMQ_QUEUE_TYPE=%s asks for (the broker: %.*s); left "
		    "as it is: set RABBITMQ_QUEUE_TYPE to the queue's type, or "
		    "migrate the queue (README, Queue type)", q,
		    mq_queue_type_names[c->p.queue_type],
		    (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		return -1;
	}
	return mq_check_reply(c, r, q);
}

/* The declarations of mq_declare_topology.  0, or -1 (error set). */
static int
mq_declare_all(mq_conn *c)
{
	amqp_table_entry_t qargs[6];
	int n = 0;

	amqp_exchange_declare(c->st, MQ_CHANNEL, amqp_cstring_bytes(MQ_DLX),
	    amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
	if (mq_check_reply(c, amqp_get_rpc_reply(c->st),
	    "declare exchange " MQ_DLX) == -1)
		return -1;
	mq_arg_str(&qargs[n++], "x-dead-letter-exchange", MQ_DLX);
	if (c->p.queue_type == MQ_QUORUM) {
		qargs[n].key = amqp_cstring_bytes("x-delivery-limit");
		qargs[n].value.kind = AMQP_FIELD_KIND_I64;
		qargs[n++].value.value.i64 = c->p.delivery_limit;
		/* at-least-once falls back to at-most-once without
		 * reject-publish. */
		mq_arg_str(&qargs[n++], "x-dead-letter-strategy",
		    "at-least-once");
		mq_arg_str(&qargs[n++], "x-overflow", "reject-publish");
	}
	if (mq_declare_queue(c, MQ_QUEUE, qargs, n) == -1)
		return -1;
	if (mq_declare_queue(c, MQ_DLQ, qargs, 0) == -1)
		return -1;
	amqp_queue_bind(c->st, MQ_CHANNEL, amqp_cstring_bytes(MQ_DLQ),
	    amqp_cstring_bytes(MQ_DLX), amqp_cstring_bytes(""),
	    amqp_empty_table);
	if (mq_check_reply(c, amqp_get_rpc_reply(c->st), "bind " MQ_DLQ) == -1)
		return -1;
	c->mismatch = 0;
	return 0;
}

/* Message i of batch b got its confirm (or its return, then its ack). */
static void
mq_settle(struct mq_inflight *b, size_t i, enum mq_result res)
{
	if (b->done[i])
		return;
	b->done[i] = 1;
	/* A returned message is acked afterwards: it keeps its
	 * MQ_RETURNED, since no queue took it. */
	if (b->msgs[i].result == MQ_PENDING)
		b->msgs[i].result = res;
	b->open--;
}

/* Settles the messages in flight whose tag is t (or <= t when
 * multiple).  Tags are consecutive within a batch and increase from one
 * batch to the next. */
static void
mq_confirm(mq_conn *c, uint64_t t, int multiple, enum mq_result res)
{
	struct mq_inflight *b;
	size_t k, i, end;

	for (k = 0; k < c->ninfl; k++) {
		b = &c->infl[k];
		if (t < b->first)
			break;
		if (t - b->first < b->n) {
			if (!multiple) {
				mq_settle(b, (size_t)(t - b->first), res);
				end = 0;
			} else {
				end = (size_t)(t - b->first) + 1;
			}
		} else {
			end = multiple ? b->n : 0;
		}
		for (i = b->low; i < end; i++)
			mq_settle(b, i, res);
		while (b->low < b->n && b->done[b->low])
			b->low++;
	}
}

/* Reads a basic.return's header and body frames; marks the message. */
static int
mq_read_return(mq_conn *c)
{
	struct mq_inflight *b;
	amqp_message_t m;
	amqp_rpc_reply_t r;
	size_t i, k;
	int found = 0;

	r = amqp_read_message(c->st, MQ_CHANNEL, &m, 0);
	if (mq_check_reply(c, r, "read returned message") == -1)
		return -1;
	if (m.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
		for (k = 0; k < c->ninfl && !found; k++) {
			b = &c->infl[k];
			for (i = b->low; i < b->n; i++) {
				if (!b->done[i] &&
				    b->msgs[i].result == MQ_PENDING &&
				    b->msgs[i].message_id != NULL &&
				    strlen(b->msgs[i].message_id) ==
				    m.properties.message_id.len &&
				    memcmp(b->msgs[i].message_id,
				    m.properties.message_id.bytes,
				    m.properties.message_id.len) == 0) {
					b->msgs[i].result = MQ_RETURNED;
					found = 1;
					break;
				}
			}
		}
	}
	amqp_destroy_message(&m);
	return 0;
}

/* Handles one frame that came while publishing or idle: confirms,
 * returns, a close by the broker.  0, or -1 when the broker closed the
 * channel or the connection (error set). */
static int
mq_handle_frame(mq_conn *c, const amqp_frame_t *frame)
{
	if (frame->frame_type != AMQP_FRAME_METHOD)
		return 0;
	switch (frame->payload.method.id) {
	case AMQP_BASIC_ACK_METHOD: {
		amqp_basic_ack_t *a = frame->payload.method.decoded;

		mq_confirm(c, a->delivery_tag, a->multiple, MQ_ACKED);
		return 0;
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *a = frame->payload.method.decoded;

		mq_confirm(c, a->delivery_tag, a->multiple, MQ_NACKED);
		return 0;
	}
	case AMQP_BASIC_RETURN_METHOD:
		return mq_read_return(c);
	case AMQP_CHANNEL_CLOSE_METHOD: {
		amqp_channel_close_t *m = frame->payload.method.decoded;
		amqp_channel_close_ok_t ok = { 0 };

		mq_set_err(c, "channel closed by broker: %u %.*s",
		    m->reply_code, (int)m->reply_text.len,
		    (const char *)m->reply_text.bytes);
		/* It refused something of ours (a message too large, an
		 * exchange we may not publish to...): the connection is
		 * fine, the channel is opened again (mq_fail). */
		c->refusal = m->reply_code;
		if (amqp_send_method(c->st, MQ_CHANNEL,
		    AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) == AMQP_STATUS_OK)
			c->channel_closed = 1;
		return -1;
	}
	case AMQP_CONNECTION_BLOCKED_METHOD: {
		amqp_connection_blocked_t *m = frame->payload.method.decoded;

		c->blocked = 1;
		snprintf(c->blocked_why, sizeof(c->blocked_why), "%.*s",
		    (int)m->reason.len, (const char *)m->reason.bytes);
		return 0;
	}
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		c->blocked = 0;
		return 0;
	case AMQP_CONNECTION_CLOSE_METHOD: {
		amqp_connection_close_t *m = frame->payload.method.decoded;

		mq_set_err(c, "connection closed by broker: %u %.*s",
		    m->reply_code, (int)m->reply_text.len,
		    (const char *)m->reply_text.bytes);
		return -1;
	}
	default:
		return 0;
	}
}

void
mq_set_fence(mq_conn *c, long long fence_ms)
{
	c->fence_ms = fence_ms;
}

int
mq_fenced(const mq_conn *c)
{
	return c->fenced;
}

/* ---- publishing: the frames of a batch written in bulk ---------------
 *
 * amqp_basic_publish writes each message as three send() calls (method,
 * content header, body), and on this machine the kernel's work for them
 * was most of the relay's CPU.  mq_publish_start frames the messages
 * itself, with rabbitmq-c's own encoders, exactly as amqp_basic_publish
 * would (the unit tests compare the bytes), and writes them in chunks of
 * MQ_OUT_CHUNK bytes.  rabbitmq-c keeps no partial frame of its own
 * between calls, so its later writes (heartbeats, acks) stay whole
 * frames between ours. */

/* Framed bytes collected before they are written. */
#define MQ_OUT_CHUNK 65536
/* A frame's type, channel and size, and its end octet. */
#define MQ_FRAME_HEAD 7
#define MQ_FRAME_OVERHEAD 8

/* The properties of m as SPEC section 7 defines them; hdr holds the
 * headers (3 at most) and must live as long as props. */
static void
msg_props(const struct mq_msg *m, amqp_basic_properties_t *props,
    amqp_table_entry_t hdr[3])
{
	int nh = 0;

	memset(props, 0, sizeof(*props));
	props->_flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
	    AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
	    AMQP_BASIC_HEADERS_FLAG;
	props->content_type = amqp_cstring_bytes("application/json");
	props->delivery_mode = AMQP_DELIVERY_PERSISTENT;
	props->timestamp = m->timestamp != 0 ? m->timestamp :
	    (uint64_t)time(NULL);
	if (m->message_id != NULL) {
		props->_flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		props->message_id = amqp_cstring_bytes(m->message_id);
	}
	if (m->type != NULL) {
		props->_flags |= AMQP_BASIC_TYPE_FLAG;
		props->type = amqp_cstring_bytes(m->type);
	}
	if (m->seq >= 0) {
		hdr[nh].key = amqp_cstring_bytes(MQ_HDR_SEQ);
		hdr[nh].value.kind = AMQP_FIELD_KIND_I64;
		hdr[nh].value.value.i64 = m->seq;
		nh++;
	}
	if (m->reason != NULL) {
		hdr[nh].key = amqp_cstring_bytes(MQ_HDR_DLQ_REASON);
		hdr[nh].value.kind = AMQP_FIELD_KIND_UTF8;
		hdr[nh].value.value.bytes = amqp_cstring_bytes(m->reason);
		nh++;
	}
	if (m->traceparent != NULL) {
		hdr[nh].key = amqp_cstring_bytes(MQ_HDR_TRACEPARENT);
		hdr[nh].value.kind = AMQP_FIELD_KIND_UTF8;
		hdr[nh].value.value.bytes = amqp_cstring_bytes(m->traceparent);
		nh++;
	}
	props->headers.num_entries = nh;
	props->headers.entries = hdr;
}

static void
put_be(unsigned char *p, uint64_t v, int bytes)
{
	while (bytes-- > 0) {
		p[bytes] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

/* Closes the frame of type whose payload of len bytes the caller wrote
 * at out's end + MQ_FRAME_HEAD (room for it was reserved). */
static void
frame_close(struct buf *out, int type, size_t len)
{
	unsigned char *f = (unsigned char *)out->data + out->len;

	f[0] = (unsigned char)type;
	put_be(f + 1, MQ_CHANNEL, 2);
	put_be(f + 3, len, 4);
	f[MQ_FRAME_HEAD + len] = AMQP_FRAME_END;
	out->len += MQ_FRAME_HEAD + len + 1;
	out->data[out->len] = '\0';
}

int
mq_frame_publish(struct buf *out, size_t frame_max, const char *exchange,
    const char *rkey, const struct mq_msg *m)
{
	amqp_basic_publish_t pub;
	amqp_basic_properties_t props;
	amqp_table_entry_t hdr[3];
	size_t start = out->len, room, off, part;
	unsigned char *f;
	int k, len;

	if (frame_max <= MQ_FRAME_OVERHEAD + 12)
		goto toobig;
	/* Each frame is encoded in place: room for the largest that fits
	 * frame_max, the encoders stop at its end. */
	room = frame_max - MQ_FRAME_OVERHEAD;
	memset(&pub, 0, sizeof(pub));
	pub.exchange = amqp_cstring_bytes(exchange);
	pub.routing_key = amqp_cstring_bytes(rkey);
	pub.mandatory = 1;
	if (buf_reserve(out, frame_max) == -1)
		goto fail;
	f = (unsigned char *)out->data + out->len + MQ_FRAME_HEAD;
	put_be(f, AMQP_BASIC_PUBLISH_METHOD, 4);
	len = amqp_encode_method(AMQP_BASIC_PUBLISH_METHOD, &pub,
	    (amqp_bytes_t){ room - 4, f + 4 });
	if (len < 0)
		goto toobig;
	frame_close(out, AMQP_FRAME_METHOD, (size_t)len + 4);

	msg_props(m, &props, hdr);
	if (buf_reserve(out, frame_max) == -1)
		goto fail;
	f = (unsigned char *)out->data + out->len + MQ_FRAME_HEAD;
	put_be(f, AMQP_BASIC_CLASS, 2);
	put_be(f + 2, 0, 2); /* weight */
	put_be(f + 4, m->len, 8);
	len = amqp_encode_properties(AMQP_BASIC_CLASS, &props,
	    (amqp_bytes_t){ room - 12, f + 12 });
	if (len < 0)
		goto toobig;
	frame_close(out, AMQP_FRAME_HEADER, (size_t)len + 12);

	for (off = 0; off < m->len; off += part) {
		part = m->len - off < room ? m->len - off : room;
		if (buf_reserve(out, part + MQ_FRAME_OVERHEAD) == -1)
			goto fail;
		memcpy(out->data + out->len + MQ_FRAME_HEAD, m->body + off,
		    part);
		frame_close(out, AMQP_FRAME_BODY, part);
	}
	return 0;
toobig:
	errno = EMSGSIZE;
fail:
	k = errno;
	out->len = start;
	if (out->data != NULL)
		out->data[start] = '\0';
	errno = k;
	return -1;
}

/* Writes the batch's framed bytes, unless the fence passed (checked
 * before every write, the only place bytes leave: a publisher that was
 * stopped, or waited for the broker, writes nothing more once it is
 * past).  0, or -1 with the error
 * set (the caller closes the connection); *fenced 1 at the fence. */
static int
mq_out_write(mq_conn *c, int fd, int *fenced)
{
	struct pollfd p;
	size_t off = 0;
	ssize_t w;
	int rc;

	while (off < c->out.len) {
		if (c->fence_ms != 0 && clock_lease_ms() >= c->fence_ms) {
			*fenced = 1;
			return -1;
		}
		w = send(fd, c->out.data + off, c->out.len - off,
		    MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* The watchdog cuts a broker that takes nothing
			 * (the socket then fails); the poll's own limit
			 * is a backstop. */
			p.fd = fd;
			p.events = POLLOUT;
			p.revents = 0;
			rc = poll(&p, 1, c->op_timeout_ms);
			if (rc == -1 && errno == EINTR)
				continue;
			if (rc == 1)
				continue;
			if (rc == 0)
				errno = ETIMEDOUT;
		}
		mq_set_err(c, "publish: %s", w == 0 ? "the socket took "
		    "nothing" : strerror(errno));
		return -1;
	}
	buf_reset(&c->out);
	return 0;
}

int
mq_publish_start(mq_conn *c, const char *exchange, const char *rkey,
    struct mq_msg *msgs, size_t n)
{
	struct mq_inflight *b;
	size_t i, frame_max;
	int fd, cut, fenced = 0, rc = 0;

	for (i = 0; i < n; i++)
		msgs[i].result = MQ_PENDING;
	c->fenced = 0;
	if (!c->connected || !c->confirm) {
		mq_set_err(c, "not connected in confirm mode");
		return -1;
	}
	if (n == 0)
		return 0;
	if (c->ninfl == MQ_INFLIGHT_MAX) {
		mq_set_err(c, "%d batches in flight already", MQ_INFLIGHT_MAX);
		return -1;
	}
	if ((fd = amqp_get_sockfd(c->st)) < 0) {
		mq_set_err(c, "publish: no socket");
		return mq_fail(c);
	}
	b = &c->infl[c->ninfl];
	memset(b, 0, sizeof(*b));
	if ((b->done = calloc(n, 1)) == NULL) {
		mq_set_err(c, "out of memory");
		return -1;
	}
	b->msgs = msgs;
	b->n = n;
	b->open = n;
	b->first = c->next_tag;
	c->ninfl++;
	frame_max = (size_t)amqp_get_frame_max(c->st);
	watch_begin(c);
	/* The fence is checked where bytes leave (mq_out_write): framing
	 * alone publishes nothing. */
	for (i = 0; i < n && rc == 0; i++) {
		if (mq_frame_publish(&c->out, frame_max, exchange, rkey,
		    &msgs[i]) == -1) {
			mq_set_err(c, "publish: message %zu of %zu cannot be "
			    "framed: %s", i + 1, n, strerror(errno));
			rc = -1;
			break;
		}
		c->next_tag++;
		if (c->out.len >= MQ_OUT_CHUNK || i + 1 == n)
			rc = mq_out_write(c, fd, &fenced);
	}
	cut = watch_end(c);
	buf_reset(&c->out);
	if (rc == 0)
		return 0;
	if (fenced) {
		c->fenced = 1;
		mq_set_err(c, "publish: stopped at the fence (the caller's "
		    "lease) with %zu of %zu messages framed", i, n);
		(void)mq_fail(c);
		/* Not the host's fault: the next connect tries it first
		 * again. */
		c->lost = 0;
		c->start = c->cur;
		return -1;
	}
	if (cut && c->blocked)
		mq_set_err(c, "publish: the broker blocked publishing (%s)",
		    c->blocked_why);
	else if (cut)
		mq_set_err(c, "publish: the broker took no data for %d ms",
		    c->op_timeout_ms);
	return mq_fail(c);
}

int
mq_publish_wait(mq_conn *c, struct mq_msg *msgs, size_t n, int timeout_ms)
{
	amqp_frame_t frame;
	struct timeval tv;
	long long deadline, left, now, stop_at = 0;
	size_t k;
	int rc;

	if (n == 0)
		return 0;
	for (k = 0; k < c->ninfl && c->infl[k].msgs != msgs; k++)
		;
	if (k == c->ninfl) {
		/* After a failure the registry is empty and the error
		 * already says why. */
		if (c->connected)
			mq_set_err(c, "no such batch in flight");
		return -1;
	}
	deadline = clock_ms() + timeout_ms;
	while (c->infl[k].open > 0) {
		now = clock_ms();
		if (mq_watch_stopping()) {
			/* Asked to stop: a last moment for the confirms. */
			if (stop_at == 0)
				stop_at = now + MQ_WATCH_STOP_GRACE_MS;
			if (deadline > stop_at)
				deadline = stop_at;
		}
		left = deadline - now;
		if (left <= 0) {
			mq_set_err(c, "timed out waiting for %zu confirms%s",
			    c->infl[k].open, stop_at != 0 ? " (stopping)" :
			    "");
			return mq_fail(c);
		}
		/* Slices, so that a stop request is seen soon. */
		if (left > 200)
			left = 200;
		tv.tv_sec = (time_t)(left / 1000);
		tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
		amqp_maybe_release_buffers(c->st);
		rc = amqp_simple_wait_frame_noblock(c->st, &frame, &tv);
		/* The broker holds what it read until its alarm is over:
		 * the caller decides how long to wait for it. */
		if (rc == AMQP_STATUS_TIMEOUT && c->blocked && !mq_watch_stopping())
			return 1;
		if (rc == AMQP_STATUS_TIMEOUT)
			continue;
		if (rc != AMQP_STATUS_OK) {
			mq_set_err(c, "waiting for confirms: %s",
			    amqp_error_string2(rc));
			return mq_fail(c);
		}
		if (mq_handle_frame(c, &frame) == -1)
			return mq_fail(c);
	}
	free(c->infl[k].done);
	c->ninfl--;
	memmove(&c->infl[k], &c->infl[k + 1],
	    (c->ninfl - k) * sizeof(c->infl[0]));
	return 0;
}

int
mq_publish_batch(mq_conn *c, const char *exchange, const char *rkey,
    struct mq_msg *msgs, size_t n, int timeout_ms)
{
	long long deadline = clock_ms() + timeout_ms, left;
	int rc;

	if (mq_publish_start(c, exchange, rkey, msgs, n) == -1)
		return -1;
	/* Blocked by the broker or not, timeout_ms in all. */
	while ((rc = mq_publish_wait(c, msgs, n, timeout_ms)) == 1) {
		left = deadline - clock_ms();
		timeout_ms = left > 0 ? (int)left : 1;
	}
	return rc;
}

int
mq_service(mq_conn *c)
{
	amqp_frame_t frame;
	struct timeval tv = { 0, 0 };
	int rc;

	if (!c->connected)
		return -1;
	for (;;) {
		amqp_maybe_release_buffers(c->st);
		rc = amqp_simple_wait_frame_noblock(c->st, &frame, &tv);
		if (rc == AMQP_STATUS_TIMEOUT)
			return 0;
		if (rc != AMQP_STATUS_OK) {
			mq_set_err(c, "connection: %s", amqp_error_string2(rc));
			return mq_fail(c);
		}
		/* Confirms of batches in flight are recorded, not lost. */
		if (mq_handle_frame(c, &frame) == -1)
			return mq_fail(c);
	}
}

int
mq_consume(mq_conn *c, const char *queue, int prefetch)
{
	if (!c->connected) {
		mq_set_err(c, "not connected");
		return -1;
	}
	watch_begin(c);
	amqp_basic_qos(c->st, MQ_CHANNEL, 0, (uint16_t)prefetch, 0);
	if (mq_check_reply(c, amqp_get_rpc_reply(c->st), "basic.qos") == -1) {
		watch_end(c);
		return mq_fail(c);
	}
	amqp_basic_consume(c->st, MQ_CHANNEL, amqp_cstring_bytes(queue),
	    amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	if (watch_end(c) | (mq_check_reply(c, amqp_get_rpc_reply(c->st),
	    "basic.consume") == -1))
		return mq_fail(c);
	return 0;
}

static void
mq_copy_prop(char *dst, size_t dstlen, int present, amqp_bytes_t b)
{
	size_t n = 0;

	if (present) {
		n = b.len < dstlen - 1 ? b.len : dstlen - 1;
		memcpy(dst, b.bytes, n);
	}
	dst[n] = '\0';
}

/* 1 if the table key k is the C string s. */
static int
mq_key_is(amqp_bytes_t k, const char *s)
{
	return k.len == strlen(s) && memcmp(k.bytes, s, k.len) == 0;
}

/* The first entry of the broker's x-death header (a list of tables,
 * latest death first) into d. */
static void
mq_read_death(struct mq_delivery *d, const amqp_field_value_t *v)
{
	const amqp_table_t *t;
	const amqp_table_entry_t *e;
	int i;

	if (v->kind != AMQP_FIELD_KIND_ARRAY || v->value.array.num_entries < 1 ||
	    v->value.array.entries[0].kind != AMQP_FIELD_KIND_TABLE)
		return;
	t = &v->value.array.entries[0].value.table;
	for (i = 0; i < t->num_entries; i++) {
		e = &t->entries[i];
		if (mq_key_is(e->key, "reason") &&
		    (e->value.kind == AMQP_FIELD_KIND_UTF8 ||
		    e->value.kind == AMQP_FIELD_KIND_BYTES))
			mq_copy_prop(d->death_reason, sizeof(d->death_reason), 1,
			    e->value.value.bytes);
		else if (mq_key_is(e->key, "queue") &&
		    (e->value.kind == AMQP_FIELD_KIND_UTF8 ||
		    e->value.kind == AMQP_FIELD_KIND_BYTES))
			mq_copy_prop(d->death_queue, sizeof(d->death_queue), 1,
			    e->value.value.bytes);
		else if (mq_key_is(e->key, "count") &&
		    e->value.kind == AMQP_FIELD_KIND_I64)
			d->death_count = e->value.value.i64;
		else if (mq_key_is(e->key, "count") &&
		    e->value.kind == AMQP_FIELD_KIND_I32)
			d->death_count = e->value.value.i32;
	}
}

/* Reads the headers the system sets (sequence, dead-letter reason, trace
 * context) and the broker's x-death. */
static void
mq_read_headers(struct mq_delivery *d, const amqp_basic_properties_t *p)
{
	const amqp_table_entry_t *e;
	int i;

	d->seq = -1;
	d->reason[0] = '\0';
	d->traceparent[0] = '\0';
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return;
	for (i = 0; i < p->headers.num_entries; i++) {
		e = &p->headers.entries[i];
		if (mq_key_is(e->key, "x-death"))
			mq_read_death(d, &e->value);
		else if (e->key.len == strlen(MQ_HDR_SEQ) &&
		    memcmp(e->key.bytes, MQ_HDR_SEQ, e->key.len) == 0) {
			if (e->value.kind == AMQP_FIELD_KIND_I64)
				d->seq = e->value.value.i64;
			else if (e->value.kind == AMQP_FIELD_KIND_U64)
				d->seq = (int64_t)e->value.value.u64;
			else if (e->value.kind == AMQP_FIELD_KIND_I32)
				d->seq = e->value.value.i32;
		} else if (e->key.len == strlen(MQ_HDR_DLQ_REASON) &&
		    memcmp(e->key.bytes, MQ_HDR_DLQ_REASON, e->key.len) == 0 &&
		    (e->value.kind == AMQP_FIELD_KIND_UTF8 ||
		    e->value.kind == AMQP_FIELD_KIND_BYTES)) {
			mq_copy_prop(d->reason, sizeof(d->reason), 1,
			    e->value.value.bytes);
		} else if (e->key.len == strlen(MQ_HDR_TRACEPARENT) &&
		    memcmp(e->key.bytes, MQ_HDR_TRACEPARENT, e->key.len) == 0 &&
		    (e->value.kind == AMQP_FIELD_KIND_UTF8 ||
		    e->value.kind == AMQP_FIELD_KIND_BYTES)) {
			mq_copy_prop(d->traceparent, sizeof(d->traceparent), 1,
			    e->value.value.bytes);
		}
	}
}

static void mq_fill(struct mq_delivery *d, struct mq_priv *p);

/* Clears d and allocates what a delivery will be read into; NULL (error
 * set) when not connected or out of memory. */
static struct mq_priv *
mq_delivery_new(mq_conn *c, struct mq_delivery *d)
{
	struct mq_priv *p;

	memset(d, 0, sizeof(*d));
	if (!c->connected) {
		mq_set_err(c, "not connected");
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		mq_set_err(c, "out of memory");
	return p;
}

int
mq_next(mq_conn *c, struct mq_delivery *d, int timeout_ms)
{
	struct mq_priv *p;
	amqp_rpc_reply_t r;
	amqp_frame_t frame;
	struct timeval tv;
	int rc;

	if ((p = mq_delivery_new(c, d)) == NULL)
		return -1;
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	amqp_maybe_release_buffers(c->st);
	r = amqp_consume_message(c->st, &p->env, &tv, 0);
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
	    r.library_error == AMQP_STATUS_TIMEOUT) {
		free(p);
		return 0;
	}
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
	    r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
		/* A frame other than a delivery: a close, or a cancel. */
		free(p);
		watch_begin(c);
		rc = amqp_simple_wait_frame(c->st, &frame);
		watch_end(c);
		if (rc != AMQP_STATUS_OK) {
			mq_set_err(c, "connection lost");
			return mq_fail(c);
		}
		if (frame.frame_type == AMQP_FRAME_METHOD &&
		    frame.payload.method.id == AMQP_BASIC_CANCEL_METHOD) {
			mq_set_err(c, "consumer cancelled by broker");
			return mq_fail(c);
		}
		if (frame.frame_type == AMQP_FRAME_METHOD &&
		    (frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD ||
		    frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD)) {
			/* Keep the broker's code and text (e.g. 320
			 * CONNECTION_FORCED on a broker shutdown). */
			memset(&r, 0, sizeof(r));
			r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
			r.reply = frame.payload.method;
			mq_check_reply(c, r, "consume");
			return mq_fail(c);
		}
		return 0;
	}
	if (mq_check_reply(c, r, "consume") == -1) {
		free(p);
		return mq_fail(c);
	}
	mq_fill(d, p);
	return 1;
}

int
mq_wait(mq_conn *c, int fd, int timeout_ms)
{
	struct pollfd p[2];
	nfds_t n = 1;
	int rc, got = 0;

	if (!c->connected) {
		mq_set_err(c, "not connected");
		return -1;
	}
	if (amqp_frames_enqueued(c->st) || amqp_data_in_buffer(c->st))
		return MQ_WAIT_BROKER;
	p[0].fd = amqp_get_sockfd(c->st);
	p[0].events = POLLIN;
	p[0].revents = 0;
	if (fd >= 0) {
		p[1].fd = fd;
		p[1].events = POLLIN;
		p[1].revents = 0;
		n = 2;
	}
	rc = poll(p, n, timeout_ms);
	if (rc == -1 && errno != EINTR) {
		mq_set_err(c, "poll: %s", strerror(errno));
		return -1;
	}
	if (rc <= 0)
		return 0;
	/* An error or a hang-up is the broker's too: mq_next says which. */
	if (p[0].revents != 0)
		got |= MQ_WAIT_BROKER;
	if (n == 2 && p[1].revents != 0)
		got |= MQ_WAIT_FD;
	return got;
}

/* A delivery (or a basic.get's message) in p, read into d, which owns p
 * from now on. */
static void
mq_fill(struct mq_delivery *d, struct mq_priv *p)
{
	d->tag = p->env.delivery_tag;
	d->redelivered = p->env.redelivered;
	d->body = p->env.message.body.bytes;
	d->len = p->env.message.body.len;
	mq_copy_prop(d->message_id, sizeof(d->message_id),
	    (p->env.message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0,
	    p->env.message.properties.message_id);
	mq_copy_prop(d->type, sizeof(d->type),
	    (p->env.message.properties._flags & AMQP_BASIC_TYPE_FLAG) != 0,
	    p->env.message.properties.type);
	mq_read_headers(d, &p->env.message.properties);
	mq_copy_prop(d->content_type, sizeof(d->content_type),
	    (p->env.message.properties._flags &
	    AMQP_BASIC_CONTENT_TYPE_FLAG) != 0,
	    p->env.message.properties.content_type);
	if (p->env.message.properties._flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
		d->delivery_mode = p->env.message.properties.delivery_mode;
	if (p->env.message.properties._flags & AMQP_BASIC_TIMESTAMP_FLAG)
		d->timestamp = p->env.message.properties.timestamp;
	d->priv = p;
}

void
mq_delivery_free(struct mq_delivery *d)
{
	struct mq_priv *p = d->priv;

	if (p != NULL) {
		amqp_destroy_envelope(&p->env);
		free(p);
	}
	memset(d, 0, sizeof(*d));
}

int
mq_get(mq_conn *c, const char *queue, struct mq_delivery *d)
{
	amqp_basic_get_ok_t *ok;
	struct mq_priv *p;
	amqp_rpc_reply_t r;
	int cut;

	if ((p = mq_delivery_new(c, d)) == NULL)
		return -1;
	amqp_maybe_release_buffers(c->st);
	watch_begin(c);
	r = amqp_basic_get(c->st, MQ_CHANNEL, amqp_cstring_bytes(queue), 0);
	if (r.reply_type == AMQP_RESPONSE_NORMAL &&
	    r.reply.id == AMQP_BASIC_GET_OK_METHOD) {
		ok = r.reply.decoded;
		p->env.channel = MQ_CHANNEL;
		p->env.delivery_tag = ok->delivery_tag;
		p->env.redelivered = ok->redelivered;
		r = amqp_read_message(c->st, MQ_CHANNEL, &p->env.message, 0);
		cut = watch_end(c);
		if (cut || mq_check_reply(c, r, "basic.get: message") == -1) {
			free(p);
			if (cut)
				mq_set_err(c, "basic.get: no answer within %d ms",
				    c->op_timeout_ms);
			return mq_fail(c);
		}
		mq_fill(d, p);
		return 1;
	}
	cut = watch_end(c);
	free(p);
	if (cut) {
		mq_set_err(c, "basic.get: no answer within %d ms",
		    c->op_timeout_ms);
		return mq_fail(c);
	}
	if (mq_check_reply(c, r, "basic.get") == -1)
		return mq_fail(c);
	return 0; /* basic.get-empty */
}

/* How a delivery is settled. */
enum mq_answer { MQ_ANSWER_ACK, MQ_ANSWER_REJECT, MQ_ANSWER_NACK };

/* Sends the answer to delivery tag (multiple, requeue as the method
 * takes them).  0 or -1. */
static int
mq_answer(mq_conn *c, enum mq_answer how, uint64_t tag, int multiple,
    int requeue)
{
	static const char *const names[] = { "ack", "reject", "nack" };
	int rc;

	if (!c->connected) {
		mq_set_err(c, "not connected");
		return -1;
	}
	watch_begin(c);
	if (how == MQ_ANSWER_ACK)
		rc = amqp_basic_ack(c->st, MQ_CHANNEL, tag, multiple);
	else if (how == MQ_ANSWER_REJECT)
		rc = amqp_basic_reject(c->st, MQ_CHANNEL, tag, requeue);
	else
		rc = amqp_basic_nack(c->st, MQ_CHANNEL, tag, multiple,
		    requeue);
	if (watch_end(c))
		rc = AMQP_STATUS_TIMEOUT;
	if (rc != AMQP_STATUS_OK) {
		mq_set_err(c, "%s: %s", names[how], amqp_error_string2(rc));
		return mq_fail(c);
	}
	return 0;
}

int
mq_nack(mq_conn *c, uint64_t tag, int multiple, int requeue)
{
	return mq_answer(c, MQ_ANSWER_NACK, tag, multiple, requeue);
}

int
mq_ack(mq_conn *c, uint64_t tag, int multiple)
{
	return mq_answer(c, MQ_ANSWER_ACK, tag, multiple, 0);
}

int
mq_reject(mq_conn *c, uint64_t tag, int requeue)
{
	return mq_answer(c, MQ_ANSWER_REJECT, tag, 0, requeue);
}

int
mq_heartbeat(mq_conn *c)
{
	amqp_frame_t hb;
	int rc;

	if (!c->connected) {
		mq_set_err(c, "not connected");
		return -1;
	}
	if (amqp_get_heartbeat(c->st) <= 0)
		return 0;
	memset(&hb, 0, sizeof(hb));
	hb.frame_type = AMQP_FRAME_HEARTBEAT;
	hb.channel = 0;
	watch_begin(c);
	rc = amqp_send_frame(c->st, &hb);
	if (watch_end(c))
		rc = AMQP_STATUS_TIMEOUT;
	if (rc != AMQP_STATUS_OK) {
		mq_set_err(c, "heartbeat: %s", amqp_error_string2(rc));
		return mq_fail(c);
	}
	return 0;
}

int
mq_purge(mq_conn *c, const char *queue, uint32_t *purged)
{
	amqp_queue_purge_ok_t *ok;

	if (!c->connected) {
		mq_set_err(c, "not connected");
		return -1;
	}
	watch_begin(c);
	ok = amqp_queue_purge(c->st, MQ_CHANNEL, amqp_cstring_bytes(queue));
	watch_end(c);
	if (mq_check_reply(c, amqp_get_rpc_reply(c->st), "queue.purge") == -1)
		return mq_fail(c);
	if (purged != NULL)
		*purged = ok != NULL ? ok->message_count : 0;
	return 0;
}

int
mq_queue_depth(mq_conn *c, const char *queue, uint32_t *messages,
    uint32_t *consumers)
{
	amqp_queue_declare_ok_t *ok;

	if (!c->connected) {
		mq_set_err(c, "not connected");
		return -1;
	}
	watch_begin(c);
	ok = amqp_queue_declare(c->st, MQ_CHANNEL, amqp_cstring_bytes(queue),
	    1, 0, 0, 0, amqp_empty_table);
	watch_end(c);
	if (mq_check_reply(c, amqp_get_rpc_reply(c->st), "passive declare") ==
	    -1 || ok == NULL)
		return mq_fail(c);
	if (messages != NULL)
		*messages = ok->message_count;
	if (consumers != NULL)
		*consumers = ok->consumer_count;
	return 0;
}

int
mq_queue_declare(mq_conn *c, const char *queue)
{
	if (!c->connected) {
		mq_set_err(c, "not connected");
		return -1;
	}
	watch_begin(c);
	amqp_queue_declare(c->st, MQ_CHANNEL, amqp_cstring_bytes(queue), 0, 1,
	    0, 0, amqp_empty_table);
	watch_end(c);
	if (mq_check_reply(c, amqp_get_rpc_reply(c->st), "queue.declare") ==
	    -1)
		return mq_fail(c);
	return 0;
}

int
mq_queue_delete(mq_conn *c, const char *queue)
{
	if (!c->connected) {
		mq_set_err(c, "not connected");
		return -1;
	}
	watch_begin(c);
	amqp_queue_delete(c->st, MQ_CHANNEL, amqp_cstring_bytes(queue), 0, 0);
	watch_end(c);
	if (mq_check_reply(c, amqp_get_rpc_reply(c->st), "queue.delete") ==
	    -1)
		return mq_fail(c);
	return 0;
}
