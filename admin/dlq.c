/*
 * dlq.c - outbox-admin dlq list / show / replay / purge: the dead-letter
 * queue outbox.dlq, with the admin's RabbitMQ login (read outbox.dlq,
 * write the default exchange).
 *
 * AMQP 0-9-1 has no browse: the messages are taken with basic.get and a
 * manual ack, on one channel, until the queue is empty or ADMIN_DLQ_MAX
 * are held; then what is not replayed goes back with one basic.nack
 * (multiple, requeue).  Nothing is lost whatever happens meanwhile: a
 * message held and not acked returns to the queue when the channel or
 * the connection closes, the admin killed included.  What changes
 * (README, "Admin"): the messages given back are flagged redelivered,
 * messages that came while the admin held the others sit behind them,
 * and a quorum queue counts one more delivery for each.
 *
 * Replay publishes a message back to queue outbox as the relay does
 * (default exchange, routing key outbox, persistent, mandatory, with
 * publisher confirms; the same body, message id, type, timestamp,
 * sequence and traceparent headers; without x-dlq-reason and x-death),
 * and acks its DLQ copy only after the broker confirmed the publish: a
 * crash in between leaves it in both queues, and the worker absorbs the
 * second copy as a duplicate.  A message the worker would refuse as too
 * old (common/inbox_age.h) is not replayed: it stays in the DLQ.
 *
 * Test-only hook, inert unless set: OUTBOX_ADMIN_TEST_CRASH=before-ack
 * makes replay kill itself (SIGKILL) once the confirms came, before any
 * ack (tests/it_admin.c).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "clock.h"
#include "inbox_age.h"
#include "log.h"
#include "msg.h"
#include "timefmt.h"
#include "trace.h"

enum dlq_state {
	DLQ_HELD,          /* taken, to be given back */
	DLQ_REPLAYED,      /* confirmed in outbox, its copy acked */
	DLQ_TOO_OLD,       /* refused: the worker would not apply it */
	DLQ_NOT_CONFIRMED, /* the broker nacked or returned the publish */
};

struct dlq_msg {
	struct mq_delivery d;
	char id[UID_LEN + 1]; /* the body's id, "" when undecodable */
	int chosen;
	enum dlq_state state;
	char why[512];
};

/* The messages taken from the DLQ, in queue order. */
struct dlq_held {
	struct dlq_msg *m;
	size_t n, cap;
	int bounded; /* stopped at ADMIN_DLQ_MAX: the queue may hold more */
	int missing; /* the queue does not exist (yet) */
};

/* Room for more messages in h.  0, or -1 (logged). */
static int
dlq_grow(struct dlq_held *h)
{
	size_t cap = h->cap == 0 ? 64 : h->cap * 2;
	struct dlq_msg *m = realloc(h->m, cap * sizeof(*m));

	if (m == NULL) {
		log_warnx("dlq: out of memory");
		return -1;
	}
	memset(m + h->cap, 0, (cap - h->cap) * sizeof(*m));
	h->m = m;
	h->cap = cap;
	return 0;
}

/* Takes up to max messages of the DLQ.  0, or -1 (logged; the broker
 * gives back what was taken when the connection goes). */
static int
dlq_take(mq_conn *mq, int max, struct dlq_held *h)
{
	struct msg_event ev;
	char why[256];
	int rc;

	memset(h, 0, sizeof(*h));
	while (h->n < (size_t)max) {
		struct dlq_msg *m;

		if (h->n == h->cap && dlq_grow(h) == -1)
			return -1;
		m = &h->m[h->n];
		rc = mq_get(mq, MQ_DLQ, &m->d);
		if (rc == -1 && h->n == 0 && strstr(mq_error(mq), "404")) {
			/* Nobody declared it yet: nothing was dead-lettered. */
			h->missing = 1;
			return 0;
		}
		if (rc == -1) {
			log_warnx("dlq: %s", mq_error(mq));
			return -1;
		}
		if (rc == 0)
			return 0;
		memset(&ev, 0, sizeof(ev));
		if (msg_decode(m->d.body, m->d.len, &ev, why, sizeof(why)) == 0)
			memcpy(m->id, ev.id, sizeof(m->id));
		msg_event_clear(&ev);
		h->n++;
	}
	h->bounded = 1;
	return 0;
}

