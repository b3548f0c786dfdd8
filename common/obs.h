/*
 * obs.h - the observability listener of a daemon: GET /metrics (Prometheus
 * text format), /healthz (200 while the process runs) and /readyz (200
 * when the daemon's ready callback says so, else 503), on a port of its
 * own, served by a background thread.
 */
#ifndef OUTBOX_OBS_H
#define OUTBOX_OBS_H

#include <stdarg.h>

struct obs;

/* libmicrohttpd's error logger (MHD_OPTION_EXTERNAL_LOGGER) for any
 * listener of ours: one WARN line per message, prefixed with cls (a
 * string naming the listener). */
void obs_mhd_log(void *cls, const char *fmt, va_list ap);

/* ready(ud) is called from the listener's thread: it must be thread-safe
 * and quick (read a flag).  NULL ready means always ready.  Returns NULL
 * on failure (logged). */
struct obs *obs_start(const char *bind, int port, int (*ready)(void *),
    void *ud);
/* Stops the listener and frees it; NULL is a no-op. */
void obs_stop(struct obs *o);

#endif
