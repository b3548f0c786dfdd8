/*
 * config.c - the app's configuration table: one row per setting.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "daemon.h"

#define T struct app_config
const struct cfg_opt app_opts[] = {
	DB_CFG_ROWS(T, db),
	CFG_ROW_INT("APP_PORT", T, port, "3000", 1, 65535,
	    "HTTP port of the API"),
	CFG_ROW_STR("APP_BIND", T, bind, "0.0.0.0", 1,
	    "IPv4 address the API listens on"),
	CFG_ROW_INT("APP_HTTP_THREADS", T, http_threads, "1", 1, 64,
	    "HTTP event-loop threads"),
	CFG_ROW_INT("APP_MAX_CONNECTIONS", T, max_connections, "1000", 1,
	    100000, "concurrent HTTP connections; more are refused"),
	CFG_ROW_INT("APP_CONN_TIMEOUT", T, conn_timeout_s, "10", 1, 3600,
	    "seconds an idle HTTP connection is kept"),
	CFG_ROW_INT("APP_REQUEST_TIMEOUT", T, request_timeout_s, "10", 1, 3600,
	    "seconds from a request's first byte until it must be complete "
	    "(request line, headers, body); then its connection is closed"),
	CFG_ROW_INT("APP_SHUTDOWN_TIMEOUT", T, shutdown_timeout_s, "10", 1,
	    3600, "seconds SIGTERM/SIGINT may take: what the database has "
	    "not finished by then is rolled back and answered 503"),
	CFG_ROW_INT("APP_CONN_MEMORY_KIB", T, conn_memory_kib, "32", 8,
	    1024, "memory per connection for request line and headers"),
	CFG_ROW_INT("APP_BODY_MAX", T, body_max, "16384", 256, 1048576,
	    "largest request body in bytes (413 above)"),
	CFG_ROW_INT("APP_DB_POOL", T, db_pool, "4", 1, 256,
	    "database connections (one thread each)"),
	CFG_ROW_INT("APP_GROUP_MAX", T, group_max, "64", 1, APP_GROUP_MAX_LIMIT,
	    "most requests committed in one transaction (group commit)"),
	/* 20 ms: a group here takes 1 to 10 ms.  With every thread at
	 * once (0), 1,000 POST/s took twice as long at the median from the
	 * customer's row to the worker's effect, and the ingest was a tenth
	 * lower (README, "Performance"). */
	CFG_ROW_INT("APP_GROUP_ALONE_MS", T, group_alone_ms, "20", 0, 60000,
	    "ms a group of creates has the database to itself before the "
	    "next may start alongside (0: never alone)"),
	CFG_ROW_INT("APP_QUEUE_MAX", T, queue_max, "4096", 1, 1000000,
	    "requests waiting for a database connection; 503 above"),
	CFG_ROW_INT("APP_LOCK_WAIT_TIMEOUT", T, lock_wait_s, "2", 1, 3600,
	    "seconds a request's statement waits for a row lock before the "
	    "request is answered 503; below DB_IO_TIMEOUT"),
	CFG_ROW_INT("APP_IDEMPOTENCY_TTL_HOURS", T, idem_ttl_hours, "48", 24,
	    8760, "hours an Idempotency-Key is remembered"),
	CFG_ROW_INT("APP_PRUNE_CHUNK", T, prune_chunk, "500", 1, 100000,
	    "expired Idempotency-Keys deleted per statement (one small "
	    "transaction each, back to back until none is left)"),
	CFG_ROW_INT("APP_ACCESS_LOG", T, access_log, "1", 0, 1,
	    "1: one log line per request"),
	DAEMON_OBS_ROWS(T, "APP", "9464"),
	DAEMON_LOG_ROWS(T),
};
#undef T
const size_t app_nopts = sizeof(app_opts) / sizeof(app_opts[0]);

int
app_config_load(struct app_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	if (cfg_load(app_opts, app_nopts, cfg, err, errlen) == -1)
		return -1;
	/* A lock wait cut by the socket timeout would look like an outage
	 * of the whole database. */
	if (cfg->lock_wait_s >= cfg->db.io_timeout_s) {
		snprintf(err, errlen, "APP_LOCK_WAIT_TIMEOUT=%d must be below "
		    "DB_IO_TIMEOUT=%d", cfg->lock_wait_s, cfg->db.io_timeout_s);
		return -1;
	}
	return 0;
}
