/*
 * binlog_loop.h - the relay's binlog mode (RELAY_MODE=binlog; README,
 * "Binlog mode"): new outbox rows read from MariaDB's binary log, as a
 * replica, published with confirms, the position stored per batch.
 */
#ifndef OUTBOX_RELAY_BINLOG_LOOP_H
#define OUTBOX_RELAY_BINLOG_LOOP_H

#include <signal.h>

#include "config.h"

/* Checks the server's settings, then leads or stands by until *stop.
 * 0 on a stop; -1 when the server cannot serve this mode (the reason
 * logged, naming the setting) or out of memory. */
int relay_run_binlog(const struct relay_config *cfg,
    volatile sig_atomic_t *stop);

#endif
