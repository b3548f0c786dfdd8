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
#include "db.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "obs.h"
#include "relay_metrics.h"

static volatile sig_atomic_t relay_stop;

static void
on_signal(int sig)
{
	(void)sig;
	relay_stop = 1;
}

int
main(int argc, char **argv)
{
	struct relay_config cfg;
	struct obs *obs = NULL;
	struct sigaction sa;
	enum log_format fmt;
	enum log_level lvl;
	char err[256];
	int rc;

	log_init("relay", LOG_LVL_INFO);
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		printf("usage: outbox-relay\nPublishes the outbox to "
		    "RabbitMQ with publisher confirms.\n");
		cfg_usage(relay_opts, relay_nopts);
		return 0;
	}
	if (relay_config_load(&cfg, err, sizeof(err)) == -1)
		fatalx("config: %s", err);
	if (log_level_parse(cfg.log_level, &lvl) == -1)
		fatalx("config: LOG_LEVEL: expected debug, info or warn");
	if (log_format_parse(cfg.log_format, &fmt) == -1)
		fatalx("config: LOG_FORMAT: expected text or json");
	log_init("relay", lvl);
	log_set_format(fmt);
	cfg_log(relay_opts, relay_nopts, &cfg);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	/* The handler only sets a flag; the database and broker calls of
	 * the batch in flight go on undisturbed (the loop looks at the flag
	 * between batches; its sleeps end early). */
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	relay_metrics_init();
	if (cfg.metrics_port > 0 && (obs = obs_start(cfg.metrics_bind,
	    cfg.metrics_port, relay_ready, NULL)) == NULL)
		log_warnx("relaying without the metrics listener");
	db_global_init();
	log_info("relay started");
	rc = relay_run(&cfg, &relay_stop);
	obs_stop(obs);
	db_global_end();
	metrics_free_all();
	if (rc == -1)
		return 1;
	log_info("stopped");
	return 0;
}
