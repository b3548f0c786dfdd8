/*
 * health.h - the two servers a relay or a worker depends on: whether
 * each answers, how often one came back, and the readiness that
 * /readyz (common/obs.c) reports from them.
 *
 * Series, under the daemon's prefix P (e.g. "outbox_relay"):
 *   P_server_up{server="database"|"broker"}   gauge, 1 while it answers
 *   P_reconnects_total{server=...}            counter, back after an outage
 *   P_broker_connected_info{host="h:p"}       gauge, one per host of the
 *                                             list: 1 for the broker
 *                                             connected to, else 0
 */
#ifndef OUTBOX_HEALTH_H
#define OUTBOX_HEALTH_H

enum server { SERVER_DB, SERVER_MQ, SERVER_COUNT };

/* Registers the series; once, at start, before any other call. */
void health_init(const char *prefix);
/* A server answered (up = 1) or failed (up = 0).  Thread-safe. */
void health_set(enum server s, int up);
/* A server answered again after failing.  Thread-safe. */
void health_reconnected(enum server s);
/* One warning per outage of a server, whichever of the daemon's threads
 * meets it first (the worker's committer and its pruner share the
 * database).  health_outage_begin: a failure; also marks the server
 * down; 1 when it begins an outage (the caller logs the one warning), 0
 * when one is being reported already.  health_outage_end: a write went
 * through; also marks the server up; 1 when that ends an outage (the
 * caller logs it; the reconnect is counted), else 0.  A server that
 * answers but refuses writes (read_only) is still out: only a write ends
 * the outage.  health_outage: 1 while one is being reported.
 * Thread-safe. */
int health_outage_begin(enum server s);
int health_outage_end(enum server s);
int health_outage(enum server s);
struct mq_params;
/* Registers P_broker_connected_info for each host of p's list (after
 * health_init and mq_params_check). */
void health_broker_hosts(const struct mq_params *p);
/* The broker connected to is host i of that list (-1: none). */
void health_broker(int i);
/* The obs ready callback: 1 while both servers answer.  ud is unused. */
int health_ready(void *ud);

#endif
