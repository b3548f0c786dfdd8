/*
 * binlog_check.h - what the relay's binlog mode needs from the server,
 * checked at start on the binlog reader's login (README, "Binlog mode"):
 * the binary log on, in rows, with full images and full metadata, not
 * compressed, synced at every commit, InnoDB durable at every commit, a
 * server id, and the REPLICATION SLAVE grant.
 */
#ifndef OUTBOX_RELAY_BINLOG_CHECK_H
#define OUTBOX_RELAY_BINLOG_CHECK_H

#include <stddef.h>

#include "db.h"

/* Checks every setting on c (connected as the binlog reader or not yet
 * connected).  0 when all hold; -1 with one sentence in why naming the
 * first setting that does not hold, or the database error when the check
 * could not run. */
int binlog_check_settings(db_conn *c, char *why, size_t whylen);

/* The settings alone, without the grant: on any login (the relay's,
 * while it leads: a setting changed at run time stops the publishing).
 * 0 when all hold; -1 with the sentence in why; -2 when they could not
 * be read (the database error in why). */
int binlog_check_variables(db_conn *c, char *why, size_t whylen);

/* The outbox must keep its rows longer than the binary log keeps its
 * files (README, "Binlog mode": a purged position is recovered from the
 * table).  0 when RELAY_RETENTION_HOURS (retention_hours, 0: forever) is
 * above binlog_expire_logs_seconds (0: never), else -1 with the
 * sentence in why (or the database error). */
int binlog_check_retention(db_conn *c, int retention_hours, char *why,
    size_t whylen);

#endif
