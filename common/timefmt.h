/*
 * timefmt.h - the two timestamp texts of the system, both UTC with
 * microseconds: RFC 3339 for JSON ("2021-08-04T09:37:07.305317Z", as the
 * original's Go encoder writes them) and SQL DATETIME(6)
 * ("2021-08-04 09:37:07.305317").
 */
#ifndef OUTBOX_TIMEFMT_H
#define OUTBOX_TIMEFMT_H

#include <stddef.h>
#include <time.h>

#define TIMEFMT_LEN 32 /* room for either form and the NUL */

/* Current wall-clock time truncated to microseconds. */
void timefmt_now(struct timespec *ts);
/* Return 0, or -1 if out is too small. */
int timefmt_rfc3339(const struct timespec *ts, char *out, size_t outlen);
int timefmt_sql(const struct timespec *ts, char *out, size_t outlen);
/* Parses the SQL form (microseconds optional) back; 0 or -1. */
int timefmt_parse_sql(const char *s, struct timespec *ts);
/* Parses the RFC 3339 form in UTC ("...T...Z", microseconds optional)
 * back; 0 or -1. */
int timefmt_parse_rfc3339(const char *s, struct timespec *ts);

#endif
