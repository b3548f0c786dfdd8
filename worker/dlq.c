/*
 * dlq.c - copies unhandleable messages to outbox.dlx with their reason.
 */
#include "dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Most bytes of a body quoted in the log. */
#define DLQ_LOG_BODY 512

struct dlq {
	mq_conn *pub;
	int timeout_ms;
};

struct dlq *
dlq_new(const struct mq_params *params, int confirm_timeout_ms)
{
	struct dlq *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	if ((q->pub = mq_new(params)) == NULL) {
		free(q);
		return NULL;
	}
	q->timeout_ms = confirm_timeout_ms;
	/* A broker under an alarm stops reading publishing connections: a
	 * copy's write, like its confirm, gives up after the timeout (the
	 * message is then rejected, and the queue dead-letters it). */
	mq_set_op_timeout(q->pub, confirm_timeout_ms);
	return q;
}

void
dlq_free(struct dlq *q)
{
	if (q == NULL)
		return;
	mq_free(q->pub);
	free(q);
}

void
dlq_service(struct dlq *q)
{
	if (mq_is_connected(q->pub) && mq_service(q->pub) == -1)
		log_debug("dead-letter connection closed: %s (reopened when "
		    "needed)", mq_error(q->pub));
}

/* The body as one printable log line: control bytes become '.', long
 * bodies are cut. */
static void
dlq_printable(const char *body, size_t len, char *out, size_t outlen)
{
	size_t i, n = len < outlen - 4 ? len : outlen - 4;
	unsigned char ch;

	for (i = 0; i < n; i++) {
		ch = (unsigned char)body[i];
		out[i] = ch < 0x20 || ch == 0x7f ? '.' : (char)ch;
	}
	if (n < len) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

/* The id to name a message by in the log: its AMQP message_id, else the
 * id of its body when the body could be decoded that far. */
static const char *
dlq_id(const struct item *it)
{
	if (it->d.message_id[0] != '\0')
		return it->d.message_id;
	if (it->ev.id[0] != '\0')
		return it->ev.id;
	return "(no id)";
}

/* Publishes the copies; each msgs[i].result says how it went. */
static void
dlq_publish(struct dlq *q, struct mq_msg *msgs, size_t n)
{
	struct mq_msg *again;
	size_t i, k;

	if (mq_is_connected(q->pub) && mq_publish_batch(q->pub, MQ_DLX,
	    MQ_QUEUE, msgs, n, q->timeout_ms) == 0)
		return;
	/* Not connected yet, or a connection idle for long was closed by
	 * the broker: once more on a fresh connection, for the copies not
	 * confirmed (a nacked or returned copy is not retried). */
	if (mq_connect(q->pub, 1) == -1) {
		log_warnx("dead-letter exchange unreachable: %s",
		    mq_error(q->pub));
		return;
	}
	if ((again = calloc(n, sizeof(*again))) == NULL)
		return;
	for (i = 0, k = 0; i < n; i++) {
		if (msgs[i].result == MQ_PENDING)
			again[k++] = msgs[i];
	}
	if (mq_publish_batch(q->pub, MQ_DLX, MQ_QUEUE, again, k,
	    q->timeout_ms) == -1)
		log_warnx("dead-letter publish failed: %s", mq_error(q->pub));
	for (i = 0, k = 0; i < n; i++) {
		if (msgs[i].result == MQ_PENDING)
			msgs[i].result = again[k++].result;
	}
	free(again);
}

int
dlq_settle(struct dlq *q, mq_conn *consumer, struct inbatch *b)
{
	char shown[DLQ_LOG_BODY + 4];
	struct mq_msg *msgs;
	struct item **its;
	struct item *it;
	size_t i, n = 0;
	int rc = 0;

	msgs = calloc(b->n, sizeof(*msgs));
	its = calloc(b->n, sizeof(*its));
	if (msgs == NULL || its == NULL) {
		free(msgs);
		free(its);
		/* No memory for the copies: the queue's own dead-lettering
		 * still takes them. */
		for (i = 0; i < b->n; i++) {
			it = &b->items[i];
			if (it->state != ITEM_BAD || it->settled)
				continue;
			if (mq_reject(consumer, it->d.tag, 0) == -1)
				return -1;
			it->settled = 1;
		}
		return 0;
	}
	for (i = 0; i < b->n; i++) {
		it = &b->items[i];
		if (it->state != ITEM_BAD || it->settled)
			continue;
		/* The original's two lines for a message it cannot handle. */
		dlq_printable(it->d.body, it->d.len, shown, sizeof(shown));
		log_warnx("Handle message error: %s", shown);
		log_warnx("ERR: %s", it->reason);
		msgs[n].body = it->d.body;
		msgs[n].len = it->d.len;
		msgs[n].message_id = it->d.message_id[0] ? it->d.message_id :
		    NULL;
		msgs[n].type = it->d.type[0] ? it->d.type : NULL;
		/* Keeps the relay's sequence; 0 when the message had none. */
		msgs[n].seq = it->d.seq > 0 ? it->d.seq : 0;
		msgs[n].reason = it->reason;
		msgs[n].traceparent = it->d.traceparent[0] ?
		    it->d.traceparent : NULL;
		/* Its publish time, not the copy's: the age of a message
		 * without a time in its id (common/inbox_age.h) survives a
		 * stay in the dead-letter queue. */
		msgs[n].timestamp = it->d.timestamp;
		its[n++] = it;
	}
	if (n == 0)
		goto out;
	dlq_publish(q, msgs, n);
	for (i = 0; i < n; i++) {
		it = its[i];
		if (msgs[i].result == MQ_ACKED) {
			log_info("dead-lettered message %s to %s: %s",
			    dlq_id(it), MQ_DLQ, it->reason);
			if (mq_ack(consumer, it->d.tag, 0) == -1) {
				rc = -1;
				break;
			}
		} else {
			log_warnx("could not copy message %s to %s; rejecting "
			    "it so that the queue dead-letters it", dlq_id(it),
			    MQ_DLX);
			if (mq_reject(consumer, it->d.tag, 0) == -1) {
				rc = -1;
				break;
			}
		}
		it->settled = 1;
		worker_metrics_dead(it->dead);
	}
out:
	free(msgs);
	free(its);
	return rc;
}
