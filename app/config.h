/*
 * config.h - the app's settings, loaded once at start from the environment.
 */
#ifndef OUTBOX_APP_CONFIG_H
#define OUTBOX_APP_CONFIG_H

/* The largest APP_GROUP_MAX allowed (app/pool.c keeps a group on its
 * stack). */
#define APP_GROUP_MAX_LIMIT 1000

#include <stddef.h>

#include "db.h"

struct app_config {
	struct db_params db;
	int port;
	char bind[64];
	int http_threads;
	int max_connections;
	int conn_timeout_s;
	int request_timeout_s;
	int shutdown_timeout_s;
	int conn_memory_kib;
	int body_max;
	int db_pool;
	int group_max;           /* at most APP_GROUP_MAX_LIMIT */
	int group_alone_ms;      /* 0: groups never wait for one another */
	int queue_max;
	int lock_wait_s;
	int idem_ttl_hours;
	int prune_chunk;
	int access_log;
	int metrics_port;        /* 0: no metrics listener */
	char metrics_bind[64];
	int log_level;           /* enum log_level */
	int log_format;          /* enum log_format */
};

extern const struct cfg_opt app_opts[];
extern const size_t app_nopts;

/* Fills cfg from the environment; 0, or -1 with the reason in err. */
int app_config_load(struct app_config *cfg, char *err, size_t errlen);

#endif
