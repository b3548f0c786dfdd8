/*
 * config.c - the relay's configuration table: one row per setting.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "daemon.h"

const char *const relay_mode_names[] = { "poll", "binlog", NULL };

#define T struct relay_config
const struct cfg_opt relay_opts[] = {
	CFG_ROW_ENUM("RELAY_MODE", T, mode, "poll", relay_mode_names,
	    "poll: read new outbox rows from the table (any MySQL or "
	    "MariaDB); binlog: from MariaDB's binary log, as a replica "
	    "(README, \"Binlog mode\")"),
	DB_CFG_ROWS(T, db),
	MQ_CFG_ROWS(T, mq),
	CFG_ROW_INT("RELAY_BATCH_SIZE", T, batch_size, "500", 1,
	    RELAY_BATCH_MAX, "outbox rows published per batch (one "
	    "transaction)"),
	CFG_ROW_INT("RELAY_INFLIGHT_BATCHES", T, inflight_batches, "4", 1,
	    RELAY_INFLIGHT_MAX, "batches published and awaiting confirms at "
	    "once (one database connection each; 1: one batch at a time)"),
	CFG_ROW_INT("RELAY_POLL_MS", T, poll_ms, "20", 1, 60000,
	    "milliseconds between looks at the outbox while it is empty"),
	CFG_ROW_INT("RELAY_CONFIRM_TIMEOUT_MS", T, confirm_timeout_ms,
	    "10000", 100, 600000, "milliseconds to wait for the broker's "
	    "confirms of a batch before reconnecting"),
	CFG_ROW_INT("RELAY_RETRY_BASE_MS", T, retry_base_ms, "1000", 1,
	    3600000, "first delay before a nacked or unroutable message is "
	    "tried again"),
	CFG_ROW_INT("RELAY_RETRY_MAX_MS", T, retry_max_ms, "60000", 1,
	    86400000, "largest delay between tries of one message"),
	CFG_ROW_INT("RELAY_MAX_ATTEMPTS", T, max_attempts, "10", 1, 1000000,
	    "tries of a message the broker refuses before its row is parked "
	    "(left unpublished until an operator releases it)"),
	/* RabbitMQ's own default max_message_size is 128 MiB. */
	CFG_ROW_INT("RELAY_MAX_MESSAGE_BYTES", T, max_message_bytes,
	    "16777216", 1024, 134217728, "largest message body the relay "
	    "publishes; a larger one is refused without asking the broker"),
	CFG_ROW_INT("RELAY_RECONNECT_MAX_MS", T, reconnect_max_ms, "5000",
	    100, 300000, "largest delay between reconnection attempts to the "
	    "database or the broker"),
	CFG_ROW_INT("RELAY_RETENTION_HOURS", T, retention_hours, "24", 0,
	    87600, "published rows older than this are deleted (0: keep "
	    "them forever)"),
	CFG_ROW_INT("RELAY_RETENTION_INTERVAL", T, retention_interval_s,
	    "60", 1, 86400, "seconds between two sweeps of old published "
	    "rows"),
	/* 200 ids of 37 bytes fit in one log line (LOG_LINE_MAX, 8 KiB). */
	CFG_ROW_INT("RELAY_LOG_IDS", T, log_ids, "10", 0, 200,
	    "message ids listed per \"Published messages\" line; more are "
	    "counted"),
	CFG_ROW_STR("RELAY_ROUTING_KEY", T, routing_key, MQ_QUEUE, 1,
	    "queue published to through the default exchange (change it "
	    "only for tests)"),
	CFG_ROW_STR("RELAY_BINLOG_USER", T, binlog_user, "outbox_binlog", 1,
	    "binlog mode: the binary log reader's database login (it can "
	    "read every table's changes: give it its own)"),
	CFG_ROW_SECRET("RELAY_BINLOG_PASSWORD", T, binlog_pass, "",
	    "binlog mode: the binary log reader's password"),
	CFG_ROW_INT("RELAY_BINLOG_SERVER_ID", T, binlog_server_id, "0", 0,
	    2147483647, "binlog mode: the reader's replica server id, unique "
	    "among the server's replicas (0: a random one at each start)"),
	CFG_ROW_INT("RELAY_BINLOG_HEARTBEAT_MS", T, binlog_heartbeat_ms,
	    "500", 100, 10000, "binlog mode: the server's heartbeat while "
	    "idle; three missed heartbeats are a lost connection"),
	CFG_ROW_INT("RELAY_LEADER_TIMEOUT_S", T, leader_timeout_s, "15", 2,
	    3600, "binlog mode: seconds after which a frozen or cut-off "
	    "leader's session, and so its leader lock, is ended by the "
	    "server"),
	DAEMON_OBS_ROWS(T, "RELAY", "9465"),
	DAEMON_LOG_ROWS(T),
};
#undef T
const size_t relay_nopts = sizeof(relay_opts) / sizeof(relay_opts[0]);

int
relay_config_load(struct relay_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	if (cfg_load(relay_opts, relay_nopts, cfg, err, errlen) == -1 ||
	    mq_params_check(&cfg->mq, err, errlen) == -1)
		return -1;
	if (cfg->retry_max_ms < cfg->retry_base_ms) {
		snprintf(err, errlen, "RELAY_RETRY_MAX_MS: %d is below "
		    "RELAY_RETRY_BASE_MS (%d)", cfg->retry_max_ms,
		    cfg->retry_base_ms);
		return -1;
	}
	/* The leader's lock session is idle at most while a batch waits
	 * for its confirms, plus a quarter of the timeout between its
	 * keep-alives (binlog_loop.c). */
	if (cfg->mode == RELAY_MODE_BINLOG &&
	    (long long)cfg->leader_timeout_s * 750 <= cfg->confirm_timeout_ms) {
		snprintf(err, errlen, "RELAY_LEADER_TIMEOUT_S: %d s is too "
		    "short for RELAY_CONFIRM_TIMEOUT_MS (%d ms): a leader "
		    "waiting for confirms would lose its lock; it must be over "
		    "4/3 of it", cfg->leader_timeout_s,
		    cfg->confirm_timeout_ms);
		return -1;
	}
	return 0;
}

int
relay_idle_transaction_s(const struct relay_config *cfg)
{
	return (cfg->confirm_timeout_ms + 999) / 1000 + cfg->db.io_timeout_s +
	    5;
}

void
relay_binlog_params(const struct relay_config *cfg, struct db_params *out)
{
	*out = cfg->db;
	snprintf(out->user, sizeof(out->user), "%s", cfg->binlog_user);
	snprintf(out->pass, sizeof(out->pass), "%s", cfg->binlog_pass);
}
