/*
 * log.c - Go-logger-compatible line logging to stderr.
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

/* Appends s as the inside of a JSON string (quotes, backslashes and
 * control characters escaped). */
static void
log_append_json(char *line, size_t *n, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char ch;

	for (; *s != '\0' && *n + 7 < cap; s++) {
		ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			line[(*n)++] = '\\';
			line[(*n)++] = (char)ch;
		} else if (ch < 0x20) {
			memcpy(line + *n, "\\u00", 4);
			line[*n + 4] = hex[ch >> 4];
			line[*n + 5] = hex[ch & 15];
			*n += 6;
		} else {
			line[(*n)++] = (char)ch;
		}
	}
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
	log_append_json(line, &n, cap, log_proc);
	log_appendf(line, &n, cap, "\",\"message\":\"");
	log_append_json(line, &n, cap, msg);
	if (errstr != NULL) {
		log_appendf(line, &n, cap, "\",\"error\":\"");
		log_append_json(line, &n, cap, errstr);
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
	char line[LOG_LINE_MAX];
	size_t n, cap = sizeof(line) - 1; /* room for the newline */
	struct tm tm;
	time_t now;

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
	log_append(line, &n, cap, fmt, ap);
	if (errstr != NULL)
		log_appendf(line, &n, cap, ": %s", errstr);
	if (n >= cap - 1)
		memcpy(line + cap - 4, "...", 3);
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