/* Gives back every message still held (one nack: multiple, requeue).
 * 0 or -1 (logged: the broker gives them back when the connection
 * closes). */
static int
dlq_give_back(mq_conn *mq, struct dlq_held *h)
{
	uint64_t last = 0;
	size_t i;

	for (i = 0; i < h->n; i++)
		if (h->m[i].state != DLQ_REPLAYED && h->m[i].d.tag > last)
			last = h->m[i].d.tag;
	if (last == 0 || !mq_is_connected(mq))
		return 0;
	if (mq_nack(mq, last, 1, 1) == -1) {
		log_warnx("dlq: giving the messages back: %s", mq_error(mq));
		return -1;
	}
	return 0;
}

static void
dlq_held_free(struct dlq_held *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		mq_delivery_free(&h->m[i].d);
	free(h->m);
	memset(h, 0, sizeof(*h));
}

/* Why a message is in the DLQ: the worker's header and the broker's
 * x-death (e.g. delivery_limit from a quorum queue), into out. */
static void
dlq_reason(const struct mq_delivery *d, char *out, size_t outlen)
{
	if (d->death_reason[0] != '\0')
		snprintf(out, outlen, "%s%sbroker: %s from queue %s (%" PRId64
		    " time%s)", d->reason, d->reason[0] != '\0' ? "; " : "",
		    d->death_reason, d->death_queue, d->death_count,
		    d->death_count == 1 ? "" : "s");
	else if (d->reason[0] != '\0')
		snprintf(out, outlen, "%s", d->reason);
	else
		snprintf(out, outlen, "unknown (no x-dlq-reason, no x-death)");
}

/* The trace id of a valid traceparent, else "". */
static void
dlq_trace_id(const struct mq_delivery *d, char out[33])
{
	out[0] = '\0';
	if (trace_valid(d->traceparent, strlen(d->traceparent)) == 0)
		snprintf(out, 33, "%.32s", d->traceparent + 3);
}

static void
dlq_time(uint64_t ts, char *out, size_t outlen)
{
	struct timespec t = { (time_t)ts, 0 };

	if (ts == 0 || timefmt_rfc3339(&t, out, outlen) == -1)
		snprintf(out, outlen, "-");
}

/* s (n bytes, from the broker: any bytes) as a JSON string: as it is
 * when it is valid UTF-8, else as a log line shows it (log_visible);
 * "" and n 0: null. */
static json_t *
dlq_jstr(const char *s, size_t n)
{
	json_t *j;
	char *v;

	if (n == 0)
		return json_null();
	if ((j = json_stringn(s, n)) != NULL)
		return j;
	if ((v = malloc(4 * n + 8)) == NULL)
		return json_null();
	log_visible(s, n, v, 4 * n + 8);
	j = json_string(v);
	free(v);
	return j;
}

/* Prints s (n bytes, from the broker) so that it can neither break the
 * report's lines nor drive the terminal (log_visible); "-" when empty. */
static void
dlq_print(const char *s, size_t n)
{
	char small[256], *v = small;
	size_t cap = 4 * n + 8;

	if (n == 0) {
		fputs("-", stdout);
		return;
	}
	if (cap > sizeof(small) && (v = malloc(cap)) == NULL) {
		fputs("(out of memory)", stdout);
		return;
	}
	log_visible(s, n, v, cap > sizeof(small) ? cap : sizeof(small));
	fputs(v, stdout);
	if (v != small)
		free(v);
}

#define DLQ_PUTS(s) dlq_print((s), strlen(s))

