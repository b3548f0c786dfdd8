/*
 * msg.h - the event message schema, in one place for app, relay and worker.
 *
 * Customer JSON (as the original's Go struct encodes it):
 *   {"id":"<uuid>","email":"...","name":"...","CreatedAt":"<RFC 3339>",
 *    "UpdatedAt":"<RFC 3339>"}
 * Message body (the original's outbox row as JSON):
 *   {"id":"<message uuid>","event_name":"CustomerCreated",
 *    "payload":<customer>,"is_processed":false}
 */
#ifndef OUTBOX_MSG_H
#define OUTBOX_MSG_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "uid.h"

#define MSG_EVENT_CUSTOMER_CREATED "CustomerCreated"
#define MSG_EVENT_NAME_MAX 64
/* Largest message body the worker accepts. */
#define MSG_BODY_MAX (256 * 1024)

struct customer {
	char id[UID_LEN + 1];
	const char *email; /* borrowed */
	const char *name;  /* borrowed */
	char created_at[32]; /* RFC 3339 */
	char updated_at[32];
};

/* Appends the customer's compact JSON to out.  0 or -1. */
int msg_customer_json(const struct customer *c, struct buf *out);

/* 1 if name is a valid event name (1..64 of [A-Za-z0-9_.-]). */
int msg_event_name_valid(const char *name, size_t len);

/* Appends the message body for an outbox row to out.  payload is the
 * row's JSON text (valid JSON, as the database guarantees); event must
 * pass msg_event_name_valid.  0 or -1. */
int msg_event_body(const char *msg_id, const char *event, const char *payload,
    size_t payload_len, struct buf *out);

struct json_t;

/* A decoded message.  Owns what it points to; free with
 * msg_event_clear. */
struct msg_event {
	char id[UID_LEN + 1];
	char event_name[MSG_EVENT_NAME_MAX + 1];
	/* The payload object, as decoded (a reference of the event's): a
	 * handler reads it without parsing it again. */
	struct json_t *payload_json;
	/* Its compact JSON text: NULL until msg_event_payload made it. */
	char *payload;
	size_t payload_len;
	/* The payload's "CreatedAt" (RFC 3339, the app's clock at the
	 * request), when it has a valid one: for the worker's lag metric
	 * only, never checked strictly. */
	int has_created;
	struct timespec created;
};

/* Strictly decodes a body: a JSON object (no trailing bytes, no duplicate
 * keys) with "id" a UUID string, "event_name" a valid event name and
 * "payload" an object; "is_processed", if present, a boolean; nothing
 * else.  Returns 0, or -1 with a human-readable reason. */
int msg_decode(const char *body, size_t len, struct msg_event *out,
    char *reason, size_t reasonlen);
/* The payload as compact JSON text (made on the first call, kept in
 * ev->payload, length in ev->payload_len), or NULL when out of memory. */
const char *msg_event_payload(struct msg_event *ev);
void msg_event_clear(struct msg_event *ev);

#endif
