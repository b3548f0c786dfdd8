/*
 * backoff.c - exponential backoff with "equal jitter".
 */
#include "backoff.h"

#include <time.h>
#include <unistd.h>

void
backoff_init(struct backoff *b, unsigned base_ms, unsigned cap_ms)
{
	struct timespec ts;

	b->base_ms = base_ms;
	b->cap_ms = cap_ms < base_ms ? base_ms : cap_ms;
	b->attempt = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* Seed differs per process and per instance so that retrying peers
	 * spread out instead of stampeding together. */
	b->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid() ^
	    (uint64_t)(uintptr_t)b ^ 0x9e3779b97f4a7c15ULL;
	if (b->rng == 0)
		b->rng = 1;
}

static uint64_t
backoff_rand(struct backoff *b)
{
	/* xorshift64: jitter needs spread, not cryptographic quality. */
	uint64_t x = b->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->rng = x;
	return x;
}

unsigned
backoff_next(struct backoff *b)
{
	uint64_t d = b->base_ms;
	unsigned i, half;

	for (i = 0; i < b->attempt && d < b->cap_ms; i++)
		d *= 2;
	if (d > b->cap_ms)
		d = b->cap_ms;
	if (b->attempt < 64)
		b->attempt++;
	half = (unsigned)(d / 2);
	return half + (unsigned)(backoff_rand(b) % (d - half + 1));
}

void
backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}

void
backoff_sleep(unsigned ms, volatile sig_atomic_t *stop)
{
	struct timespec ts;
	unsigned step;

	while (ms > 0 && (stop == NULL || !*stop)) {
		step = ms < 50 ? ms : 50;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)step * 1000000L;
		nanosleep(&ts, NULL);
		ms -= step;
	}
}
