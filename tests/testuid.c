/*
 * testuid.c - version-7 ids of a chosen time (testuid.h).
 */
#include "testuid.h"

void
testuid_v4(char out[UID_LEN + 1])
{
	uid_new(out);
	/* The version digit; the rest is as random as a version 4 wants
	 * for a test. */
	out[14] = '4';
}

void
testuid_v7_at(int64_t ms, char out[UID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	/* The 12 hex digits of the 48-bit time, around the first '-'. */
	static const int at[12] = { 0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12 };
	int i;

	uid_new(out);
	for (i = 11; i >= 0; i--) {
		out[at[i]] = hex[ms & 0xf];
		ms >>= 4;
	}
}
