/*
 * fuzz_msg.c - libFuzzer harness for the worker's message decoder
 * (common/msg.c): strict decoding, and encode/decode round trips.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_event ev, back;
	char reason[256];
	struct buf b;

	if (msg_decode((const char *)data, size, &ev, reason,
	    sizeof(reason)) != 0)
		return 0;
	/* A decoded message encodes to a body that decodes to the same. */
	buf_init(&b, MSG_BODY_MAX * 2);
	if (msg_event_payload(&ev) == NULL ||
	    msg_event_body(ev.id, ev.event_name, ev.payload, ev.payload_len,
	    &b) != 0)
		__builtin_trap();
	if (msg_decode(b.data, b.len, &back, reason, sizeof(reason)) != 0 ||
	    strcmp(back.id, ev.id) != 0 ||
	    strcmp(back.event_name, ev.event_name) != 0 ||
	    msg_event_payload(&back) == NULL ||
	    strcmp(back.payload, ev.payload) != 0)
		__builtin_trap();
	msg_event_clear(&back);
	msg_event_clear(&ev);
	buf_free(&b);
	return 0;
}
