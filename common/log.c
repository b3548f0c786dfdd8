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

void
log_init(const char *procname, enum log_level min_level)
{
	if (procname != NULL)
		log_proc = procname;
	log_min = min_level;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	if (strcmp(s, "debug") == 0)
		*out = LOG_LVL_DEBUG;
	else if (strcmp(s, "info") == 0)
		*out = LOG_LVL_INFO;
	else if (strcmp(s, "warn") == 0)
		*out = LOG_LVL_WARN;
	else
		return -1;
	return 0;
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
