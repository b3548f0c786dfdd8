/*
 * binlog.h - a replication client of MariaDB's binary log (Connector/C's
 * mariadb_rpl, the only module besides db.c to see <mysql.h>): reads the
 * rows inserted into one table (the outbox), with the commit boundaries
 * and the GTID position, from a stored GTID on.  Building block of the
 * relay's binlog mode (README, "Binlog mode").
 *
 * The server must run as relay/binlog_check.h requires: with
 * sync_binlog=1 it sends nothing before the binary log's sync, so every
 * row read here is durable.
 */
#ifndef OUTBOX_BINLOG_H
#define OUTBOX_BINLOG_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* What binlog_next read. */
enum binlog_what {
	BINLOG_ROW = 1,   /* a row inserted into the table: *row */
	BINLOG_COMMIT,    /* a transaction ended: binlog_gtid() moved */
	BINLOG_HEARTBEAT, /* the server has nothing more to send now */
};

/* Errors of binlog_start and binlog_next. */
enum binlog_err {
	BINLOG_ELOST = -1,  /* connection lost, refused, or silent longer than
	                     * the read timeout: start again */
	BINLOG_EGONE = -2,  /* the server no longer has (or never had) the
	                     * position: recover from the table */
	BINLOG_EOTHER = -3, /* anything else (a grant, a decoding failure) */
};

/* One inserted (or released) row; the pointers are valid until the next
 * binlog_next.  The text columns are not NUL-terminated; trace is NULL
 * when NULL. */
struct binlog_row {
	int64_t seq;
	unsigned attempts;
	const char *id, *event, *payload, *trace;
	size_t idlen, evlen, plen, tracelen;
	int released; /* an update released it from parked (outbox-admin
	               * parked release): its row after the update */
};

typedef struct binlog binlog;

/* A client for p's server (p->name: the database of table), as
 * server_id (unique among the server's replication clients), with a
 * heartbeat every heartbeat_ms while idle and a read timeout of three
 * heartbeats.  Does not connect.  NULL when out of memory.  table is
 * copied (at most 63 bytes). */
binlog *binlog_new(const struct db_params *p, const char *table,
    unsigned server_id, unsigned heartbeat_ms);
/* Closes and frees; NULL is a no-op. */
void binlog_free(binlog *b);

/* Connects and starts reading after gtid (a GTID list, "D-S-N,..."; ""
 * from the oldest binary log the server has); NULL: from the binary log's
 * durable end now (SHOW MASTER STATUS, never
 * @@gtid_binlog_pos, which can name a transaction not yet synced).  0 or
 * an enum binlog_err (binlog_error says why).  A position the server does
 * not have shows only at the first binlog_next (BINLOG_EGONE). */
int binlog_start(binlog *b, const char *gtid);

/* Blocks until the next row, commit or heartbeat: an enum binlog_what, or
 * an enum binlog_err (then start again). */
int binlog_next(binlog *b, struct binlog_row *row);

/* The GTID list up to the last transaction whose end was read (its rows
 * all returned before): the position to store once they are published. */
const char *binlog_gtid(const binlog *b);
/* The server's timestamp (epoch seconds) of the last transaction whose
 * start was read; 0 before the first. */
unsigned long binlog_commit_time(const binlog *b);
/* 1 when more than what was read is at hand: in the library's
 * read-ahead buffer, or on the socket (the caller may wait for it before
 * publishing what it holds); 0 when binlog_next would wait for the
 * server (until binlog_fd is readable). */
int binlog_pending(const binlog *b);
/* Waits up to timeout_ms for binlog_next to have something at hand (as
 * binlog_pending): 1 it has (or cannot tell: not started, the wait
 * failed; binlog_next says what), 0 not yet (the time passed, or a
 * signal came). */
int binlog_wait(const binlog *b, int timeout_ms);
/* The connection's socket (poll it for reading when binlog_pending is
 * 0); -1 when not started. */
int binlog_fd(const binlog *b);
/* The last error, for the log (no secrets). */
const char *binlog_error(const binlog *b);

#endif
