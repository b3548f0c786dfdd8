/*
 * metrics.h - Prometheus metrics: counters, gauges and histograms kept in
 * a process-wide registry and rendered in the text exposition format.
 *
 * Metrics are registered at start-up (one thread), then updated from any
 * thread without locks (C11 atomics).  Several series may share a name
 * with different labels; they are rendered under one HELP/TYPE header.
 * The registry owns every metric: the pointers stay valid until
 * metrics_free_all().
 */
#ifndef OUTBOX_METRICS_H
#define OUTBOX_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct mcounter;
struct mgauge;
struct mhist;

/* labels: NULL, or the inside of the braces, e.g. "route=\"/customers\"".
 * name, help and labels are copied.  NULL only when out of memory. */
struct mcounter *metrics_counter(const char *name, const char *help,
    const char *labels);
struct mgauge *metrics_gauge(const char *name, const char *help,
    const char *labels);
/* bounds: ascending upper bounds of the buckets (+Inf is implied). */
struct mhist *metrics_histogram(const char *name, const char *help,
    const char *labels, const double *bounds, size_t nbounds);

/* NULL-safe updates. */
void mcounter_add(struct mcounter *c, uint64_t n);
void mgauge_set(struct mgauge *g, double v);
void mhist_observe(struct mhist *h, double v);

uint64_t mcounter_get(const struct mcounter *c);

/* Latency buckets in seconds, 100 us .. 10 s. */
extern const double metrics_latency_bounds[];
extern const size_t metrics_latency_nbounds;

/* Appends the whole registry in the text exposition format (0.0.4). */
int metrics_render(struct buf *out);
/* Frees every metric (at exit). */
void metrics_free_all(void);

#endif
