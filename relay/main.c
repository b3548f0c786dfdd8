/*
 * main.c - outbox-relay: wiring only.  Config, signals, the loop (see
 * loop.c), then shutdown: the loop returns after finishing or rolling
 * back the batch in flight, and everything is closed in order.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "health.h"
#include "log.h"
#include "binlog_loop.h"
#include "loop.h"
#include "metrics.h"
#include "obs.h"
#include "relay_metrics.h"

static volatile sig_atomic_t relay_stop;

int
main(int argc, char **argv)
{
	struct relay_config cfg;
	struct obs *obs = NULL;
	char err[256];
	int rc;

	log_init("relay", LOG_LVL_INFO);
	if (daemon_help(argc, argv, "usage: outbox-relay\nPublishes the "
	    "outbox to RabbitMQ with publisher confirms.", relay_opts,
	    relay_nopts))
		return 0;
	if (relay_config_load(&cfg, err, sizeof(err)) == -1)
		fatalx("config: %s", err);
	daemon_logging("relay", cfg.log_level, cfg.log_format);
	cfg_log(relay_opts, relay_nopts, &cfg);

	/* The batch in flight goes on undisturbed by a signal: the loop
	 * looks at the flag between batches; its sleeps end early. */
	daemon_signals(&relay_stop);

	relay_metrics_init();
	health_broker_hosts(&cfg.mq);
	if (cfg.metrics_port > 0 && (obs = obs_start(cfg.metrics_bind,
	    cfg.metrics_port, health_ready, NULL)) == NULL)
		log_warnx("relaying without the metrics listener");
	db_global_init();
	log_info("relay started");
	rc = cfg.mode == RELAY_MODE_BINLOG ?
	    relay_run_binlog(&cfg, &relay_stop) : relay_run(&cfg, &relay_stop);
	obs_stop(obs);
	db_global_end();
	metrics_free_all();
	if (rc == -1)
		return 1;
	log_info("stopped");
	return 0;
}
