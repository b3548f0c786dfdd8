/*
 * main.c - outbox-admin: an operator's tool for the outbox (README,
 * "Admin"): status, the dead-letter queue (list, show, replay, purge),
 * parked outbox rows (list, release).  Only wires: configuration,
 * arguments, the command, its exit status (args.h, enum admin_exit).
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "cfg.h"
#include "daemon.h"
#include "inbox_age.h"
#include "log.h"

#define T struct admin_config
static const struct cfg_opt admin_opts[] = {
	DB_CFG_ROWS(T, db),
	MQ_CFG_ROWS(T, mq),
	/* The worker's own variable: one env file configures both. */
	CFG_ROW_INT("WORKER_PROCESSED_RETENTION_HOURS", T, inbox_hours, "168",
	    0, 87600, "the worker's inbox retention: dlq replay refuses "
	    "messages older than it minus 1 h (0: none)"),
	CFG_ROW_INT("ADMIN_DLQ_MAX", T, dlq_max, "10000", 1, 1000000,
	    "dead-lettered messages dlq list/show/replay hold at once"),
	CFG_ROW_INT("ADMIN_CONFIRM_TIMEOUT_MS", T, confirm_timeout_ms, "30000",
	    100, 600000, "how long dlq replay waits for the broker's "
	    "confirms"),
};
#undef T
#define NOPTS (sizeof(admin_opts) / sizeof(admin_opts[0]))

int
admin_print_json(json_t *doc)
{
	int rc;

	if (doc == NULL)
		return -1;
	rc = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (rc == 0)
		putchar('\n');
	return rc;
}

db_conn *
admin_db(const struct admin_config *cfg)
{
	db_conn *c;

	if ((c = db_new(&cfg->db)) == NULL) {
		log_warnx("database: out of memory");
		return NULL;
	}
	if (db_connect(c) != DB_OK) {
		log_warnx("database %s:%d: %s", cfg->db.host, cfg->db.port,
		    db_error(c));
		db_free(c);
		return NULL;
	}
	return c;
}

mq_conn *
admin_mq(const struct admin_config *cfg, int confirm)
{
	mq_conn *m;

	if ((m = mq_new(&cfg->mq)) == NULL) {
		log_warnx("broker: out of memory");
		return NULL;
	}
	if (mq_connect(m, confirm) == -1) {
		log_warnx("broker: %s", mq_error(m));
		mq_free(m);
		return NULL;
	}
	return m;
}

int
main(int argc, char **argv)
{
	static struct admin_args args;
	struct admin_config cfg;
	char err[256];
	int rc;

	char *help[] = { argv[0], "--help", NULL };
	int i;

	log_init("admin", LOG_LVL_WARN);
	/* --help wherever it is, e.g. after a command. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			daemon_help(2, help, args_usage, admin_opts, NOPTS);
			return ADMIN_OK;
		}
	}
	if (args_parse(argc, argv, &args, err, sizeof(err)) == -1) {
		fprintf(stderr, "outbox-admin: %s\n%s\n", err, args_usage);
		return ADMIN_REFUSED;
	}
	memset(&cfg, 0, sizeof(cfg));
	if (cfg_load(admin_opts, NOPTS, &cfg, err, sizeof(err)) == -1 ||
	    mq_params_check(&cfg.mq, err, sizeof(err)) == -1 ||
	    inbox_hours_check(cfg.inbox_hours, err, sizeof(err)) == -1) {
		fprintf(stderr, "outbox-admin: config: %s\n", err);
		return ADMIN_REFUSED;
	}
	db_global_init();
	switch (args.cmd) {
	case CMD_STATUS:
		rc = admin_status(&cfg, &args);
		break;
	case CMD_PARKED_LIST:
	case CMD_PARKED_RELEASE:
		rc = admin_parked(&cfg, &args);
		break;
	default:
		rc = admin_dlq(&cfg, &args);
		break;
	}
	db_global_end();
	fflush(stdout);
	return rc;
}
