/*
 * log.c - Go-logger-compatible line logging to stderr.  Every line is one
 * line: what a message carries from outside is escaped (log.h).
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Longest line written; longer messages are cut and end in "...". */
#define LOG_LINE_MAX 8192

static const char *log_proc = "outbox";
static enum log_level log_min = LOG_LVL_INFO;
static enum log_format log_fmt = LOG_FMT_TEXT;

void
log_init(const char *procname, enum log_level min_level)
{
	if (procname != NULL)
		log_proc = procname;
	log_min = min_level;
}

int
log_on(enum log_level l)
{
	return l >= log_min;
}

const char *const log_level_names[] = { "debug", "info", "warn", NULL };
const char *const log_format_names[] = { "text", "json", NULL };

void
log_set_format(enum log_format f)
{
	log_fmt = f;
}

/* Appends to line[*n..cap), clamping at the end of the buffer. */
static void
log_append(char *line, size_t *n, size_t cap, const char *fmt, va_list ap)
{
	int r;

	if (*n >= cap)
		return;
	r = vsnprintf(line + *n, cap - *n, fmt, ap);
	if (r > 0)
		*n += (size_t)r < cap - *n ? (size_t)r : cap - *n - 1;
}

static void
log_appendf(char *line, size_t *n, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_append(line, n, cap, fmt, ap);
	va_end(ap);
}

/* Length of the valid UTF-8 sequence at s (n bytes available): 1..4, or
 * 0 when the bytes there are not one (stray, overlong, surrogate, past
 * U+10FFFF, cut short). */
static size_t
log_utf8_len(const unsigned char *s, size_t n)
{
	size_t need, k;
	unsigned cp, min;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 1;
		cp = s[0] & 0x1fu;
		min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 2;
		cp = s[0] & 0x0fu;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 3;
		cp = s[0] & 0x07u;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n <= need)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need + 1;
}

/* Appends s (len bytes) to line[*n..cap) with what could forge a line
 * or drive a terminal made visible: bytes below 0x20, 0x7f and bytes
 * that are not valid UTF-8 become \xNN (text); in JSON (json != 0)
 * quotes and backslashes are escaped too, control bytes become \u00NN
 * and invalid bytes the text \\xNN, so that the line stays valid JSON.
 * Stops where the next piece might not fit: returns 1 if s was cut,
 * else 0. */
static int
log_append_safe(char *line, size_t *n, size_t cap, const char *s,
    size_t len, int json)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t left = len, k;

	while (left > 0 && *n + 7 < cap) {
		k = log_utf8_len(p, left);
		if (k == 1 && p[0] >= 0x20 && p[0] != 0x7f) {
			if (json && (p[0] == '"' || p[0] == '\\'))
				line[(*n)++] = '\\';
			line[(*n)++] = (char)p[0];
		} else if (k > 1) {
			memcpy(line + *n, p, k);
			*n += k;
		} else {
			k = 1;
			if (json && p[0] < 0x80) {
				memcpy(line + *n, "\\u00", 4);
				*n += 4;
			} else {
				if (json)
					line[(*n)++] = '\\';
				memcpy(line + *n, "\\x", 2);
				*n += 2;
			}
			line[(*n)++] = hex[p[0] >> 4];
			line[(*n)++] = hex[p[0] & 15];
		}
		p += k;
		left -= k;
	}
	return left > 0;
}

int
log_visible(const char *s, size_t n, char *out, size_t outlen)
{
	size_t at = 0;
	int cut;

	if (outlen == 0)
		return n > 0;
	cut = log_append_safe(out, &at, outlen, s, n, 0);
	out[at] = '\0';
	return cut;
}

static void
log_emit_json(enum log_level lvl, const char *errstr, const char *fmt,
    va_list ap)
{
	static const char *const names[] = { "debug", "info", "warn" };
	char msg[LOG_LINE_MAX / 2], line[LOG_LINE_MAX];
	size_t n = 0, cap = sizeof(line) - 3;
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strftime(line, cap, "{\"time\":\"%Y-%m-%dT%H:%M:%S", &tm);
	log_appendf(line, &n, cap, ".%06ldZ\",\"level\":\"%s\",\"process\":\"",
	    ts.tv_nsec / 1000, names[lvl]);
	log_append_safe(line, &n, cap, log_proc, strlen(log_proc), 1);
	log_appendf(line, &n, cap, "\",\"message\":\"");
	log_append_safe(line, &n, cap, msg, strlen(msg), 1);
	if (errstr != NULL) {
		log_appendf(line, &n, cap, "\",\"error\":\"");
		log_append_safe(line, &n, cap, errstr, strlen(errstr),
		    1);
	}
	line[n++] = '"';
	line[n++] = '}';
	line[n++] = '\n';
	while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
		;
}

static void
log_emit(enum log_level lvl, const char *prefix, const char *errstr,
    const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX], line[LOG_LINE_MAX];
	size_t n, cap = sizeof(line) - 1; /* room for the newline */
	struct tm tm;
	time_t now;
	int cut;

	if (lvl < log_min)
		return;
	if (log_fmt == LOG_FMT_JSON) {
		log_emit_json(lvl, errstr, fmt, ap);
		return;
	}
	now = time(NULL);
	localtime_r(&now, &tm);
	n = strftime(line, cap, "%Y/%m/%d %H:%M:%S ", &tm);
	if (prefix != NULL)
		log_appendf(line, &n, cap, "%s", prefix);
	/* The message may carry bytes from outside (a request's path, a
	 * server's error text): escaped, so that it stays one line. */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	cut = log_append_safe(line, &n, cap, msg, strlen(msg), 0);
	if (errstr != NULL) {
		log_appendf(line, &n, cap, ": ");
		cut |= log_append_safe(line, &n, cap, errstr,
		    strlen(errstr), 0);
	}
	if (cut)
		memcpy(line + n - 3, "...", 3);
	line[n++] = '\n';
	/* One write per line keeps lines of concurrent threads whole. */
	while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
		;
}

#define LOG_BODY(lvl, prefix, errstr)                  \
	do {                                           \
		va_list ap;                            \
		va_start(ap, fmt);                     \
		log_emit(lvl, prefix, errstr, fmt, ap); \
		va_end(ap);                            \
	} while (0)

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_DEBUG, "DEBUG: ", NULL);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_INFO, NULL, NULL);
}

void
log_warn(const char *fmt, ...)
{
	char eb[128];
	const char *e = strerror_r(errno, eb, sizeof(eb));

	LOG_BODY(LOG_LVL_WARN, "WARN: ", e);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_WARN, "WARN: ", NULL);
}

void
fatal(const char *fmt, ...)
{
	char eb[128];
	const char *e = strerror_r(errno, eb, sizeof(eb));

	LOG_BODY(LOG_LVL_WARN, "FATAL: ", e);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_WARN, "FATAL: ", NULL);
	exit(1);
}
