/*
 * uid.h - UUIDs as 36-character lower-case text.  New ids are version 7
 * (RFC 9562): 48 bits of Unix milliseconds first, so that ids made later
 * sort later (as text and as bytes) and an index on them grows at its
 * right edge instead of at random pages.  Ids are opaque to everyone else:
 * any UUID is accepted where an id is read.
 */
#ifndef OUTBOX_UID_H
#define OUTBOX_UID_H

#include <stddef.h>
#include <stdint.h>

#define UID_LEN 36

/* Writes a new version-7 UUID and a NUL into out[UID_LEN + 1].  Within
 * the process every id is greater than the one before, from any thread,
 * even when the clock stalls or steps back (the last time is kept and a
 * 12-bit counter counts on; past 4,096 ids in one millisecond the time
 * field moves on by itself).  The other 62 bits are random (libuuid). */
void uid_new(char out[UID_LEN + 1]);
/* uid_new with the clock given, in Unix milliseconds (tests). */
void uid_new_at(int64_t now_ms, char out[UID_LEN + 1]);
/* 1 if s (n bytes) is a UUID in text form (either case), else 0. */
int uid_valid(const char *s, size_t n);
/* The one form ids are compared and stored in: when s (n bytes) is a
 * UUID in text form, writes it in lower case and a NUL into
 * out[UID_LEN + 1] and returns 1 (an upper-case twin is the same id, as
 * RFC 9562 reads UUIDs); else 0. */
int uid_canonical(const char *s, size_t n, char out[UID_LEN + 1]);
/* When s (n bytes) is a version-7 UUID in text form: its time in Unix
 * milliseconds into *ms, and 1.  Else 0 (another version, or not a
 * UUID): such an id carries no time. */
int uid_time_ms(const char *s, size_t n, int64_t *ms);

#endif
