/*
 * main.c - outbox-app: wiring only.  Config, signals, the database pool,
 * the HTTP server, then wait for SIGTERM/SIGINT and stop in order:
 * HTTP first (no new work, answers for work in flight), then the pool.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "cfg.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "http.h"
#include "app_metrics.h"
#include "log.h"
#include "metrics.h"
#include "obs.h"
#include "pool.h"

static volatile sig_atomic_t app_stop;

/* Each connection takes a descriptor: lift the soft limit towards the
 * hard one so that APP_MAX_CONNECTIONS can be reached. */
static void
raise_fd_limit(int want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur >= (rlim_t)want)
		return;
	rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("setrlimit(RLIMIT_NOFILE)");
	if (rl.rlim_cur < (rlim_t)want)
		log_warnx("open-file limit %llu is below APP_MAX_CONNECTIONS + "
		    "64 = %d: connections beyond it will be refused",
		    (unsigned long long)rl.rlim_cur, want);
}

int
main(int argc, char **argv)
{
	struct app_config cfg;
	struct obs *obs = NULL;
	struct pool *pool;
	struct http *h;
	char err[256];

	log_init("app", LOG_LVL_INFO);
	if (daemon_help(argc, argv, "usage: outbox-app\nServes the "
	    "customers API.", app_opts, app_nopts))
		return 0;
	if (app_config_load(&cfg, err, sizeof(err)) == -1)
		fatalx("config: %s", err);
	daemon_logging("app", cfg.log_level, cfg.log_format);
	cfg_log(app_opts, app_nopts, &cfg);

	daemon_signals(&app_stop);

	raise_fd_limit(cfg.max_connections + 64);
	app_metrics_init();
	db_global_init();
	if ((pool = pool_new(&cfg)) == NULL)
		fatalx("cannot start the database pool");
	if ((h = http_start(&cfg, pool)) == NULL) {
		pool_free(pool);
		db_global_end();
		metrics_free_all();
		return 1;
	}
	if (cfg.metrics_port > 0 &&
	    (obs = obs_start(cfg.metrics_bind, cfg.metrics_port, pool_db_up,
	    pool)) == NULL)
		log_warnx("serving the API without its metrics listener");
	while (!app_stop)
		backoff_sleep(100, &app_stop);
	log_info("shutting down");
	if (http_stop(h) != 0) {
		/* Connections still wait for a database that hangs beyond
		 * its own timeouts: nothing can be stopped in order. */
		log_warnx("stopped with requests unanswered");
		_exit(1);
	}
	obs_stop(obs);
	pool_free(pool);
	db_global_end();
	metrics_free_all();
	log_info("stopped");
	return 0;
}