/* The message as JSON (body: with its body text and its properties). */
static json_t *
dlq_json(const struct dlq_msg *m, int body)
{
	const struct mq_delivery *d = &m->d;
	char reason[512], trace[33], at[40];
	json_t *o = json_object(), *death = json_null();

	dlq_reason(d, reason, sizeof(reason));
	dlq_trace_id(d, trace);
	dlq_time(d->timestamp, at, sizeof(at));
	json_object_set_new(o, "message_id", dlq_jstr(d->message_id,
	    strlen(d->message_id)));
	json_object_set_new(o, "event", dlq_jstr(d->type, strlen(d->type)));
	json_object_set_new(o, "reason", dlq_jstr(reason, strlen(reason)));
	json_object_set_new(o, "dlq_reason", dlq_jstr(d->reason,
	    strlen(d->reason)));
	if (d->death_reason[0] != '\0') {
		death = json_object();
		json_object_set_new(death, "reason", dlq_jstr(d->death_reason,
		    strlen(d->death_reason)));
		json_object_set_new(death, "queue", dlq_jstr(d->death_queue,
		    strlen(d->death_queue)));
		json_object_set_new(death, "count",
		    json_integer(d->death_count));
	}
	json_object_set_new(o, "x_death", death);
	json_object_set_new(o, "trace_id", dlq_jstr(trace, strlen(trace)));
	json_object_set_new(o, "timestamp", d->timestamp != 0 ?
	    json_string(at) : json_null());
	json_object_set_new(o, "seq", d->seq >= 0 ? json_integer(d->seq) :
	    json_null());
	json_object_set_new(o, "redelivered", json_boolean(d->redelivered));
	json_object_set_new(o, "size", json_integer((json_int_t)d->len));
	if (body) {
		json_object_set_new(o, "traceparent", dlq_jstr(d->traceparent,
		    strlen(d->traceparent)));
		json_object_set_new(o, "content_type",
		    dlq_jstr(d->content_type, strlen(d->content_type)));
		json_object_set_new(o, "delivery_mode",
		    json_integer(d->delivery_mode));
		json_object_set_new(o, "body", d->len > 0 ?
		    dlq_jstr(d->body, d->len) : json_string(""));
	}
	return o;
}

/* The message as text: what it is and why, in two lines (body: its
 * properties and its body too). */
static void
dlq_text(const struct dlq_msg *m, int body)
{
	const struct mq_delivery *d = &m->d;
	char reason[512], trace[33], at[40];

	dlq_reason(d, reason, sizeof(reason));
	dlq_trace_id(d, trace);
	dlq_time(d->timestamp, at, sizeof(at));
	DLQ_PUTS(d->message_id);
	fputs("  ", stdout);
	DLQ_PUTS(d->type);
	printf("  %s  trace %s\n  reason: ", at, trace[0] != '\0' ? trace :
	    "-");
	DLQ_PUTS(reason);
	putchar('\n');
	if (!body)
		return;
	fputs("  ", stdout);
	if (d->seq >= 0)
		printf("seq %" PRId64 ", ", d->seq);
	printf("%zu bytes, delivery mode %d, content type ", d->len,
	    d->delivery_mode);
	DLQ_PUTS(d->content_type);
	fputs(", traceparent ", stdout);
	DLQ_PUTS(d->traceparent);
	fputs("\n  body: ", stdout);
	dlq_print(d->body, d->len);
	putchar('\n');
}

/* A message's name in a report: its message id, else its body's id. */
static void
dlq_name(const struct dlq_msg *m)
{
	if (m->d.message_id[0] != '\0')
		DLQ_PUTS(m->d.message_id);
	else if (m->id[0] != '\0')
		fputs(m->id, stdout);
	else
		fputs("(no message id)", stdout);
}

/* 1 when message m is one the operator named (its message id, or the
 * id in its body). */
