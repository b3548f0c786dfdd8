/*
 * rawamqp.h - what the raw reference clients (bench_publish.c,
 * bench_consume.c) share: a rabbitmq-c session opened with <amqp.h>
 * directly (no common/mq.c, on purpose: they measure the library and the
 * broker alone), the check of a reply, and their integer arguments.
 */
#ifndef OUTBOX_RAWAMQP_H
#define OUTBOX_RAWAMQP_H

#include <amqp.h>
#include <stddef.h>

#include "mq.h"

/* The channel the session opens. */
#define RAW_CH 1

/* Connects to host:port, logs in as user / pass on vhost, opens channel
 * RAW_CH.  0, or -1 said on stderr.  Either way *st is a new connection
 * for the caller to destroy (amqp_destroy_connection). */
int raw_open(amqp_connection_state_t *st, const char *host, int port,
    const char *vhost, const char *user, const char *pass);
/* raw_open on the brokers of p's host list (mq_hosts_parse:
 * RABBITMQ_HOSTS, else RABBITMQ_HOST:RABBITMQ_PORT) in their order, the
 * first that answers: the daemons' first connect (mq_connect), so that a
 * raw figure and a daemon's are taken on the same node.  name gets its
 * "host:port".  0, or -1 said on stderr (no host answered); either way
 * *st is a connection for the caller to destroy. */
int raw_open_first(amqp_connection_state_t *st, const struct mq_params *p,
    char *name, size_t namelen);
/* 0 when r is a normal reply; otherwise says on stderr what failed
 * and returns -1. */
int raw_check(amqp_rpc_reply_t r, const char *what);
/* argv[i] as an integer in [min, max] into *out, def when there is no
 * argv[i]; -1 said on stderr when it is not one. */
int raw_arg_int(int argc, char **argv, int i, int def, int min, int max,
    int *out);

#endif
