/*
 * harness_binlog.c - binlog MariaDBs of the suites (see harness_binlog.h).
 */
#include "harness_binlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

int
h_binlog_infra(const struct h_binlog_server *sv, const char *cmd)
{
	char line[3072], preload[1400] = "";
	int st;

	if (sv->held)
		snprintf(preload, sizeof(preload), "OUTBOX_DB_PRELOAD='%s/../"
		    "lib/outbox-fsync-hold.so' OUTBOX_HOLD_FILE='%s' "
		    "OUTBOX_HOLD_ONLY=binlog ", h_env("OUTBOX_BIN",
		    "build/san/bin"), sv->hold_file);
	snprintf(line, sizeof(line), "OUTBOX_VAR='%s' OUTBOX_DB_PORT='%s' "
	    "OUTBOX_DB_BINLOG=1 %sbash '%s/scripts/infra.sh' %s "
	    ">>'%s/infra-%s.log' 2>&1", sv->var, sv->port, preload,
	    h_env("OUTBOX_ROOT", "."), cmd, h_env("OUTBOX_TEST_LOGS", "/tmp"),
	    sv->name);
	st = system(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void
h_binlog_up(struct h_binlog_server *sv)
{
	char line[2048];
	int st;

	snprintf(sv->port, sizeof(sv->port), "%s",
	    h_env(sv->port_env, sv->port_def));
	snprintf(sv->var, sizeof(sv->var), "%s/../var-%s",
	    h_env("OUTBOX_TEST_LOGS", "/tmp"), sv->name);
	mkdir(sv->var, 0755);
	snprintf(sv->hold_file, sizeof(sv->hold_file), "%s/hold", sv->var);
	unlink(sv->hold_file);
	if (h_binlog_infra(sv, "db-start") != 0) {
		fprintf(stderr, "%s: cannot start the MariaDB (see "
		    "infra-%s.log)\n", sv->name, sv->name);
		return;
	}
	snprintf(line, sizeof(line), "DB_PORT='%s' '%s/outbox-migrate' "
	    ">>'%s/infra-%s.log' 2>&1", sv->port,
	    h_env("OUTBOX_BIN", "build/san/bin"),
	    h_env("OUTBOX_TEST_LOGS", "/tmp"), sv->name);
	st = system(line);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "%s: migrations failed (see infra-%s.log)\n",
		    sv->name, sv->name);
}

void
h_binlog_down(struct h_binlog_server *sv)
{
	unlink(sv->hold_file);
	h_binlog_infra(sv, "db-stop");
}