static int
dlq_named(const struct dlq_msg *m, const char *want)
{
	return (m->d.message_id[0] != '\0' &&
	    args_id_match(want, m->d.message_id)) ||
	    (m->id[0] != '\0' && args_id_match(want, m->id));
}

/* Marks the chosen messages; reports (and counts) the names that match
 * none. */
static size_t
dlq_choose(struct dlq_held *h, const struct admin_args *a, json_t *missing)
{
	size_t i, k, nmissing = 0;
	int hit;

	for (i = 0; i < h->n; i++)
		h->m[i].chosen = a->all;
	for (k = 0; k < a->n; k++) {
		hit = 0;
		for (i = 0; i < h->n; i++) {
			if (dlq_named(&h->m[i], a->ids[k])) {
				h->m[i].chosen = 1;
				hit = 1;
			}
		}
		if (hit)
			continue;
		nmissing++;
		json_array_append_new(missing, dlq_jstr(a->ids[k],
		    strlen(a->ids[k])));
		if (!a->json) {
			DLQ_PUTS(a->ids[k]);
			printf(": not in %s%s\n", MQ_DLQ, h->bounded ?
			    " (among the first ADMIN_DLQ_MAX)" : "");
		}
	}
	return nmissing;
}

/* Publishes the chosen messages that are young enough back to outbox,
 * acks the copies whose publish the broker confirmed.  0, or -1 (the
 * connection failed: nothing more was acked, every copy not acked is
 * back in the DLQ, some may be in outbox as well). */
static int
dlq_republish(const struct admin_config *cfg, mq_conn *mq,
    struct dlq_held *h)
{
	struct mq_msg *msgs;
	size_t *idx, i, n = 0;
	int64_t now_ms = (int64_t)(clock_wall_s() * 1000.0);
	struct msg_age age;
	const char *hook;
	int rc = -1;

	msgs = calloc(h->n + 1, sizeof(*msgs));
	idx = calloc(h->n + 1, sizeof(*idx));
	if (msgs == NULL || idx == NULL) {
		log_warnx("dlq replay: out of memory");
		goto out;
	}
	for (i = 0; i < h->n; i++) {
		struct dlq_msg *m = &h->m[i];
		const struct mq_delivery *d = &m->d;
		const char *id = m->id[0] != '\0' ? m->id : d->message_id;

		if (!m->chosen)
			continue;
		/* The worker's own rule, on the same id and timestamp. */
		inbox_age(id, strlen(id), d->timestamp, now_ms, &age);
		if (inbox_too_old(&age, cfg->inbox_hours, m->why,
		    sizeof(m->why))) {
			m->state = DLQ_TOO_OLD;
			continue;
		}
		msgs[n].body = d->body;
		msgs[n].len = d->len;
		msgs[n].message_id = d->message_id[0] != '\0' ?
		    d->message_id : NULL;
		msgs[n].type = d->type[0] != '\0' ? d->type : NULL;
		msgs[n].seq = d->seq;
		msgs[n].traceparent = d->traceparent[0] != '\0' ?
		    d->traceparent : NULL;
		msgs[n].timestamp = d->timestamp;
		idx[n++] = i;
	}
	if (n > 0 && mq_publish_batch(mq, "", MQ_QUEUE, msgs, n,
	    cfg->confirm_timeout_ms) == -1) {
		log_warnx("dlq replay: publishing to %s: %s", MQ_QUEUE,
		    mq_error(mq));
		goto out;
	}
	hook = getenv("OUTBOX_ADMIN_TEST_CRASH");
	if (n > 0 && hook != NULL && strcmp(hook, "before-ack") == 0) {
		fprintf(stderr, "outbox-admin: test hook: %zu confirmed, "
		    "killed before the acks\n", n);
		fflush(NULL);
		raise(SIGKILL);
	}
	for (i = 0; i < n; i++) {
		struct dlq_msg *m = &h->m[idx[i]];

		if (msgs[i].result != MQ_ACKED) {
			m->state = DLQ_NOT_CONFIRMED;
			snprintf(m->why, sizeof(m->why), "the broker %s it",
			    msgs[i].result == MQ_RETURNED ? "could not route" :
			    "refused");
			continue;
		}
		if (mq_ack(mq, m->d.tag, 0) == -1) {
			log_warnx("dlq replay: removing %s from %s: %s (it is "
			    "in %s too: the worker absorbs the second copy)",
			    m->d.message_id, MQ_DLQ, mq_error(mq), MQ_QUEUE);
			goto out;
		}
		m->state = DLQ_REPLAYED;
	}
	rc = 0;
out:
	free(msgs);
	free(idx);
	return rc;
}

