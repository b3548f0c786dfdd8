/*
 * trace.h - W3C Trace Context "traceparent" values
 * ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"), so that one
 * request can be followed through app, relay and worker.
 */
#ifndef OUTBOX_TRACE_H
#define OUTBOX_TRACE_H

#include <stddef.h>

#define TRACE_LEN 55

/* 0 if s is a valid version-00 traceparent (lower-case hex, non-zero ids),
 * else -1. */
int trace_valid(const char *s, size_t len);
/* A traceparent for our own span: the trace id (and flags) of parent when
 * parent is valid, a new random trace otherwise; a new random span id.
 * out must hold TRACE_LEN + 1 bytes. */
void trace_child(const char *parent, char out[TRACE_LEN + 1]);

#endif
