/*
 * binlog_check.c - the binlog mode's settings check (binlog_check.h).
 */
#include "binlog_check.h"

#include <stdio.h>
#include <string.h>

/* The global values: those the application's sessions start with (a
 * session value is this connection's own). */
static const char SQL_SETTINGS[] =
    "SELECT @@GLOBAL.log_bin, @@GLOBAL.binlog_format, "
    "@@GLOBAL.binlog_row_image, @@GLOBAL.binlog_row_metadata, "
    "@@GLOBAL.sync_binlog, @@GLOBAL.server_id, "
    "@@GLOBAL.innodb_flush_log_at_trx_commit, @@GLOBAL.log_bin_compress";

/* The values each variable must have, in SQL_SETTINGS' order, and why. */
static const struct {
	const char *name, *want, *why;
} settings[] = {
	{ "log_bin", "1", "the binary log is off" },
	{ "binlog_format", "ROW", "rows are needed, not statements" },
	{ "binlog_row_image", "FULL", "every column of a row is needed" },
	{ "binlog_row_metadata", "FULL", "column names are needed" },
	{ "sync_binlog", "1", "with the binary log on, a commit is durable "
	    "only once the binary log is synced" },
	{ "server_id", NULL, "a replication client needs a server id" },
	{ "innodb_flush_log_at_trx_commit", "1", "an event sent from the "
	    "binary log must not be lost by InnoDB" },
	{ "log_bin_compress", "0", "compressed row events are not read" },
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

struct check {
	char *why;
	size_t whylen;
	int bad, got;
};

static int
settings_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct check *k = ud;
	size_t i;

	if (ncols != NSETTINGS)
		return -1;
	k->got = 1;
	for (i = 0; i < NSETTINGS && !k->bad; i++) {
		const char *v = cols[i].is_null ? "NULL" : cols[i].s;
		int ok = settings[i].want != NULL ?
		    strcmp(v, settings[i].want) == 0 : strcmp(v, "0") != 0;

		if (ok)
			continue;
		k->bad = 1;
		if (settings[i].want != NULL)
			snprintf(k->why, k->whylen, "binlog mode needs %s=%s "
			    "(%s), the server has %s=%.40s", settings[i].name,
			    settings[i].want, settings[i].why,
			    settings[i].name, v);
		else
			snprintf(k->why, k->whylen, "binlog mode needs a %s "
			    "other than 0 (%s)", settings[i].name,
			    settings[i].why);
	}
	return 0;
}

/* One row of SHOW GRANTS: REPLICATION SLAVE on *.* (given to the login
 * or to its role), or every privilege on *.*.  The rows may hold a
 * password hash: they are never logged. */
static int
grants_row(void *ud, const struct db_col *cols, size_t ncols)
{
	struct check *k = ud;

	if (ncols != 1 || cols[0].is_null)
		return -1;
	if (strstr(cols[0].s, " ON *.* ") != NULL &&
	    (strstr(cols[0].s, "REPLICATION SLAVE") != NULL ||
	    strncmp(cols[0].s, "GRANT ALL PRIVILEGES ON *.* ", 28) == 0))
		k->got = 1;
	return 0;
}

int
binlog_check_variables(db_conn *c, char *why, size_t whylen)
{
	struct check k = { why, whylen, 0, 0 };

	why[0] = '\0';
	if (db_query(c, SQL_SETTINGS, NULL, 0, settings_row, &k, NULL) !=
	    DB_OK || !k.got) {
		snprintf(why, whylen, "binlog mode: cannot read the server's "
		    "binlog settings: %s", db_error(c));
		return -2;
	}
	return k.bad ? -1 : 0;
}

int
binlog_check_settings(db_conn *c, char *why, size_t whylen)
{
	struct check k = { why, whylen, 0, 0 };

	if (binlog_check_variables(c, why, whylen) != 0)
		return -1;
	if (db_query(c, "SHOW GRANTS", NULL, 0, grants_row, &k, NULL) !=
	    DB_OK) {
		snprintf(why, whylen, "binlog mode: cannot read the binlog "
		    "login's grants: %s", db_error(c));
		return -1;
	}
	if (!k.got) {
		snprintf(why, whylen, "binlog mode needs the REPLICATION SLAVE "
		    "grant for the binlog login (its role outbox_binlog_role, "
		    "migrations/013): the login has none");
		return -1;
	}
	return 0;
}

int
binlog_check_retention(db_conn *c, int retention_hours, char *why,
    size_t whylen)
{
	long long expire = -1;

	why[0] = '\0';
	if (db_query(c, "SELECT @@GLOBAL.binlog_expire_logs_seconds", NULL, 0,
	    db_count_row, &expire, NULL) != DB_OK || expire < 0) {
		snprintf(why, whylen, "binlog mode: cannot read "
		    "binlog_expire_logs_seconds: %s", db_error(c));
		return -1;
	}
	if (retention_hours == 0 || expire == 0 ||
	    (long long)retention_hours * 3600 > expire)
		return 0;
	snprintf(why, whylen, "binlog mode needs RELAY_RETENTION_HOURS above "
	    "the binary log's expiry (outbox rows must outlive the binary "
	    "log, so that a purged position is recovered from the table): "
	    "RELAY_RETENTION_HOURS=%d is %lld s, binlog_expire_logs_seconds "
	    "is %lld", retention_hours, (long long)retention_hours * 3600,
	    expire);
	return -1;
}
