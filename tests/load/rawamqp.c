/*
 * rawamqp.c - the raw reference clients' rabbitmq-c session (see
 * rawamqp.h).
 */
#include "rawamqp.h"

#include <amqp_tcp_socket.h>
#include <stdio.h>

#include "cfg.h"

int
raw_check(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
		fprintf(stderr, "bench: %s: %s\n", what,
		    amqp_error_string2(r.library_error));
	else
		fprintf(stderr, "bench: %s: broker error 0x%08x\n", what,
		    r.reply.id);
	return -1;
}

int
raw_open(amqp_connection_state_t *st, const char *host, int port,
    const char *vhost, const char *user, const char *pass)
{
	amqp_socket_t *sock;

	*st = amqp_new_connection();
	if ((sock = amqp_tcp_socket_new(*st)) == NULL ||
	    amqp_socket_open(sock, host, port) != AMQP_STATUS_OK) {
		fprintf(stderr, "bench: cannot connect\n");
		return -1;
	}
	if (raw_check(amqp_login(*st, vhost, 0, 131072, 0,
	    AMQP_SASL_METHOD_PLAIN, user, pass), "login") == -1)
		return -1;
	amqp_channel_open(*st, RAW_CH);
	return raw_check(amqp_get_rpc_reply(*st), "channel.open");
}

int
raw_open_first(amqp_connection_state_t *st, const struct mq_params *p,
    char *name, size_t namelen)
{
	struct mq_host h[MQ_HOSTS_MAX];
	char err[256];
	int n, i;

	*st = NULL;
	if ((n = mq_hosts_parse(p, h, MQ_HOSTS_MAX, err, sizeof(err))) == -1) {
		fprintf(stderr, "bench: %s\n", err);
		*st = amqp_new_connection();
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (*st != NULL)
			amqp_destroy_connection(*st);
		snprintf(name, namelen, "%s:%d", h[i].host, h[i].port);
		if (raw_open(st, h[i].host, h[i].port, p->vhost, p->user,
		    p->pass) == 0)
			return 0;
		fprintf(stderr, "bench: %s did not answer\n", name);
	}
	return -1;
}

int
raw_arg_int(int argc, char **argv, int i, int def, int min, int max,
    int *out)
{
	if (argc <= i) {
		*out = def;
		return 0;
	}
	if (cfg_parse_int(argv[i], min, max, out) == -1) {
		fprintf(stderr, "bench: argument %d: expected an integer in "
		    "[%d, %d]\n", i, min, max);
		return -1;
	}
	return 0;
}