/* The replay's report; returns the exit status. */
static int
dlq_replay_report(const struct dlq_held *h, const struct admin_args *a,
    json_t *missing, size_t nmissing)
{
	static const char *const names[] = { "held", "replayed", "too_old",
	    "not_confirmed" };
	json_t *doc = json_object(), *list = json_array(), *o;
	size_t i, replayed = 0, left = 0;

	for (i = 0; i < h->n; i++) {
		const struct dlq_msg *m = &h->m[i];

		if (!m->chosen)
			continue;
		if (m->state == DLQ_REPLAYED)
			replayed++;
		else
			left++;
		if (a->json) {
			o = json_object();
			json_object_set_new(o, "message_id",
			    dlq_jstr(m->d.message_id,
			    strlen(m->d.message_id)));
			json_object_set_new(o, "result",
			    json_string(names[m->state]));
			json_object_set_new(o, "why", m->why[0] != '\0' ?
			    json_string(m->why) : json_null());
			json_array_append_new(list, o);
		} else if (m->state == DLQ_REPLAYED) {
			dlq_name(m);
			printf(": replayed to %s\n", MQ_QUEUE);
		} else {
			dlq_name(m);
			printf(": left in %s: %s\n", MQ_DLQ, m->why);
		}
	}
	if (a->json) {
		json_object_set_new(doc, "replayed",
		    json_integer((json_int_t)replayed));
		json_object_set_new(doc, "left",
		    json_integer((json_int_t)left));
		json_object_set_new(doc, "messages", list);
		json_object_set_new(doc, "not_found", json_incref(missing));
		json_object_set_new(doc, "bounded", json_boolean(h->bounded));
		admin_print_json(doc);
	} else {
		json_decref(list);
		json_decref(doc);
		printf("replayed %zu, left in %s %zu, not found %zu\n", replayed,
		    MQ_DLQ, left, nmissing);
	}
	return replayed > 0 && left == 0 && nmissing == 0 ? ADMIN_OK :
	    ADMIN_REFUSED;
}

/* dlq list and dlq show. */
static int
dlq_report(const struct dlq_held *h, const struct admin_args *a,
    json_t *missing, size_t nmissing)
{
	json_t *doc = json_object(), *list = json_array();
	int show = a->cmd == CMD_DLQ_SHOW;
	size_t i, n = 0;

	for (i = 0; i < h->n; i++) {
		if (show && !h->m[i].chosen)
			continue;
		n++;
		if (a->json)
			json_array_append_new(list, dlq_json(&h->m[i], show));
		else
			dlq_text(&h->m[i], show);
	}
	if (a->json) {
		json_object_set_new(doc, "count", json_integer((json_int_t)n));
		json_object_set_new(doc, "bounded", json_boolean(h->bounded));
		json_object_set_new(doc, "queue_exists",
		    json_boolean(!h->missing));
		json_object_set_new(doc, "messages", list);
		if (show)
			json_object_set_new(doc, "not_found",
			    json_incref(missing));
		admin_print_json(doc);
	} else {
		json_decref(list);
		json_decref(doc);
		if (!show)
			printf("%zu message%s in %s%s\n", n, n == 1 ? "" : "s",
			    MQ_DLQ, h->missing ? " (it does not exist yet)" :
			    h->bounded ? " (ADMIN_DLQ_MAX reached: there may "
			    "be more)" : "");
	}
	return show && nmissing > 0 ? ADMIN_REFUSED : ADMIN_OK;
}

