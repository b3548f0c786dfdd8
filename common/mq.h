/*
 * mq.h - RabbitMQ (AMQP 0-9-1) connection on rabbitmq-c: topology,
 * pipelined publishing with publisher confirms, consuming with manual
 * acks.  The only interface to the broker: no other file includes
 * <amqp.h>.  A connection belongs to one thread.
 *
 * Topology (SPEC section 7), declared by mq_declare_topology:
 *   exchange outbox.dlx  fanout, durable
 *   queue    outbox      durable, dead-letters to exchange outbox.dlx
 *   queue    outbox.dlq  durable, bound to outbox.dlx
 * (classic, or quorum queues: RABBITMQ_QUEUE_TYPE).
 */
#ifndef OUTBOX_MQ_H
#define OUTBOX_MQ_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

#define MQ_QUEUE "outbox"
#define MQ_DLX "outbox.dlx"
#define MQ_DLQ "outbox.dlq"
/* Header carrying the outbox sequence number of a message. */
#define MQ_HDR_SEQ "x-outbox-seq"
/* Header carrying why a message was dead-lettered. */
#define MQ_HDR_DLQ_REASON "x-dlq-reason"
/* Header carrying the W3C trace context of a message (common/trace.h). */
#define MQ_HDR_TRACEPARENT "traceparent"

/* Most hosts in RABBITMQ_HOSTS. */
#define MQ_HOSTS_MAX 16

struct mq_params {
	char host[256];
	char hosts[2048]; /* RABBITMQ_HOSTS: "" or host[:port],... */
	char user[128];
	char pass[256];
	char vhost[128];
	int port;
	int connect_timeout_s;
	int heartbeat_s;
	int queue_type;     /* enum mq_queue_type */
	int delivery_limit; /* quorum queues: x-delivery-limit */
};

/* RABBITMQ_QUEUE_TYPE: the type of queues outbox and outbox.dlq. */
enum mq_queue_type { MQ_CLASSIC, MQ_QUORUM };
extern const char *const mq_queue_type_names[];

/* Config rows for struct mq_params member M of config struct T. */
#define MQ_CFG_ROWS(T, M)                                                   \
	CFG_ROW_STR("RABBITMQ_HOST", T, M.host, "127.0.0.1", 1,            \
	    "RabbitMQ host"),                                               \
	CFG_ROW_INT("RABBITMQ_PORT", T, M.port, "5672", 1, 65535,          \
	    "RabbitMQ AMQP port"),                                          \
	CFG_ROW_STR("RABBITMQ_HOSTS", T, M.hosts, "", 0,                   \
	    "brokers tried in turn, host[:port],... (port: RABBITMQ_PORT; " \
	    "empty: RABBITMQ_HOST alone)"),                                 \
	CFG_ROW_STR("RABBITMQ_USER", T, M.user, "guest", 1,                \
	    "RabbitMQ user"),                                               \
	CFG_ROW_SECRET("RABBITMQ_PASS", T, M.pass, "guest",                \
	    "RabbitMQ password"),                                           \
	CFG_ROW_STR("RABBITMQ_VHOST", T, M.vhost, "/", 1,                  \
	    "RabbitMQ virtual host"),                                       \
	CFG_ROW_INT("RABBITMQ_CONNECT_TIMEOUT", T, M.connect_timeout_s,    \
	    "5", 1, 60, "seconds to wait for a broker connection"),         \
	CFG_ROW_INT("RABBITMQ_HEARTBEAT", T, M.heartbeat_s, "30", 0, 600,  \
	    "AMQP heartbeat in seconds (0: off)"),                          \
	CFG_ROW_ENUM("RABBITMQ_QUEUE_TYPE", T, M.queue_type, "classic",    \
	    mq_queue_type_names, "type of queues outbox and outbox.dlq "    \
	    "(classic or quorum)"),                                         \
	CFG_ROW_INT("RABBITMQ_DELIVERY_LIMIT", T, M.delivery_limit, "20",  \
	    1, 1000000, "quorum queues: deliveries of a message before the "\
	    "broker dead-letters it (x-delivery-limit)")

typedef struct mq_conn mq_conn;

/* One broker of the host list. */
struct mq_host {
	char host[256];
	int port;
};

