/*
 * uid.c - UUIDs on libuuid; version 7 built here (Debian 12's libuuid
 * has none).
 *
 * Layout (RFC 9562, section 5.7; "method 1" of section 6.2 for the order
 * within a millisecond):
 *   bytes 0-5   unix_ts_ms, big-endian
 *   byte  6     0111 (version 7) | counter bits 11-8
 *   byte  7     counter bits 7-0
 *   byte  8     10 (variant) | 6 random bits
 *   bytes 9-15  random
 * The counter starts at a random value below 2,048 in each new
 * millisecond (guessing the next id stays hard, and 2,048 ids more fit),
 * and counts on while the clock shows no later time.
 */
#include "uid.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#define UID_COUNTER_MAX 0xfff

static pthread_mutex_t uid_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t uid_last_ms = -1;
static unsigned uid_counter;

void
uid_new_at(int64_t now_ms, char out[UID_LEN + 1])
{
	uuid_t u;
	int64_t ms;
	unsigned ctr;

	uuid_generate_random(u);
	pthread_mutex_lock(&uid_lock);
	if (now_ms > uid_last_ms) {
		uid_last_ms = now_ms;
		uid_counter = ((unsigned)u[6] << 8 | u[7]) & 0x7ff;
	} else if (uid_counter < UID_COUNTER_MAX) {
		uid_counter++;
	} else {
		/* 4,096 ids in one millisecond, or a clock gone back: the
		 * time field moves on, order first. */
		uid_last_ms++;
		uid_counter = 0;
	}
	ms = uid_last_ms;
	ctr = uid_counter;
	pthread_mutex_unlock(&uid_lock);

	u[0] = (unsigned char)(ms >> 40);
	u[1] = (unsigned char)(ms >> 32);
	u[2] = (unsigned char)(ms >> 24);
	u[3] = (unsigned char)(ms >> 16);
	u[4] = (unsigned char)(ms >> 8);
	u[5] = (unsigned char)ms;
	u[6] = (unsigned char)(0x70 | (ctr >> 8));
	u[7] = (unsigned char)(ctr & 0xff);
	u[8] = (unsigned char)(0x80 | (u[8] & 0x3f));
	uuid_unparse_lower(u, out);
}

void
uid_new(char out[UID_LEN + 1])
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	uid_new_at((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}

/* Parses s (n bytes) into u: 1, or 0 when it is not a UUID. */
static int
uid_parse(const char *s, size_t n, uuid_t u)
{
	char tmp[UID_LEN + 1];

	if (n != UID_LEN)
		return 0;
	memcpy(tmp, s, UID_LEN);
	tmp[UID_LEN] = '\0';
	return uuid_parse(tmp, u) == 0;
}

int
uid_valid(const char *s, size_t n)
{
	uuid_t u = { 0 };

	return uid_parse(s, n, u);
}

int
uid_canonical(const char *s, size_t n, char out[UID_LEN + 1])
{
	uuid_t u = { 0 };

	if (!uid_parse(s, n, u))
		return 0;
	uuid_unparse_lower(u, out);
	return 1;
}

int
uid_time_ms(const char *s, size_t n, int64_t *ms)
{
	uuid_t u = { 0 };
	int64_t v = 0;
	int i;

	if (!uid_parse(s, n, u) || (u[6] >> 4) != 7 || (u[8] & 0xc0) != 0x80)
		return 0;
	for (i = 0; i < 6; i++)
		v = v << 8 | u[i];
	*ms = v;
	return 1;
}
