/*
 * backoff.h - capped exponential backoff with jitter, and an interruptible
 * sleep for the retry loops of the daemons.
 */
#ifndef OUTBOX_BACKOFF_H
#define OUTBOX_BACKOFF_H

#include <signal.h>
#include <stdint.h>

struct backoff {
	unsigned base_ms;
	unsigned cap_ms;
	unsigned attempt;
	uint64_t rng;
};

/* base_ms: first delay; cap_ms: largest delay (>= base_ms). */
void backoff_init(struct backoff *b, unsigned base_ms, unsigned cap_ms);
/* The next delay: uniform in [d/2, d] with d = min(cap, base * 2^attempt),
 * then attempt++.  Never 0 when base_ms > 0. */
unsigned backoff_next(struct backoff *b);
/* Back to the first delay after a success. */
void backoff_reset(struct backoff *b);
/* Sleeps ms milliseconds, or less if *stop becomes non-zero (checked every
 * 50 ms).  stop may be NULL. */
void backoff_sleep(unsigned ms, volatile sig_atomic_t *stop);

#endif