/* The host list of p: RABBITMQ_HOSTS split on commas, each element
 * host[:port] (the port defaults to p->port; an IPv6 address is
 * refused), or, when it is empty, p->host:p->port alone.  Returns the
 * number of hosts (1 .. max), or -1 with a message naming the setting
 * in err (an empty element, a bad port, too many hosts). */
int mq_hosts_parse(const struct mq_params *p, struct mq_host *out,
    size_t max, char *err, size_t errlen);
/* The daemons' check of their configuration at start: mq_hosts_parse,
 * the list discarded.  0 or -1. */
int mq_params_check(const struct mq_params *p, char *err, size_t errlen);
/* Where mq_connect starts after host k (of n) was lost: the one after
 * it, round-robin. */
size_t mq_host_next(size_t k, size_t n);

/* Outcome of one published message. */
enum mq_result {
	MQ_PENDING = 0, /* no confirm yet */
	MQ_ACKED,       /* the broker took responsibility for it */
	MQ_NACKED,      /* refused (e.g. queue full with reject-publish) */
	MQ_RETURNED,    /* unroutable (mandatory) */
	MQ_REFUSED,     /* the broker closed the channel over it (set by
	                 * the caller that found out which message it was) */
};

struct mq_msg {
	/* in */
	const char *body;
	size_t len;
	const char *message_id; /* unique within a batch */
	const char *type;       /* event name */
	int64_t seq;            /* outbox sequence, sent as a header (< 0:
	                         * none, e.g. a replayed message without) */
	const char *reason;     /* NULL, or the dead-letter reason header */
	const char *traceparent; /* NULL, or the traceparent header */
	uint64_t timestamp;     /* seconds since the epoch; 0: now */
	/* out */
	enum mq_result result;
};

struct mq_delivery {
	uint64_t tag;
	int redelivered;
	const char *body; /* owned by the delivery */
	size_t len;
	char message_id[128];
	char type[128];
	int64_t seq;      /* MQ_HDR_SEQ header, -1 when absent */
	char reason[256]; /* MQ_HDR_DLQ_REASON header, "" when absent */
	char content_type[64]; /* "" when absent */
	int delivery_mode;     /* 2: persistent; 0 when absent */
	uint64_t timestamp;    /* seconds since the epoch; 0 when absent */
	char traceparent[64];  /* MQ_HDR_TRACEPARENT header, "" when absent */
	/* The broker's own dead-lettering (the x-death header, its first
	 * entry: the latest): why ("rejected", "expired", "maxlen",
	 * "delivery_limit"), from which queue, how many times; "", "", 0
	 * when absent. */
	char death_reason[32];
	char death_queue[128];
	int64_t death_count;
	void *priv;
};

/* A connection handle; does not connect yet.  NULL when out of memory. */
mq_conn *mq_new(const struct mq_params *p);
/* Closes and frees; NULL is a no-op. */
void mq_free(mq_conn *c);

/* Connects, logs in, opens channel 1.  confirm: put it in confirm mode.
 * Tries the hosts of the list in turn, once each (each with
 * RABBITMQ_CONNECT_TIMEOUT), starting with the one after the host whose
 * connection was lost last (the first host at the first connect); logs
 * the host it connected to (INFO) and, after a loss, the lost host and
 * the next (WARN).  0, or -1 when no host answered (reason in mq_error:
 * the last host's error). */
int mq_connect(mq_conn *c, int confirm);
/* The index in the host list of the broker c is connected to, -1 when
 * not connected; *name (may be NULL) gets its "host:port". */
int mq_host_index(const mq_conn *c, const char **name);
void mq_disconnect(mq_conn *c);
/* With several hosts: closes the connection, so that the next
 * mq_connect starts with the next host, and sets mq_error to why; 1.
 * With one host, or not connected: nothing, 0.  For a broker node that
 * answers but refuses everything (a quorum queue's channel that nacks
 * every publish after a leader change, until the connection is new). */
int mq_move_on(mq_conn *c, const char *why);
int mq_is_connected(const mq_conn *c);
const char *mq_error(const mq_conn *c);
/* The reply code of the broker's last close of our channel (it refused
 * something we sent: 406 a message over its max_message_size, 403 an
 * exchange we may not publish to...), then 0 until the next one.  After
 * such a close the connection stays up with the channel open again (in
 * confirm mode if it was); what was in flight has no confirm. */
