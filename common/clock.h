/*
 * clock.h - time for durations and deadlines (CLOCK_MONOTONIC, which no
 * clock step moves) and wall-clock time to compare with timestamps that
 * other processes wrote (CLOCK_REALTIME).
 */
#ifndef OUTBOX_CLOCK_H
#define OUTBOX_CLOCK_H

#include <time.h>

/* Monotonic time in milliseconds / seconds (arbitrary origin). */
long long clock_ms(void);
double clock_s(void);
/* Milliseconds that also count the time the system was suspended
 * (CLOCK_BOOTTIME; arbitrary origin): for a lease that another machine's
 * clock ends, which a suspended machine must not think still runs. */
long long clock_lease_ms(void);
/* Wall-clock seconds since the epoch. */
double clock_wall_s(void);

/* *ts = monotonic now + ms. */
void clock_deadline(struct timespec *ts, unsigned ms);
/* 1 when monotonic time a is before b. */
int clock_before(const struct timespec *a, const struct timespec *b);
/* Milliseconds from the monotonic time t0 to now. */
double clock_ms_since(const struct timespec *t0);

#endif
