/*
 * handlers.c - the event table and its handlers.  CustomerCreated writes
 * the customer's welcome_emails row (the mail to send).
 */
#include "handlers.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "rows.h"

/* ---- CustomerCreated ---- */

/* Characters (not bytes) of valid UTF-8 text, as a VARCHAR counts them. */
static size_t
utf8_chars(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	}
	return n;
}

/* Fetches member key of o as a non-empty string. */
static int
cc_string(const json_t *o, const char *key, const char **s, size_t *len,
    char *reason, size_t reasonlen)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v)) {
		snprintf(reason, reasonlen, "CustomerCreated payload: missing "
		    "or non-string \"%s\"", key);
		return -1;
	}
	*s = json_string_value(v);
	*len = json_string_length(v);
	if (*len == 0) {
		snprintf(reason, reasonlen, "CustomerCreated payload: empty "
		    "\"%s\"", key);
		return -1;
	}
	return 0;
}

static int
cc_decode(const json_t *o, void **out, char *reason, size_t reasonlen)
{
	const char *id, *email, *name;
	char cid[UID_LEN + 1];
	size_t idlen, elen, nlen;
	struct welcome *w;
	char *p;

	*out = NULL;
	if (!json_is_object(o)) {
		snprintf(reason, reasonlen, "CustomerCreated payload: not an "
		    "object");
		return -1;
	}
	if (cc_string(o, "id", &id, &idlen, reason, reasonlen) == -1 ||
	    cc_string(o, "email", &email, &elen, reason, reasonlen) == -1 ||
	    cc_string(o, "name", &name, &nlen, reason, reasonlen) == -1)
		return -1;
	if (!uid_canonical(id, idlen, cid)) {
		snprintf(reason, reasonlen, "CustomerCreated payload: \"id\" "
		    "is not a UUID");
		return -1;
	}
	if (elen > WELCOME_EMAIL_MAX) {
		snprintf(reason, reasonlen, "CustomerCreated payload: "
		    "\"email\" longer than %d bytes", WELCOME_EMAIL_MAX);
		return -1;
	}
	if (utf8_chars(name, nlen) > WELCOME_NAME_MAX) {
		snprintf(reason, reasonlen, "CustomerCreated payload: \"name\" "
		    "longer than %d characters", WELCOME_NAME_MAX);
		return -1;
	}
	/* One block: the struct, then the two strings. */
	w = malloc(sizeof(*w) + elen + 1 + nlen + 1);
	if (w == NULL) {
		snprintf(reason, reasonlen, "out of memory");
		return -1;
	}
	memcpy(w->customer_id, cid, UID_LEN + 1);
	p = (char *)(w + 1);
	w->email = p;
	memcpy(p, email, elen + 1);
	p += elen + 1;
	w->name = p;
	memcpy(p, name, nlen + 1);
	*out = w;
	return 0;
}

/* One row per new message; a customer who already has a welcome mail
 * (a second CustomerCreated for the same customer under another message
 * id) keeps the first one: one welcome mail per customer. */
static const struct rows_sql cc_insert = {
	"INSERT INTO welcome_emails (customer_id, message_id, email, name, "
	    "created_at) VALUES ",
	"(?, ?, ?, ?, UTC_TIMESTAMP(6))",
	" ON DUPLICATE KEY UPDATE customer_id = customer_id",
	4,
};

static int
cc_apply(db_conn *db, const struct handled *msgs, size_t n)
{
	struct db_val *v;
	const struct welcome *w;
	size_t i;
	int rc;

	if (n == 0)
		return DB_OK;
	if ((v = calloc(n * cc_insert.nparams, sizeof(*v))) == NULL)
		return DB_EOTHER;
	for (i = 0; i < n; i++) {
		w = msgs[i].data;
		v[i * 4 + 0] = DB_STRN(w->customer_id, UID_LEN);
		v[i * 4 + 1] = DB_STRN(msgs[i].message_id, UID_LEN);
		v[i * 4 + 2] = DB_STR(w->email);
		v[i * 4 + 3] = DB_STR(w->name);
	}
	rc = rows_exec(db, &cc_insert, v, n, NULL);
	free(v);
	return rc;
}

static void
cc_free(void *data)
{
	free(data);
}

/* ---- the table ---- */

static const struct handler handlers[] = {
	{ MSG_EVENT_CUSTOMER_CREATED, cc_decode, cc_apply, cc_free },
};

const struct handler *
handler_find(const char *event)
{
	size_t i;

	for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		if (strcmp(handlers[i].event, event) == 0)
			return &handlers[i];
	}
	return NULL;
}

size_t
handler_count(void)
{
	return sizeof(handlers) / sizeof(handlers[0]);
}

const struct handler *
handler_at(size_t i)
{
	return i < handler_count() ? &handlers[i] : NULL;
}
