/*
 * tcp_timewait.c - outbox-tcp-timewait: leaves 127.0.0.1:PORT in
 * TIME-WAIT on the side of an outgoing connection, as any program's
 * connection that took PORT as its source port (from the ephemeral
 * range) and closed first leaves it, for the kernel's 60 s.
 *
 *   outbox-tcp-timewait PORT
 *
 * Such a socket keeps a server from binding PORT even with SO_REUSEADDR
 * (it did not set it); tests/infra_test.sh checks that scripts/infra.sh
 * waits it out instead of failing its starts one after the other.  It
 * connects from 127.0.0.1:PORT to a listener of its own, closes that
 * side first, then the accepted side, prints "held" and exits: the
 * TIME-WAIT outlives the process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cfg.h"

static volatile sig_atomic_t term;

static void
on_term(int sig)
{
	(void)sig;
	term = 1;
}

static int
loopback(struct sockaddr_in *sa, unsigned port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return socket(AF_INET, SOCK_STREAM, 0);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in at, to;
	socklen_t len = sizeof(to);
	int port, live;
	int lfd = -1, cfd = -1, afd = -1, rc = 1;

	live = argc == 3 && strcmp(argv[2], "live") == 0;
	if ((argc != 2 && !live) ||
	    cfg_parse_int(argv[1], 1, 65535, &port) != 0) {
		fprintf(stderr, "usage: outbox-tcp-timewait PORT (1-65535) "
		    "[live]\n");
		return 2;
	}
	lfd = loopback(&to, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&to, sizeof(to)) != 0 ||
	    listen(lfd, 1) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&to, &len) != 0) {
		fprintf(stderr, "outbox-tcp-timewait: listener: %s\n", strerror(errno));
		goto out;
	}
	cfd = loopback(&at, (unsigned)port);
	if (cfd < 0 || bind(cfd, (struct sockaddr *)&at, sizeof(at)) != 0 ||
	    connect(cfd, (struct sockaddr *)&to, sizeof(to)) != 0) {
		fprintf(stderr, "outbox-tcp-timewait: connect from 127.0.0.1:%d: %s\n",
		    port, strerror(errno));
		goto out;
	}
	afd = accept(lfd, NULL, NULL);
	if (afd < 0) {
		fprintf(stderr, "outbox-tcp-timewait: accept: %s\n", strerror(errno));
		goto out;
	}
	if (live) {
		/* Until SIGTERM; then the accepted side closes first, so
		 * that no TIME-WAIT stays on PORT (the test uses it next). */
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_term;
		if (sigaction(SIGTERM, &sa, NULL) != 0) {
			fprintf(stderr, "outbox-tcp-timewait: sigaction: %s\n",
			    strerror(errno));
			goto out;
		}
		printf("held\n");
		fflush(stdout);
		while (!term)
			pause();
		close(afd);
		afd = -1;
		char c;
		if (read(cfd, &c, 1) != 0) {
			fprintf(stderr, "outbox-tcp-timewait: the peer did not "
			    "close\n");
			goto out;
		}
		rc = 0;
		goto out;
	}
	/* The connecting side closes first: it is the one left in TIME-WAIT
	 * once the peer's FIN is acknowledged (the peer's close below). */
	close(cfd);
	cfd = -1;
	char b;
	if (read(afd, &b, 1) != 0) {
		fprintf(stderr, "outbox-tcp-timewait: the peer did not see the close\n");
		goto out;
	}
	printf("held\n");
	rc = 0;
out:
	if (afd >= 0)
		close(afd);
	if (cfd >= 0)
		close(cfd);
	if (lfd >= 0)
		close(lfd);
	return rc;
}
