/*
 * sqlproxy.c - outbox-sqlproxy: a TCP proxy between a daemon and MariaDB
 * that can lose the reply to a COMMIT, for the tests of unknown commit
 * outcomes.
 *
 *   outbox-sqlproxy LISTEN_PORT UPSTREAM_PORT
 *
 * Listens on 127.0.0.1:LISTEN_PORT and relays every connection to
 * 127.0.0.1:UPSTREAM_PORT.  It reads the client's side as MySQL packets
 * (3-byte length, sequence number, payload); each SIGUSR1 arms one cut:
 * the next COM_QUERY "COMMIT" of any connection is forwarded to the
 * server, and then both sides of that connection are closed at once, so
 * the server commits (or not) and the client never hears which; SIGUSR2
 * disarms the cuts not done yet (a fault window that saw no COMMIT).  It
 * prints "listening" when ready and one line per cut on stdout; SIGTERM
 * or SIGINT end it.  One thread, poll(); no TLS, no compression (the
 * daemons use neither).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "cfg.h"

#define MAX_CONNS 512
#define COM_QUERY 0x03

struct pconn {
	int client, server;
	struct buf in; /* client bytes not yet forwarded (partial packet) */
};

static volatile sig_atomic_t cuts_armed;
static volatile sig_atomic_t stopping;
static struct pconn conns[MAX_CONNS];
static int nconns;

static void
on_usr1(int sig)
{
	(void)sig;
	cuts_armed++;
}

static void
on_usr2(int sig)
{
	(void)sig;
	cuts_armed = 0;
}

static void
on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static int
listen_on(int port)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(fd, 128) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
connect_to(int port)
{
	struct sockaddr_in sa;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
drop(int i)
{
	close(conns[i].client);
	close(conns[i].server);
	buf_free(&conns[i].in);
	conns[i] = conns[--nconns];
}

static int
is_commit(const unsigned char *payload, size_t len)
{
	size_t a = 1, b = len;

	if (len < 1 || payload[0] != COM_QUERY)
		return 0;
	while (a < b && (payload[a] == ' ' || payload[a] == '\n'))
		a++;
	while (b > a && (payload[b - 1] == ' ' || payload[b - 1] == ';' ||
	    payload[b - 1] == '\n'))
		b--;
	return b - a == 6 && strncasecmp((const char *)payload + a, "COMMIT",
	    6) == 0;
}

/* Forwards the complete packets of c->in; returns 1 when the
 * connection was cut after a COMMIT, -1 on a write error, else 0. */
static int
forward_packets(struct pconn *c, int idx)
{
	const unsigned char *p;
	size_t off = 0, plen;

	while (c->in.len - off >= 4) {
		p = (const unsigned char *)c->in.data + off;
		plen = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16;
		if (c->in.len - off < 4 + plen)
			break;
		if (write_all(c->server, (const char *)p, 4 + plen) == -1)
			return -1;
		off += 4 + plen;
		if (cuts_armed > 0 && is_commit(p + 4, plen)) {
			cuts_armed--;
			printf("cut after COMMIT on connection %d\n", idx);
			fflush(stdout);
			return 1;
		}
	}
	memmove(c->in.data, c->in.data + off, c->in.len - off);
	c->in.len -= off;
	return 0;
}

int
main(int argc, char **argv)
{
	struct pollfd pfd[1 + 2 * MAX_CONNS];
	struct sigaction sa;
	int lport, uport, lfd, fd, up, i, n, rc;
	char chunk[65536];
	ssize_t r;

	if (argc != 3 || cfg_parse_int(argv[1], 1, 65535, &lport) == -1 ||
	    cfg_parse_int(argv[2], 1, 65535, &uport) == -1) {
		fprintf(stderr, "usage: outbox-sqlproxy LISTEN_PORT "
		    "UPSTREAM_PORT\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	if ((lfd = listen_on(lport)) == -1) {
		perror("outbox-sqlproxy: listen");
		return 1;
	}
	printf("listening on 127.0.0.1:%d -> 127.0.0.1:%d\n", lport, uport);
	fflush(stdout);
	while (!stopping) {
		pfd[0].fd = lfd;
		pfd[0].events = POLLIN;
		for (i = 0; i < nconns; i++) {
			pfd[1 + 2 * i].fd = conns[i].client;
			pfd[1 + 2 * i].events = POLLIN;
			pfd[2 + 2 * i].fd = conns[i].server;
			pfd[2 + 2 * i].events = POLLIN;
		}
		n = poll(pfd, (nfds_t)(1 + 2 * nconns), 200);
		if (n <= 0)
			continue;
		/* Back to front: drop() moves the last connection into the
		 * slot it frees. */
		for (i = nconns - 1; i >= 0; i--) {
			rc = 0;
			if (pfd[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) {
				r = read(conns[i].server, chunk, sizeof(chunk));
				if (r <= 0 || write_all(conns[i].client, chunk,
				    (size_t)r) == -1)
					rc = -1;
			}
			if (rc == 0 && (pfd[1 + 2 * i].revents &
			    (POLLIN | POLLHUP | POLLERR))) {
				r = read(conns[i].client, chunk, sizeof(chunk));
				if (r <= 0 || buf_append(&conns[i].in, chunk,
				    (size_t)r) == -1)
					rc = -1;
				else
					rc = forward_packets(&conns[i], i);
			}
			if (rc != 0)
				drop(i);
		}
		if ((pfd[0].revents & POLLIN) && nconns < MAX_CONNS &&
		    (fd = accept(lfd, NULL, NULL)) != -1) {
			if ((up = connect_to(uport)) == -1) {
				close(fd);
				continue;
			}
			conns[nconns].client = fd;
			conns[nconns].server = up;
			buf_init(&conns[nconns].in, 64u * 1024 * 1024);
			nconns++;
		}
	}
	while (nconns > 0)
		drop(nconns - 1);
	close(lfd);
	return 0;
}
