/*
 * daemon.c - shared start-up of the daemons (see daemon.h).
 */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static volatile sig_atomic_t *daemon_stop_flag;

int
daemon_help(int argc, char **argv, const char *usage,
    const struct cfg_opt *opts, size_t nopts)
{
	if (argc < 2 || (strcmp(argv[1], "--help") != 0 &&
	    strcmp(argv[1], "-h") != 0))
		return 0;
	printf("%s\n", usage);
	cfg_usage(opts, nopts);
	return 1;
}

void
daemon_logging(const char *procname, int level, int format)
{
	log_init(procname, (enum log_level)level);
	log_set_format((enum log_format)format);
}

static void
daemon_on_signal(int sig)
{
	(void)sig;
	*daemon_stop_flag = 1;
}

void
daemon_signals(volatile sig_atomic_t *stop)
{
	struct sigaction sa;

	daemon_stop_flag = stop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = daemon_on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGPIPE, &sa, NULL);
}

int
daemon_thread(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int e;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		errno = e;
		return -1;
	}
	return 0;
}
