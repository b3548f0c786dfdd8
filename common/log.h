/*
 * log.h - one line per event on stderr, in the format of Go's standard
 * logger ("2006/01/02 15:04:05 message"), as the original daemons print.
 *
 * log_warn appends strerror(errno); log_warnx does not.  fatal/fatalx log
 * and exit(1): use them only at start-up or for impossible states.
 * Every function is thread-safe: each line is written with one write(2).
 */
#ifndef OUTBOX_LOG_H
#define OUTBOX_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO = 1, LOG_LVL_WARN = 2 };

/* text: the original's lines; json: one object per line with time (RFC
 * 3339 UTC), level, process, message and, for log_warn/fatal, error. */
enum log_format { LOG_FMT_TEXT = 0, LOG_FMT_JSON = 1 };

/* Sets the process name (kept by pointer: pass a string literal) and the
 * lowest level printed.  Callable again at any time before threads start. */
void log_init(const char *procname, enum log_level min_level);

/* Parses "debug", "info" or "warn"; returns -1 for anything else. */
int log_level_parse(const char *s, enum log_level *out);
/* Parses "text" or "json"; returns -1 for anything else. */
int log_format_parse(const char *s, enum log_format *out);
void log_set_format(enum log_format f);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatal(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
_Noreturn void fatalx(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

#endif
