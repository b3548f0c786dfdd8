/*
 * log.h - one line per event on stderr, in the format of Go's standard
 * logger ("2006/01/02 15:04:05 message"), as the original daemons print.
 *
 * log_warn appends strerror(errno); log_warnx does not.  fatal/fatalx log
 * and exit(1): use them only at start-up or for impossible states.
 * Every function is thread-safe: each line is written with one write(2).
 *
 * A line is always one line, whatever its message carries from outside
 * (a request's path, a server's error text): bytes below 0x20, 0x7f and
 * bytes that are not valid UTF-8 are written as \xNN (backslashes are
 * left alone, so JSON payloads read as before).  The JSON format escapes
 * them the JSON way (control bytes \u00NN, invalid bytes the text \xNN)
 * and stays valid JSON.
 */
#ifndef OUTBOX_LOG_H
#define OUTBOX_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO = 1, LOG_LVL_WARN = 2 };

/* text: the original's lines; json: one object per line with time (RFC
 * 3339 UTC), level, process, message and, for log_warn/fatal, error. */
enum log_format { LOG_FMT_TEXT = 0, LOG_FMT_JSON = 1 };

/* Sets the process name (kept by pointer: pass a string literal) and the
 * lowest level printed.  Callable again at any time before threads start. */
void log_init(const char *procname, enum log_level min_level);

/* The names of the levels and formats, by value, NULL-ended (the choices
 * of the LOG_LEVEL and LOG_FORMAT settings). */
extern const char *const log_level_names[];
extern const char *const log_format_names[];
void log_set_format(enum log_format f);

/* s (n bytes, from outside: it may hold any byte) as a log line shows
 * it: bytes below 0x20, 0x7f and bytes that are not valid UTF-8 as
 * \xNN, so that it can neither forge a line nor drive a terminal; into
 * out[outlen], NUL-terminated.  Returns 1 when it was cut to fit, else
 * 0; 4 * n + 8 bytes always hold it. */
int log_visible(const char *s, size_t n, char *out, size_t outlen);

/* 1 when a line of level l is printed: for a caller whose arguments
 * cost something to make. */
int log_on(enum log_level l);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatal(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
_Noreturn void fatalx(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

#endif
