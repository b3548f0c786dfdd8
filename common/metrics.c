/*
 * metrics.c - the metrics registry and its Prometheus text rendering.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mkind { M_COUNTER, M_GAUGE, M_HIST };

struct metric {
	enum mkind kind;
	char *name;
	char *help;
	char *labels;
	struct metric *next;
};

struct mcounter {
	struct metric m;
	_Atomic uint64_t v;
};

struct mgauge {
	struct metric m;
	_Atomic uint64_t bits; /* the double's bits */
};

struct mhist {
	struct metric m;
	double *bounds;
	size_t nbounds;
	_Atomic uint64_t *counts; /* nbounds + 1 (the last is +Inf) */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_bits;
};

const double metrics_latency_bounds[] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 0.5, 1, 2.5, 5, 10,
};
const size_t metrics_latency_nbounds =
    sizeof(metrics_latency_bounds) / sizeof(metrics_latency_bounds[0]);

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct metric *reg_head, *reg_tail;

static int
metric_init(struct metric *m, enum mkind kind, const char *name,
    const char *help, const char *labels)
{
	m->kind = kind;
	m->name = strdup(name);
	m->help = strdup(help);
	m->labels = labels != NULL ? strdup(labels) : NULL;
	if (m->name == NULL || m->help == NULL ||
	    (labels != NULL && m->labels == NULL))
		return -1;
	pthread_mutex_lock(&reg_mu);
	if (reg_tail != NULL)
		reg_tail->next = m;
	else
		reg_head = m;
	reg_tail = m;
	pthread_mutex_unlock(&reg_mu);
	return 0;
}

static void
metric_fini(struct metric *m)
{
	free(m->name);
	free(m->help);
	free(m->labels);
}

struct mcounter *
metrics_counter(const char *name, const char *help, const char *labels)
{
	struct mcounter *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	atomic_init(&c->v, 0);
	if (metric_init(&c->m, M_COUNTER, name, help, labels) == -1) {
		metric_fini(&c->m);
		free(c);
		return NULL;
	}
	return c;
}

static uint64_t
dbits(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	return b;
}

static double
bitsd(uint64_t b)
{
	double v;

	memcpy(&v, &b, sizeof(v));
	return v;
}

struct mgauge *
metrics_gauge(const char *name, const char *help, const char *labels)
{
	struct mgauge *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	atomic_init(&g->bits, dbits(0));
	if (metric_init(&g->m, M_GAUGE, name, help, labels) == -1) {
		metric_fini(&g->m);
		free(g);
		return NULL;
	}
	return g;
}

struct mhist *
metrics_histogram(const char *name, const char *help, const char *labels,
    const double *bounds, size_t nbounds)
{
	struct mhist *h = calloc(1, sizeof(*h));
	size_t i;

	if (h == NULL)
		return NULL;
	h->bounds = calloc(nbounds ? nbounds : 1, sizeof(*h->bounds));
	h->counts = calloc(nbounds + 1, sizeof(*h->counts));
	if (h->bounds == NULL || h->counts == NULL)
		goto fail;
	memcpy(h->bounds, bounds, nbounds * sizeof(*bounds));
	h->nbounds = nbounds;
	for (i = 0; i <= nbounds; i++)
		atomic_init(&h->counts[i], 0);
	atomic_init(&h->count, 0);
	atomic_init(&h->sum_bits, dbits(0));
	if (metric_init(&h->m, M_HIST, name, help, labels) == -1)
		goto fail;
	return h;
fail:
	metric_fini(&h->m);
	free(h->bounds);
	free((void *)h->counts);
	free(h);
	return NULL;
}

void
mcounter_add(struct mcounter *c, uint64_t n)
{
	if (c != NULL)
		atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

uint64_t
mcounter_get(const struct mcounter *c)
{
	return c != NULL ? atomic_load(&((struct mcounter *)(uintptr_t)c)->v) : 0;
}

void
mgauge_set(struct mgauge *g, double v)
{
	if (g != NULL)
		atomic_store_explicit(&g->bits, dbits(v), memory_order_relaxed);
}

void
mhist_observe(struct mhist *h, double v)
{
	uint64_t old, want;
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->nbounds && v > h->bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
	do {
		want = dbits(bitsd(old) + v);
	} while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old,
	    want, memory_order_relaxed, memory_order_relaxed));
}

