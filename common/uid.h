/*
 * uid.h - UUIDs (random, version 4) as 36-character lower-case text.
 */
#ifndef OUTBOX_UID_H
#define OUTBOX_UID_H

#include <stddef.h>

#define UID_LEN 36

/* Writes a new random UUID and a NUL into out[UID_LEN + 1]. */
void uid_new(char out[UID_LEN + 1]);
/* 1 if s (n bytes) is a UUID in canonical text form, else 0. */
int uid_valid(const char *s, size_t n);

#endif
