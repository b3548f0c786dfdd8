/*
 * main.c - outbox-worker: wiring only.  Config, signals, the inbox
 * retention's pruner (inbox_retention.c), the queue depth sampler
 * (qdepth.c), the consume loop (consume.c), shutdown.  SIGTERM/SIGINT:
 * the loop finishes or rolls back the batch in flight, closes its
 * connections, the sampler and the pruner stop, and the process exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "config.h"
#include "consume.h"
#include "daemon.h"
#include "db.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "inbox_retention.h"
#include "obs.h"
#include "pruner.h"
#include "qdepth.h"
#include "worker_metrics.h"

static volatile sig_atomic_t worker_stop;

int
main(int argc, char **argv)
{
	struct worker_config cfg;
	struct pruner *pruner;
	struct qdepth *qdepth;
	struct obs *obs = NULL;
	char err[256];
	int rc, failed;

	log_init("worker", LOG_LVL_INFO);
	if (daemon_help(argc, argv, "usage: outbox-worker\nConsumes queue "
	    "outbox and handles each event once.", worker_opts, worker_nopts))
		return 0;
	if (worker_config_load(&cfg, err, sizeof(err)) == -1)
		fatalx("config: %s", err);
	daemon_logging("worker", cfg.log_level, cfg.log_format);
	cfg_log(worker_opts, worker_nopts, &cfg);

	/* A signal must not break a database read in the middle of a
	 * commit (SA_RESTART); the loop looks at the flag often enough. */
	daemon_signals(&worker_stop);

	worker_metrics_init();
	health_broker_hosts(&cfg.mq);
	if (cfg.metrics_port > 0 && (obs = obs_start(cfg.metrics_bind,
	    cfg.metrics_port, health_ready, NULL)) == NULL)
		log_warnx("consuming without the metrics listener");
	db_global_init();
	/* The inbox retention's own thread and connection. */
	pruner = inbox_pruner_start(&cfg, &failed);
	/* The gauges of the queues' depths: a thread and connection of
	 * their own, never in the way of a delivery. */
	qdepth = failed ? NULL : qdepth_start(&cfg.mq,
	    cfg.queue_sample_s);
	rc = failed ? -1 : consume_run(&cfg, &worker_stop);
	qdepth_free(qdepth);
	pruner_free(pruner);
	obs_stop(obs);
	db_global_end();
	metrics_free_all();
	if (rc == -1)
		return 1;
	log_info("stopped");
	return 0;
}