/* Writes a double as Prometheus expects (+Inf, integers without ".0"). */
static int
fmt_double(struct buf *out, double v)
{
	if (isinf(v))
		return buf_appendf(out, v > 0 ? "+Inf" : "-Inf");
	if (isnan(v))
		return buf_appendf(out, "NaN");
	return buf_appendf(out, "%.17g", v);
}

/* name{labels[,extra]} */
static int
series(struct buf *out, const char *name, const char *suffix,
    const char *labels, const char *extra)
{
	int has = labels != NULL && *labels != '\0';

	if (buf_appendf(out, "%s%s", name, suffix) == -1)
		return -1;
	if (!has && extra == NULL)
		return buf_append(out, " ", 1);
	return buf_appendf(out, "{%s%s%s} ", has ? labels : "",
	    has && extra ? "," : "", extra ? extra : "");
}

static int
render_one(struct buf *out, const struct metric *m)
{
	char le[64];
	uint64_t cum = 0;
	size_t i;

	switch (m->kind) {
	case M_COUNTER: {
		const struct mcounter *c = (const struct mcounter *)m;

		return series(out, m->name, "_total", m->labels, NULL) ||
		    buf_appendf(out, "%llu\n", (unsigned long long)
		    atomic_load(&((struct mcounter *)(uintptr_t)c)->v));
	}
	case M_GAUGE: {
		struct mgauge *g = (struct mgauge *)(uintptr_t)m;

		return series(out, m->name, "", m->labels, NULL) ||
		    fmt_double(out, bitsd(atomic_load(&g->bits))) ||
		    buf_append(out, "\n", 1);
	}
	case M_HIST: {
		struct mhist *h = (struct mhist *)(uintptr_t)m;

		for (i = 0; i <= h->nbounds; i++) {
			cum += atomic_load(&h->counts[i]);
			if (i < h->nbounds)
				snprintf(le, sizeof(le), "le=\"%g\"",
				    h->bounds[i]);
			else
				snprintf(le, sizeof(le), "le=\"+Inf\"");
			if (series(out, m->name, "_bucket", m->labels, le) ||
			    buf_appendf(out, "%llu\n", (unsigned long long)cum))
				return -1;
		}
		return series(out, m->name, "_sum", m->labels, NULL) ||
		    fmt_double(out, bitsd(atomic_load(&h->sum_bits))) ||
		    buf_append(out, "\n", 1) ||
		    series(out, m->name, "_count", m->labels, NULL) ||
		    buf_appendf(out, "%llu\n", (unsigned long long)
		    atomic_load(&h->count));
	}
	}
	return -1;
}

int
metrics_render(struct buf *out)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };
	struct metric *m, *k;
	int seen;

	pthread_mutex_lock(&reg_mu);
	for (m = reg_head; m != NULL; m = m->next) {
		/* A name is rendered once, with every series of it, at its
		 * first registration. */
		for (seen = 0, k = reg_head; k != m; k = k->next)
			if (strcmp(k->name, m->name) == 0)
				seen = 1;
		if (seen)
			continue;
		if (buf_appendf(out, "# HELP %s%s %s\n# TYPE %s%s %s\n", m->name,
		    m->kind == M_COUNTER ? "_total" : "", m->help, m->name,
		    m->kind == M_COUNTER ? "_total" : "", types[m->kind]) == -1)
			goto fail;
		for (k = m; k != NULL; k = k->next)
			if (strcmp(k->name, m->name) == 0 &&
			    render_one(out, k) == -1)
				goto fail;
	}
	pthread_mutex_unlock(&reg_mu);
	return 0;
fail:
	pthread_mutex_unlock(&reg_mu);
	return -1;
}

void
metrics_free_all(void)
{
	struct metric *m, *next;

	pthread_mutex_lock(&reg_mu);
	for (m = reg_head; m != NULL; m = next) {
		next = m->next;
		metric_fini(m);
		if (m->kind == M_HIST) {
			free(((struct mhist *)m)->bounds);
			free((void *)((struct mhist *)m)->counts);
		}
		free(m);
	}
	reg_head = reg_tail = NULL;
	pthread_mutex_unlock(&reg_mu);
}
