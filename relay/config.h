/*
 * config.h - the relay's settings, loaded once at start from the
 * environment (one table row per setting in config.c).
 */
#ifndef OUTBOX_RELAY_CONFIG_H
#define OUTBOX_RELAY_CONFIG_H

#include <stddef.h>

#include "db.h"
#include "mq.h"

/* Largest RELAY_BATCH_SIZE: one UPDATE marks a whole batch, and a
 * statement takes at most 1024 placeholders (common/db.c). */
#define RELAY_BATCH_MAX 1000
/* Most batches in flight at once (each holds a database connection). */
#define RELAY_INFLIGHT_MAX MQ_INFLIGHT_MAX

/* RELAY_MODE: where new outbox rows are found. */
enum relay_mode {
	RELAY_MODE_POLL,   /* a locking read of the table (loop.c) */
	RELAY_MODE_BINLOG, /* the binary log, as a replica (binlog_loop.c) */
};
extern const char *const relay_mode_names[];

struct relay_config {
	int mode;                /* enum relay_mode */
	struct db_params db;
	struct mq_params mq;
	int batch_size;
	int inflight_batches;
	int poll_ms;
	int confirm_timeout_ms;
	int retry_base_ms;
	int retry_max_ms;
	int max_attempts;        /* then the row is parked */
	int max_message_bytes;   /* larger bodies are refused here */
	int reconnect_max_ms;
	int retention_hours;
	int retention_interval_s;
	int log_ids;
	char routing_key[256];
	/* Binlog mode: the reader's login (the rest is db's) and session. */
	char binlog_user[128];
	char binlog_pass[256];
	int binlog_server_id;    /* 0: a random one per start */
	int binlog_heartbeat_ms;
	int leader_timeout_s;    /* the leader lock session's wait_timeout */
	int metrics_port;        /* 0: no metrics listener */
	char metrics_bind[64];
	int log_level;           /* enum log_level */
	int log_format;          /* enum log_format */
};

extern const struct cfg_opt relay_opts[];
extern const size_t relay_nopts;

/* Fills cfg from the environment and checks the settings against each
 * other; 0, or -1 with a reason naming the variable in err. */
int relay_config_load(struct relay_config *cfg, char *err, size_t errlen);

/* The relay sessions' idle_transaction_timeout (seconds): longer than a
 * transaction may legitimately stay idle (a batch waiting for its
 * confirms, RELAY_CONFIRM_TIMEOUT_MS, and for the durability barrier,
 * DB_IO_TIMEOUT), so that only a frozen or vanished relay is cut off:
 * the longest a row can stay locked by a relay that stopped. */
int relay_idle_transaction_s(const struct relay_config *cfg);

/* The binlog reader's connection parameters: cfg->db with its login. */
void relay_binlog_params(const struct relay_config *cfg,
    struct db_params *out);

#endif
