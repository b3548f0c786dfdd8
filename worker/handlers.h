/*
 * handlers.h - what the worker does for each event: a table with one row
 * per event name.  Adding an event type is one row (and its functions).
 *
 * A handler has two halves:
 *  - decode: checks and decodes the payload, before any transaction.  A
 *    payload it refuses sends the message to the dead-letter queue.
 *  - apply: writes the effects of several new messages (never seen
 *    before) inside the worker's open transaction, which also records
 *    their ids in processed_messages: both commit together or not at all.
 */
#ifndef OUTBOX_WORKER_HANDLERS_H
#define OUTBOX_WORKER_HANDLERS_H

#include <stddef.h>

#include "db.h"
#include "msg.h"
#include "uid.h"

/* One new message handed to apply. */
struct handled {
	const char *message_id; /* UUID text */
	const void *data;       /* what decode returned */
};

struct handler {
	const char *event;
	/* Decodes payload (the message's "payload", a JSON object that
	 * msg_decode read strictly: no duplicate keys, no NUL in strings).
	 * 0 with *out set (release it with free_data), or -1 with a
	 * reason. */
	int (*decode)(const struct json_t *payload, void **out, char *reason,
	    size_t reasonlen);
	/* Writes the effects of msgs[0..n) in the open transaction.
	 * Returns a db_rc (DB_OK when done). */
	int (*apply)(db_conn *db, const struct handled *msgs, size_t n);
	/* Releases what decode returned; NULL is a no-op. */
	void (*free_data)(void *data);
};

/* The row for event (NUL-terminated), or NULL when there is none. */
const struct handler *handler_find(const char *event);

/* Number of rows of the table and row i, for iterating. */
size_t handler_count(void);
const struct handler *handler_at(size_t i);

/* ---- CustomerCreated ---- */

/* Longest email and name a welcome mail takes: the columns' sizes. */
#define WELCOME_EMAIL_MAX 254 /* bytes */
#define WELCOME_NAME_MAX 255  /* characters */

/* The decoded payload of CustomerCreated: one allocation, owned by the
 * caller of decode (free with handler's free_data). */
struct welcome {
	char customer_id[UID_LEN + 1];
	char *email;
	char *name;
};

#endif
