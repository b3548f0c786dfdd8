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

/* The number of n digits at s, or -1 if one is not a digit. */
static int
timefmt_digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int
timefmt_parse_sql(const char *s, struct timespec *ts)
{
	/* Fixed positions, no sscanf: the relay parses one per row.
	 * "YYYY-MM-DD HH:MM:SS" then an optional ".f" of 1 to 9 digits
	 * (kept to the microsecond). */
	int Y, M, D, h, m, sec, i;
	long us = 0, scale = 100000;
	struct tm tm;

	if (strlen(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	if ((Y = timefmt_digits(s, 4)) < 0 || (M = timefmt_digits(s + 5, 2)) < 1 ||
	    M > 12 || (D = timefmt_digits(s + 8, 2)) < 1 || D > 31 ||
	    (h = timefmt_digits(s + 11, 2)) < 0 || h > 23 ||
	    (m = timefmt_digits(s + 14, 2)) < 0 || m > 59 ||
	    (sec = timefmt_digits(s + 17, 2)) < 0 || sec > 60)
		return -1;
	s += 19;
	if (*s == '.') {
		for (i = 1; s[i] >= '0' && s[i] <= '9' && i <= 9; i++) {
			us += (s[i] - '0') * scale;
			scale /= 10;
		}
		if (i == 1)
			return -1;
		s += i;
	}
	if (*s != '\0')
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	ts->tv_sec = timegm(&tm);
	ts->tv_nsec = us * 1000;
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
