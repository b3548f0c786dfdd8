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
