/*
 * uid.h - UUIDs (random, version 4) as 36-character lower-case text.
 */
#ifndef OUTBOX_UID_H
#define OUTBOX_UID_H

#include <stddef.h>

#define UID_LEN 36

/* Writes a new random UUID and a NUL into out[UID_LEN + 1]. */
void uid_new(char out[UID_LEN + 1]);
/* 1 if s (n bytes) is a UUID in text form (either case), else 0. */
int uid_valid(const char *s, size_t n);
/* The one form ids are compared and stored in: when s (n bytes) is a
 * UUID in text form, writes it in lower case and a NUL into
 * out[UID_LEN + 1] and returns 1 (an upper-case twin is the same id, as
 * RFC 4122 reads UUIDs); else 0. */
int uid_canonical(const char *s, size_t n, char out[UID_LEN + 1]);

#endif
