/*
 * daemon.h - the start-up steps every daemon shares: --help, logging from
 * its LOG_LEVEL / LOG_FORMAT settings, and signals that only set a flag.
 */
#ifndef OUTBOX_DAEMON_H
#define OUTBOX_DAEMON_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>

#include "cfg.h"
#include "log.h"

/* Config rows every daemon has, in struct T: int fields log_level and
 * log_format (enum log_level, enum log_format). */
#define DAEMON_LOG_ROWS(T)                                                 \
	CFG_ROW_ENUM("LOG_LEVEL", T, log_level, "info", log_level_names,   \
	    "lowest level logged"),                                        \
	CFG_ROW_ENUM("LOG_FORMAT", T, log_format, "text", log_format_names, \
	    "text (the original's lines) or json (one object per line)")

/* The operators' listener (common/obs.h) of a daemon: PREFIX_METRICS_PORT
 * and PREFIX_METRICS_BIND into fields metrics_port (int) and
 * metrics_bind (char[64]) of struct T. */
#define DAEMON_OBS_ROWS(T, PREFIX, DEFPORT)                                \
	CFG_ROW_INT(PREFIX "_METRICS_PORT", T, metrics_port, DEFPORT, 0,   \
	    65535, "port of /metrics, /healthz, /readyz for operators "    \
	    "(0: off)"),                                                   \
	CFG_ROW_STR(PREFIX "_METRICS_BIND", T, metrics_bind, "0.0.0.0", 1, \
	    "IPv4 address the metrics listener binds to")

/* When argv asks for help (--help, -h), prints usage (one or more lines)
 * and the configuration table, and returns 1; else 0. */
int daemon_help(int argc, char **argv, const char *usage,
    const struct cfg_opt *opts, size_t nopts);

/* Sets up logging for procname with the LOG_LEVEL and LOG_FORMAT values
 * of DAEMON_LOG_ROWS. */
void daemon_logging(const char *procname, int level, int format);

/* SIGTERM and SIGINT set *stop (SA_RESTART: a database or broker call in
 * flight is not interrupted; the loops look at the flag); SIGPIPE is
 * ignored (a closed peer is an error return, not a death).  stop must
 * outlive the process's use of signals. */
void daemon_signals(volatile sig_atomic_t *stop);

/* Starts fn(arg) in *th with every signal blocked in it (signals go to
 * the main thread, which owns the stop flag).  Returns 0, or -1 with
 * errno set. */
int daemon_thread(pthread_t *th, void *(*fn)(void *), void *arg);

#endif
