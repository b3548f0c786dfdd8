/*
 * testuid.h - ids for the tests of the inbox retention (unit and
 * integration binaries): a version-7 id of any time, past or future,
 * whatever ids the process made before (uid_new_at keeps the process's
 * ids ascending: an earlier time after a later one would not show).
 */
#ifndef OUTBOX_TEST_TESTUID_H
#define OUTBOX_TEST_TESTUID_H

#include <stdint.h>

#include "uid.h"

/* A new version-7 id whose time field is ms (Unix milliseconds). */
void testuid_v7_at(int64_t ms, char out[UID_LEN + 1]);
/* A new random version-4 id: no time in it. */
void testuid_v4(char out[UID_LEN + 1]);

#endif