/* dlq purge: asks on a terminal unless --yes; refuses without either. */
static int
dlq_purge(const struct admin_config *cfg, const struct admin_args *a)
{
	uint32_t ready = 0, purged = 0;
	char line[16];
	json_t *doc;
	mq_conn *mq;
	int rc;

	if ((mq = admin_mq(cfg, 0)) == NULL)
		return ADMIN_NO_SERVER;
	if (mq_queue_depth(mq, MQ_DLQ, &ready, NULL) == -1) {
		rc = strstr(mq_error(mq), "404") != NULL;
		if (rc)
			fprintf(stderr, "outbox-admin: %s does not exist: "
			    "nothing to purge\n", MQ_DLQ);
		else
			log_warnx("dlq purge: %s", mq_error(mq));
		mq_free(mq);
		return rc ? ADMIN_REFUSED : ADMIN_NO_SERVER;
	}
	if (!a->yes && !isatty(STDIN_FILENO)) {
		fprintf(stderr, "outbox-admin: dlq purge removes the %u "
		    "message%s of %s for good: confirm on a terminal, or pass "
		    "--yes\n", ready, ready == 1 ? "" : "s", MQ_DLQ);
		mq_free(mq);
		return ADMIN_REFUSED;
	}
	if (!a->yes) {
		fprintf(stderr, "Remove the %u message%s of %s for good? Type "
		    "yes: ", ready, ready == 1 ? "" : "s", MQ_DLQ);
		if (fgets(line, sizeof(line), stdin) == NULL ||
		    strcmp(line, "yes\n") != 0) {
			fprintf(stderr, "outbox-admin: not purged\n");
			mq_free(mq);
			return ADMIN_REFUSED;
		}
	}
	if (mq_purge(mq, MQ_DLQ, &purged) == -1) {
		log_warnx("dlq purge: %s", mq_error(mq));
		mq_free(mq);
		return ADMIN_NO_SERVER;
	}
	mq_free(mq);
	if (a->json) {
		doc = json_object();
		json_object_set_new(doc, "purged", json_integer(purged));
		admin_print_json(doc);
	} else {
		printf("purged %u message%s from %s\n", purged,
		    purged == 1 ? "" : "s", MQ_DLQ);
	}
	return ADMIN_OK;
}

int
admin_dlq(const struct admin_config *cfg, const struct admin_args *a)
{
	struct dlq_held h = { NULL, 0, 0, 0, 0 };
	json_t *missing = json_array();
	size_t nmissing;
	mq_conn *mq;
	int rc = ADMIN_NO_SERVER;

	if (a->cmd == CMD_DLQ_PURGE) {
		json_decref(missing);
		return dlq_purge(cfg, a);
	}
	/* Confirm mode: replay publishes on the channel it took them on. */
	if ((mq = admin_mq(cfg, a->cmd == CMD_DLQ_REPLAY)) == NULL)
		goto out;
	if (dlq_take(mq, cfg->dlq_max, &h) == -1)
		goto out;
	nmissing = dlq_choose(&h, a, missing);
	if (a->cmd == CMD_DLQ_REPLAY && dlq_republish(cfg, mq, &h) == -1)
		goto out;
	if (dlq_give_back(mq, &h) == -1)
		goto out;
	rc = a->cmd == CMD_DLQ_REPLAY ?
	    dlq_replay_report(&h, a, missing, nmissing) :
	    dlq_report(&h, a, missing, nmissing);
out:
	/* Closing gives back anything still held. */
	mq_free(mq);
	dlq_held_free(&h);
	json_decref(missing);
	return rc;
}
