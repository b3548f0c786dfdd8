/*
 * timefmt.c - UTC timestamp formatting and parsing.
 */
#include "timefmt.h"

#include <stdio.h>
#include <string.h>

void
timefmt_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec -= ts->tv_nsec % 1000;
}

static int
timefmt_fmt(const struct timespec *ts, const char *datefmt, const char *tail,
    char *out, size_t outlen)
{
	struct tm tm;
	size_t n;
	int r;

	if (gmtime_r(&ts->tv_sec, &tm) == NULL)
		return -1;
	n = strftime(out, outlen, datefmt, &tm);
	if (n == 0)
		return -1;
	r = snprintf(out + n, outlen - n, ".%06ld%s", ts->tv_nsec / 1000, tail);
	if (r < 0 || (size_t)r >= outlen - n)
		return -1;
	return 0;
}

int
timefmt_rfc3339(const struct timespec *ts, char *out, size_t outlen)
{
	return timefmt_fmt(ts, "%Y-%m-%dT%H:%M:%S", "Z", out, outlen);
}

int
timefmt_sql(const struct timespec *ts, char *out, size_t outlen)
{
	return timefmt_fmt(ts, "%Y-%m-%d %H:%M:%S", "", out, outlen);
}

int
timefmt_parse_sql(const char *s, struct timespec *ts)
{
	unsigned Y, M, D, h, m, sec, us = 0;
	char frac[8] = "";
	struct tm tm;
	int n = 0, k;
	size_t i;

	if (sscanf(s, "%4u-%2u-%2u %2u:%2u:%2u%n", &Y, &M, &D, &h, &m, &sec,
	    &n) != 6)
		return -1;
	if (s[n] == '.') {
		if (sscanf(s + n + 1, "%6[0-9]%n", frac, &k) != 1)
			return -1;
		n += 1 + k;
		for (i = 0; i < 6; i++)
			us = us * 10 + (i < strlen(frac) ? (unsigned)(frac[i] - '0') : 0);
	}
	if (s[n] != '\0')
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)Y - 1900;
	tm.tm_mon = (int)M - 1;
	tm.tm_mday = (int)D;
	tm.tm_hour = (int)h;
	tm.tm_min = (int)m;
	tm.tm_sec = (int)sec;
	ts->tv_sec = timegm(&tm);
	ts->tv_nsec = (long)us * 1000;
	return 0;
}

int
timefmt_parse_rfc3339(const char *s, struct timespec *ts)
{
	char sql[TIMEFMT_LEN];
	size_t len = strlen(s);

	/* The same fields as the SQL form: 'T' for ' ', a final 'Z'. */
	if (len < 20 || len >= sizeof(sql) || s[10] != 'T' ||
	    s[len - 1] != 'Z')
		return -1;
	memcpy(sql, s, len - 1);
	sql[len - 1] = '\0';
	sql[10] = ' ';
	return timefmt_parse_sql(sql, ts);
}