unsigned mq_take_refusal(mq_conn *c);
/* 1 while the broker has blocked publishing on this connection (a memory
 * or disk alarm: connection.blocked, asked for at login); why says the
 * broker's reason.  Seen when the connection is read (mq_service,
 * mq_publish_wait) or, during a write the broker stopped reading, by the
 * watchdog (which then cuts the write: the connection is closed).  Stays
 * 1 after that loss, until the next mq_connect. */
int mq_blocked(const mq_conn *c, const char **why);
/* Gives up on the connection (closed, its batches in flight without
 * confirms), mq_error saying why.  Returns -1. */
int mq_give_up(mq_conn *c, const char *why);

/* No broker call writes longer than ms (default 30 s): a watchdog thread
 * shuts the socket of a call past it down, the call fails and the
 * connection is closed. */
void mq_set_op_timeout(mq_conn *c, int ms);
/* The process's stop flag: once it is set, every broker call in
 * progress gets one more second at most (writes and confirm waits
 * alike), so that a stop never waits on a broker that stopped reading. */
void mq_watch_stop(volatile sig_atomic_t *stop);

/* Declares the topology above (idempotent), the queues of
 * RABBITMQ_QUEUE_TYPE: quorum ones with x-queue-type=quorum, and outbox
 * with x-delivery-limit, x-dead-letter-strategy=at-least-once and
 * x-overflow=reject-publish.  0 or -1; when a queue exists with other
 * arguments (PRECONDITION_FAILED, e.g. a classic outbox and quorum
 * asked), mq_error names RABBITMQ_QUEUE_TYPE, the queue and the broker's
 * words, and the connects that follow log at debug level only, until a
 * declaration succeeds. */
int mq_declare_topology(mq_conn *c);

/* Publishes n messages persistent, mandatory, to exchange/routing key,
 * pipelined, then reads confirms until every message has a result or
 * timeout_ms passes.  Returns 0 when every message has a result (look at
 * each .result), -1 on a connection or protocol error or a timeout: the
 * connection is then closed and messages still MQ_PENDING must be taken
 * as not published.  Same as mq_publish_start + mq_publish_wait. */
int mq_publish_batch(mq_conn *c, const char *exchange, const char *rkey,
    struct mq_msg *msgs, size_t n, int timeout_ms);

struct buf;
/* Appends to out the frames of one basic.publish of m, mandatory, on the
 * publishing channel: method, content header with m's properties (SPEC
 * section 7), body in frames of at most frame_max bytes; byte for byte
 * what amqp_basic_publish writes.  mq_publish_start writes a batch's
 * frames this way, in bulk.  0, or -1 with out unchanged (errno
 * EMSGSIZE: a name or property too long for AMQP, or frame_max too
 * small; ENOMEM). */
int mq_frame_publish(struct buf *out, size_t frame_max, const char *exchange,
    const char *rkey, const struct mq_msg *m);

/* Batches a connection keeps in flight at most. */
#define MQ_INFLIGHT_MAX 8

/* The two halves of mq_publish_batch, so that a caller keeps the broker
 * busy with one batch while it prepares or records another.
 * mq_publish_start publishes the batch and returns without waiting: the
 * connection keeps a pointer to msgs, which must stay untouched until
 * mq_publish_wait(msgs) returned or the connection failed.  Confirms
 * that arrive for any batch in flight (in mq_publish_wait or
 * mq_service) are recorded in its .result.  At most MQ_INFLIGHT_MAX
 * batches at once.  0, or -1 (on a connection error the connection is
 * closed and every batch in flight is forgotten: what is still
 * MQ_PENDING must be taken as not published). */
int mq_publish_start(mq_conn *c, const char *exchange, const char *rkey,
    struct mq_msg *msgs, size_t n);
/* A fence for what this connection publishes (the binlog relay's leader
 * lease): from the moment clock_lease_ms reaches fence_ms,
 * mq_publish_start writes no further message: it fails, the connection
 * is closed (what is in flight must be taken as not published), and
 * mq_fenced says why.  Checked before each write of the batch's frames
 * (64 KiB at most), so a caller stopped in the middle of a batch sends
 * nothing more once it wakes after the fence, save the one write it was
 * making; what was written before may still reach the broker after it.
 * It stays across reconnects; 0 lifts it (the default). */
