/*
 * admin.h - what outbox-admin's commands share: the configuration (the
 * daemons' DB_* and RABBITMQ_* variables, the worker's retention) and
 * one entry point per command group, each returning an admin_exit.
 * Every command prints text, or one JSON document with --json, on
 * standard output; warnings go to standard error.
 */
#ifndef OUTBOX_ADMIN_H
#define OUTBOX_ADMIN_H

#include <jansson.h>

#include "args.h"
#include "db.h"
#include "mq.h"

struct admin_config {
	struct db_params db;
	struct mq_params mq;
	int inbox_hours;        /* WORKER_PROCESSED_RETENTION_HOURS */
	int dlq_max;            /* ADMIN_DLQ_MAX */
	int confirm_timeout_ms; /* ADMIN_CONFIRM_TIMEOUT_MS */
};

/* status (status.c). */
int admin_status(const struct admin_config *cfg, const struct admin_args *a);
/* dlq list, show, replay, purge (dlq.c). */
int admin_dlq(const struct admin_config *cfg, const struct admin_args *a);
/* parked list, release (parked.c). */
int admin_parked(const struct admin_config *cfg, const struct admin_args *a);

/* Prints doc as indented JSON and a newline on standard output; steals
 * doc.  0 or -1. */
int admin_print_json(json_t *doc);
/* A connection to the database as cfg says, connected; NULL (logged)
 * when it cannot be had. */
db_conn *admin_db(const struct admin_config *cfg);
/* A connection to the broker (confirm: in confirm mode), connected; NULL
 * (logged) when it cannot be had. */
mq_conn *admin_mq(const struct admin_config *cfg, int confirm);

#endif
