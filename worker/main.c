/*
 * main.c - outbox-worker: wiring only.  Config, signals, the consume loop
 * (consume.c), shutdown.  SIGTERM/SIGINT: the loop finishes or rolls back
 * the batch in flight, closes its connections, and the process exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "config.h"
#include "consume.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "obs.h"
#include "worker_metrics.h"

static volatile sig_atomic_t worker_stop;

static void
on_signal(int sig)
{
	(void)sig;
	worker_stop = 1;
}

int
main(int argc, char **argv)
{
	struct worker_config cfg;
	struct obs *obs = NULL;
	struct sigaction sa;
	enum log_format fmt;
	enum log_level lvl;
	char err[256];
	int rc;

	log_init("worker", LOG_LVL_INFO);
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		printf("usage: outbox-worker\nConsumes queue outbox and "
		    "handles each event once.\n");
		cfg_usage(worker_opts, worker_nopts);
		return 0;
	}
	if (worker_config_load(&cfg, err, sizeof(err)) == -1)
		fatalx("config: %s", err);
	/* Both checked by worker_config_load. */
	log_level_parse(cfg.log_level, &lvl);
	log_format_parse(cfg.log_format, &fmt);
	log_init("worker", lvl);
	log_set_format(fmt);
	cfg_log(worker_opts, worker_nopts, &cfg);

	/* SA_RESTART: a signal must not break a database read in the
	 * middle of a commit; the loop looks at the flag often enough. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGPIPE, &sa, NULL);

	worker_metrics_init();
	if (cfg.metrics_port > 0 && (obs = obs_start(cfg.metrics_bind,
	    cfg.metrics_port, worker_ready, NULL)) == NULL)
		log_warnx("consuming without the metrics listener");
	db_global_init();
	rc = consume_run(&cfg, &worker_stop);
	obs_stop(obs);
	db_global_end();
	metrics_free_all();
	if (rc == -1)
		return 1;
	log_info("stopped");
	return 0;
}