void mq_set_fence(mq_conn *c, long long fence_ms);
/* 1 when the last mq_publish_start failed at the fence, else 0. */
int mq_fenced(const mq_conn *c);

/* Reads confirms until every message of the batch msgs (n messages,
 * started earlier on c) has a result, or timeout_ms passes.  Returns as
 * mq_publish_batch (the batch is then no longer in flight), or 1 when the
 * broker blocks publishing (mq_blocked) and no confirm came for a moment:
 * the batch is still in flight, call again (with a new timeout: the
 * broker holds what it read until its alarm is over). */
int mq_publish_wait(mq_conn *c, struct mq_msg *msgs, size_t n,
    int timeout_ms);

/* Sends and receives what is due (heartbeats, confirms of batches in
 * flight) without blocking; call it while idle.  0, or -1 if the
 * connection is gone. */
int mq_service(mq_conn *c);

/* Starts consuming queue with manual acks and the given prefetch. */
int mq_consume(mq_conn *c, const char *queue, int prefetch);
/* Waits up to timeout_ms for a delivery.  1: *d filled (release with
 * mq_delivery_free), 0: nothing yet, -1: connection error. */
int mq_next(mq_conn *c, struct mq_delivery *d, int timeout_ms);
/* Waits up to timeout_ms (in one poll: rabbitmq-c's own waits round the
 * last millisecond down to polls of 0 ms, a busy loop) until the broker
 * connection has something to read (bytes the library already holds
 * count) or fd (-1: none) is readable.  MQ_WAIT_BROKER | MQ_WAIT_FD as
 * they are, 0 after the timeout or a signal, -1 not connected or a
 * failed poll. */
#define MQ_WAIT_BROKER 1
#define MQ_WAIT_FD 2
int mq_wait(mq_conn *c, int fd, int timeout_ms);
void mq_delivery_free(struct mq_delivery *d);
/* basic.get: takes one message of queue with a manual ack, as a
 * consumer's delivery (settle it with mq_ack, mq_reject or mq_nack).
 * 1: *d filled (release with mq_delivery_free), 0: the queue is empty,
 * -1: an error (a missing queue, a refusal: the connection is closed,
 * and every message it held goes back to its queue). */
int mq_get(mq_conn *c, const char *queue, struct mq_delivery *d);
/* basic.nack: tag (and every unsettled one before it when multiple) back
 * to its queue (requeue 1, flagged redelivered) or to the queue's
 * dead-letter exchange (0).  0 or -1. */
int mq_nack(mq_conn *c, uint64_t tag, int multiple, int requeue);
/* Acknowledges tag (and all before it when multiple).  0 or -1. */
int mq_ack(mq_conn *c, uint64_t tag, int multiple);
/* Rejects tag; requeue 0 sends it to the queue's dead-letter exchange. */
int mq_reject(mq_conn *c, uint64_t tag, int requeue);
/* Sends one heartbeat frame now without reading anything: keeps the
 * connection of a consumer alive while it holds deliveries and does not
 * call mq_next (e.g. while it retries a database commit).  No-op when
 * heartbeats are off.  0 or -1 (connection gone). */
int mq_heartbeat(mq_conn *c);
/* Empties queue; *purged (may be NULL) receives the count removed.
 * 0 or -1.  For tests and operators. */
int mq_purge(mq_conn *c, const char *queue, uint32_t *purged);
/* Passive declare: the ready-message and consumer counts of queue (not
 * counting unacknowledged deliveries).  -1 if it does not exist (the
 * broker then closes the channel: the connection is closed). */
int mq_queue_depth(mq_conn *c, const char *queue, uint32_t *messages,
    uint32_t *consumers);
/* Declares a durable queue without arguments (idempotent).  0 or -1.
 * For tests and operators. */
int mq_queue_declare(mq_conn *c, const char *queue);
/* Deletes queue and the messages in it (a missing queue is not an
 * error).  0 or -1.  For tests and operators. */
int mq_queue_delete(mq_conn *c, const char *queue);

#endif
