/*
 * harness_binlog.h - MariaDBs with the binary log on (scripts/infra.sh
 * with OUTBOX_DB_BINLOG=1) that a suite runs in a folder and on a port of
 * its own, for the relay's binlog mode; the test servers keep the binary
 * log off.  The folder is $OUTBOX_TEST_LOGS/../var-<name>, the server's
 * output goes to $OUTBOX_TEST_LOGS/infra-<name>.log.
 */
#ifndef OUTBOX_TEST_HARNESS_BINLOG_H
#define OUTBOX_TEST_HARNESS_BINLOG_H

/* A binlog MariaDB: its port from the environment variable port_env
 * (port_def when unset), a name for its folder and log, and whether it
 * runs with the binary log's fsyncs held (tests/fsync_hold.c,
 * OUTBOX_HOLD_ONLY=binlog, while hold_file exists).  h_binlog_up fills
 * var, port and hold_file. */
struct h_binlog_server {
	const char *port_env, *port_def, *name;
	int held;
	char var[512], port[16], hold_file[600];
};

/* Runs scripts/infra.sh cmd (db-start, db-stop) against sv; returns its
 * exit status. */
int h_binlog_infra(const struct h_binlog_server *sv, const char *cmd);
/* Unchecked fixture (parent process): sv started and migrated with
 * outbox-migrate; says on stderr what failed (the tests then fail). */
void h_binlog_up(struct h_binlog_server *sv);
/* sv stopped, its hold file removed. */
void h_binlog_down(struct h_binlog_server *sv);

#endif
