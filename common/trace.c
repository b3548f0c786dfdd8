/*
 * trace.c - traceparent parsing and generation.
 */
#include "trace.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int
is_lhex(const char *s, size_t n)
{
	size_t i, zeros = 0;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
		zeros += s[i] == '0';
	}
	return zeros < n; /* all-zero ids are invalid */
}

int
trace_valid(const char *s, size_t len)
{
	if (s == NULL || len != TRACE_LEN)
		return -1;
	if (s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' ||
	    s[52] != '-')
		return -1;
	if (!is_lhex(s + 3, 32) || !is_lhex(s + 36, 16))
		return -1;
	if (!((s[53] >= '0' && s[53] <= '9') || (s[53] >= 'a' && s[53] <= 'f')) ||
	    !((s[54] >= '0' && s[54] <= '9') || (s[54] >= 'a' && s[54] <= 'f')))
		return -1;
	return 0;
}

static void
random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	struct timespec ts;
	size_t i;

	if (getrandom(b, nbytes, 0) != (ssize_t)nbytes) {
		/* No entropy source: unique enough for tracing. */
		clock_gettime(CLOCK_REALTIME, &ts);
		for (i = 0; i < nbytes; i++)
			b[i] = (unsigned char)((uint64_t)ts.tv_nsec >> (i % 8 * 8)) ^
			    (unsigned char)(i * 131);
	}
	b[0] |= 1; /* never all zero */
	for (i = 0; i < nbytes; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
}

void
trace_child(const char *parent, char out[TRACE_LEN + 1])
{
	if (parent != NULL && trace_valid(parent, strlen(parent)) == 0) {
		memcpy(out, parent, TRACE_LEN + 1);
	} else {
		memcpy(out, "00-", 3);
		random_hex(out + 3, 16);
		memcpy(out + 35, "-", 1);
		memcpy(out + 52, "-01", 4);
	}
	random_hex(out + 36, 8);
	out[TRACE_LEN] = '\0';
}
