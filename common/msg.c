/*
 * msg.c - encoding and strict decoding of event messages on jansson.
 */
#include "msg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"

int
msg_customer_json(const struct customer *c, struct buf *out)
{
	json_t *o;
	char *s;
	int rc = -1;

	o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", c->id, "email",
	    c->email, "name", c->name, "CreatedAt", c->created_at,
	    "UpdatedAt", c->updated_at);
	if (o == NULL)
		return -1;
	s = json_dumps(o, JSON_COMPACT);
	if (s != NULL && buf_append(out, s, strlen(s)) == 0)
		rc = 0;
	free(s);
	json_decref(o);
	return rc;
}

int
msg_event_name_valid(const char *name, size_t len)
{
	size_t i;
	char ch;

	if (len == 0 || len > MSG_EVENT_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		    ch == '-'))
			return 0;
	}
	return 1;
}

int
msg_event_body(const char *msg_id, const char *event, const char *payload,
    size_t payload_len, struct buf *out)
{
	/* Built as text: the id and event name need no escaping (checked),
	 * and the payload is already JSON, so no parse is needed on the
	 * relay's hot path. */
	if (!uid_valid(msg_id, strlen(msg_id)) ||
	    !msg_event_name_valid(event, strlen(event)) || payload_len == 0)
		return -1;
	if (buf_appendf(out, "{\"id\":\"%s\",\"event_name\":\"%s\",\"payload\":",
	    msg_id, event) == -1 ||
	    buf_append(out, payload, payload_len) == -1 ||
	    buf_append(out, ",\"is_processed\":false}", 22) == -1)
		return -1;
	return 0;
}

void
msg_event_clear(struct msg_event *ev)
{
	free(ev->payload);
	json_decref(ev->payload_json);
	memset(ev, 0, sizeof(*ev));
}

const char *
msg_event_payload(struct msg_event *ev)
{
	if (ev->payload == NULL && ev->payload_json != NULL) {
		ev->payload = json_dumps(ev->payload_json, JSON_COMPACT);
		ev->payload_len = ev->payload != NULL ? strlen(ev->payload) : 0;
	}
	return ev->payload;
}

int
msg_decode(const char *body, size_t len, struct msg_event *out,
    char *reason, size_t reasonlen)
{
	json_t *root, *v;
	json_error_t jerr;
	const char *key, *s;
	size_t n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (len > MSG_BODY_MAX) {
		snprintf(reason, reasonlen, "body too large (%zu bytes)", len);
		return -1;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(reason, reasonlen, "malformed JSON: %s (at byte %d)",
		    jerr.text, jerr.position);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(reason, reasonlen, "body is not a JSON object");
		goto out;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, "id") != 0 && strcmp(key, "event_name") != 0 &&
		    strcmp(key, "payload") != 0 &&
		    strcmp(key, "is_processed") != 0) {
			snprintf(reason, reasonlen, "unknown field \"%.64s\"",
			    key);
			goto out;
		}
	}
	v = json_object_get(root, "id");
	if (!json_is_string(v)) {
		snprintf(reason, reasonlen, "missing or non-string \"id\"");
		goto out;
	}
	s = json_string_value(v);
	n = json_string_length(v);
	/* In lower case: the worker compares ids byte by byte. */
	if (!uid_canonical(s, n, out->id)) {
		snprintf(reason, reasonlen, "\"id\" is not a UUID");
		goto out;
	}
	v = json_object_get(root, "event_name");
	if (!json_is_string(v)) {
		snprintf(reason, reasonlen,
		    "missing or non-string \"event_name\"");
		goto out;
	}
	s = json_string_value(v);
	n = json_string_length(v);
	if (!msg_event_name_valid(s, n)) {
		snprintf(reason, reasonlen, "invalid \"event_name\"");
		goto out;
	}
	memcpy(out->event_name, s, n + 1);
	v = json_object_get(root, "is_processed");
	if (v != NULL && !json_is_boolean(v)) {
		snprintf(reason, reasonlen, "\"is_processed\" is not a "
		    "boolean");
		goto out;
	}
	v = json_object_get(root, "payload");
	if (!json_is_object(v)) {
		snprintf(reason, reasonlen, "missing or non-object "
		    "\"payload\"");
		goto out;
	}
	/* Kept as decoded: its text is made only when asked for
	 * (msg_event_payload), and a handler reads the object itself. */
	out->payload_json = json_incref(v);
	/* Optional: a missing or odd CreatedAt is the handler's business. */
	v = json_object_get(v, "CreatedAt");
	if (json_is_string(v) &&
	    timefmt_parse_rfc3339(json_string_value(v), &out->created) == 0)
		out->has_created = 1;
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		msg_event_clear(out);
	return rc;
}
