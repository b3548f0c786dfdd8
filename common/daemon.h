/*
 * daemon.h - the start-up steps every daemon shares: --help, logging from
 * its LOG_LEVEL / LOG_FORMAT settings, and signals that only set a flag.
 */
#ifndef OUTBOX_DAEMON_H
#define OUTBOX_DAEMON_H

#include <signal.h>
#include <stddef.h>

#include "cfg.h"

/* When argv asks for help (--help, -h), prints usage (one or more lines)
 * and the configuration table, and returns 1; else 0. */
int daemon_help(int argc, char **argv, const char *usage,
    const struct cfg_opt *opts, size_t nopts);

/* Sets up logging for procname from the text of LOG_LEVEL and LOG_FORMAT;
 * a bad value stops the process, naming the variable. */
void daemon_logging(const char *procname, const char *level,
    const char *format);

/* SIGTERM and SIGINT set *stop (SA_RESTART: a database or broker call in
 * flight is not interrupted; the loops look at the flag); SIGPIPE is
 * ignored (a closed peer is an error return, not a death).  stop must
 * outlive the process's use of signals. */
void daemon_signals(volatile sig_atomic_t *stop);

#endif
