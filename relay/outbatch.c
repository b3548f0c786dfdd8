/*
 * outbatch.c - bookkeeping of one batch of outbox rows (see outbatch.h).
 */
#include "outbatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
outbatch_init(struct outbatch *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	buf_init(&b->bodies, OUTBATCH_BODIES_MAX);
	b->rows = calloc(cap, sizeof(*b->rows));
	b->msgs = calloc(cap, sizeof(*b->msgs));
	b->bad = calloc(cap, sizeof(*b->bad));
	b->sent = calloc(cap, sizeof(*b->sent));
	if (b->rows == NULL || b->msgs == NULL || b->bad == NULL ||
	    b->sent == NULL)
		return -1;
	b->cap = cap;
	b->max_body = OUTBATCH_BODIES_MAX;
	return 0;
}

void
outbatch_set_max_body(struct outbatch *b, size_t max_body)
{
	b->max_body = max_body;
}

void
outbatch_free(struct outbatch *b)
{
	free(b->rows);
	free(b->msgs);
	free(b->bad);
	free(b->sent);
	buf_free(&b->bodies);
	memset(b, 0, sizeof(*b));
}

void
outbatch_reset(struct outbatch *b)
{
	b->n = 0;
	b->nbad = 0;
	b->nsent = 0;
	b->full = 0;
	b->refused_why[0] = '\0';
	buf_reset(&b->bodies);
}

static void
outbatch_add_bad(struct outbatch *b, int64_t seq, unsigned attempts,
    const char *reason)
{
	struct outbatch_bad *x = &b->bad[b->nbad++];

	x->seq = seq;
	x->attempts = attempts;
	snprintf(x->reason, sizeof(x->reason), "%s", reason);
}

size_t
outbatch_taken(const struct outbatch *b)
{
	return b->n + b->nbad + b->nsent;
}

int
outbatch_add_built(struct outbatch *b, const struct outbatch_row *row,
    const char *body)
{
	size_t before = b->bodies.len;

	if (outbatch_taken(b) >= b->cap ||
	    buf_append(&b->bodies, body, row->len) == -1) {
		b->bodies.len = before;
		b->full = 1;
		return -1;
	}
	b->rows[b->n] = *row;
	b->rows[b->n].off = before;
	b->n++;
	return 0;
}

int
outbatch_add_sent(struct outbatch *b, int64_t seq)
{
	if (outbatch_taken(b) >= b->cap) {
		b->full = 1;
		return -1;
	}
	b->sent[b->nsent++] = seq;
	return 0;
}

int
outbatch_add(struct outbatch *b, int64_t seq, unsigned attempts, const char *id,
    size_t idlen, const char *event, size_t evlen, const char *payload,
    size_t plen, const char *trace, size_t tracelen)
{
	char parent[TRACE_LEN + 1];
	struct outbatch_row *r;
	size_t before;

	if (outbatch_taken(b) >= b->cap) {
		b->full = 1;
		return -1;
	}
	if (!uid_valid(id, idlen)) {
		outbatch_add_bad(b, seq, attempts, "message_id is not a UUID");
		return 0;
	}
	if (!msg_event_name_valid(event, evlen)) {
		outbatch_add_bad(b, seq, attempts, "invalid event_name");
		return 0;
	}
	if (plen == 0) {
		outbatch_add_bad(b, seq, attempts, "empty payload");
		return 0;
	}
	r = &b->rows[b->n];
	memcpy(r->id, id, idlen);
	r->id[idlen] = '\0';
	memcpy(r->event, event, evlen);
	r->event[evlen] = '\0';
	before = b->bodies.len;
	if (msg_event_body(r->id, r->event, payload, plen, &b->bodies) == -1) {
		/* Over the cap: undo the partial body.  A first row that
		 * alone is too big can never be sent. */
		b->bodies.len = before;
		if (b->bodies.data != NULL)
			b->bodies.data[before] = '\0';
		if (outbatch_taken(b) == 0) {
			outbatch_add_bad(b, seq, attempts, "message body too "
			    "large");
			return 0;
		}
		b->full = 1;
		return -1;
	}
	if (b->bodies.len - before > b->max_body) {
		char why[128]; /* 58 characters and two numbers of up to 20 digits */

		snprintf(why, sizeof(why), "message body of %llu bytes is over "
		    "RELAY_MAX_MESSAGE_BYTES (%llu)",
		    (unsigned long long)(b->bodies.len - before),
		    (unsigned long long)b->max_body);
		b->bodies.len = before;
		b->bodies.data[before] = '\0';
		outbatch_add_bad(b, seq, attempts, why);
		return 0;
	}
	r->seq = seq;
	r->attempts = attempts;
	r->trace[0] = '\0';
	r->created = 0;
	if (trace != NULL && trace_valid(trace, tracelen) == 0) {
		memcpy(parent, trace, TRACE_LEN);
		parent[TRACE_LEN] = '\0';
		trace_child(parent, r->trace);
	}
	r->off = before;
	r->len = b->bodies.len - before;
	b->n++;
	return 0;
}

void
outbatch_seal(struct outbatch *b)
{
	struct mq_msg *m;
	size_t i;

	for (i = 0; i < b->n; i++) {
		m = &b->msgs[i];
		memset(m, 0, sizeof(*m));
		m->body = b->bodies.data + b->rows[i].off;
		m->len = b->rows[i].len;
		m->message_id = b->rows[i].id;
		m->type = b->rows[i].event;
		m->seq = b->rows[i].seq;
		m->traceparent = b->rows[i].trace[0] != '\0' ?
		    b->rows[i].trace : NULL;
		m->result = MQ_PENDING;
	}
}

void
outbatch_tally(const struct outbatch *b, struct outbatch_tally *t)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < b->n; i++) {
		switch (b->msgs[i].result) {
		case MQ_ACKED:
			t->acked++;
			break;
		case MQ_NACKED:
			t->nacked++;
			break;
		case MQ_RETURNED:
			t->returned++;
			break;
		case MQ_REFUSED:
			t->refused++;
			break;
		case MQ_PENDING:
			t->pending++;
			break;
		}
	}
}

int
outbatch_log_line(const struct outbatch *b, size_t max_ids, struct buf *out)
{
	size_t i, shown = 0, acked = 0;

	if (buf_append(out, "Published messages: [", 21) == -1)
		return -1;
	for (i = 0; i < b->n; i++) {
		if (b->msgs[i].result != MQ_ACKED)
			continue;
		acked++;
		if (shown == max_ids)
			continue;
		if ((shown > 0 && buf_append(out, " ", 1) == -1) ||
		    buf_append(out, b->rows[i].id, UID_LEN) == -1)
			return -1;
		shown++;
	}
	if (acked > shown && buf_appendf(out, "%s... (+%zu more)",
	    shown > 0 ? " " : "", acked - shown) == -1)
		return -1;
	return buf_append(out, "]", 1);
}

const char *
outbatch_result_reason(enum mq_result r)
{
	switch (r) {
	case MQ_NACKED:
		return "nacked by the broker";
	case MQ_RETURNED:
		return "returned by the broker: unroutable";
	case MQ_REFUSED:
		return "refused by the broker (channel closed)";
	case MQ_PENDING:
		return "no confirm from the broker";
	case MQ_ACKED:
		break;
	}
	return "";
}
