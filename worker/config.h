/*
 * config.h - the worker's settings, loaded once at start from the
 * environment (table in config.c).
 */
#ifndef OUTBOX_WORKER_CONFIG_H
#define OUTBOX_WORKER_CONFIG_H

#include <stddef.h>

#include "db.h"
#include "mq.h"

/* The most WORKER_DB_POOL may be. */
#define WORKER_DB_POOL_MAX 8

struct worker_config {
	struct db_params db;
	struct mq_params mq;
	int prefetch;        /* unacknowledged deliveries the broker sends */
	int batch_max;       /* deliveries per transaction */
	int batch_wait_ms;   /* wait for more after the first of a batch */
	int db_pool;         /* database connections: batches in flight */
	int retry_base_ms;   /* first reconnect / retry delay */
	int retry_max_ms;    /* largest delay */
	int dlq_timeout_ms;  /* wait for the broker's confirm of a DLQ copy */
	int retention_hours; /* processed ids kept; 0: for ever */
	int retention_interval_s; /* between two sweeps of old ids */
	int queue_sample_s;  /* between two samples of the queues' depths */
	int metrics_port;    /* 0: no metrics listener */
	char metrics_bind[64];
	int log_level;           /* enum log_level */
	int log_format;          /* enum log_format */
};

extern const struct cfg_opt worker_opts[];
extern const size_t worker_nopts;

/* Fills cfg from the environment and checks the settings against each
 * other; 0, or -1 with the reason (naming the variable) in err. */
int worker_config_load(struct worker_config *cfg, char *err, size_t errlen);

#endif
