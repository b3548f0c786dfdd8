/*
 * rawamqp.h - what the raw reference clients (bench_publish.c,
 * bench_consume.c) share: a rabbitmq-c session opened with <amqp.h>
 * directly (no common/mq.c, on purpose: they measure the library and the
 * broker alone), the check of a reply, and their integer arguments.
 */
#ifndef OUTBOX_RAWAMQP_H
#define OUTBOX_RAWAMQP_H

#include <amqp.h>

/* The channel the session opens. */
#define RAW_CH 1

/* Connects to host:port, logs in as user / pass on vhost, opens channel
 * RAW_CH.  0, or -1 said on stderr.  Either way *st is a new connection
 * for the caller to destroy (amqp_destroy_connection). */
int raw_open(amqp_connection_state_t *st, const char *host, int port,
    const char *vhost, const char *user, const char *pass);
/* 0 when r is a normal reply; otherwise says on stderr what failed
 * and returns -1. */
int raw_check(amqp_rpc_reply_t r, const char *what);
/* argv[i] as an integer in [min, max] into *out, def when there is no
 * argv[i]; -1 said on stderr when it is not one. */
int raw_arg_int(int argc, char **argv, int i, int def, int min, int max,
    int *out);

#endif
