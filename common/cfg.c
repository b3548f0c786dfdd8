/*
 * cfg.c - table-driven environment configuration.
 */
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

int
cfg_parse_int(const char *s, long long min, long long max, int *out)
{
	long long v;
	char *end;

	/* Digits with an optional '-' and nothing else: strtoll alone would
	 * also take a '+' and skip leading white space of any kind. */
	if (s == NULL || !(isdigit((unsigned char)s[0]) ||
	    (s[0] == '-' && isdigit((unsigned char)s[1]))))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

/* "a, b or c" from an enum row's choices. */
static void
cfg_choices_text(const struct cfg_opt *o, char *out, size_t outlen)
{
	size_t i, used = 0;

	out[0] = '\0';
	for (i = 0; o->choices[i] != NULL && used < outlen; i++) {
		used += (size_t)snprintf(out + used, outlen - used, "%s%s",
		    i == 0 ? "" : o->choices[i + 1] == NULL ? " or " : ", ",
		    o->choices[i]);
	}
}

static int
cfg_set(const struct cfg_opt *o, const char *val, void *dst, char *err,
    size_t errlen)
{
	char *field = (char *)dst + o->offset;
	char choices[128];
	size_t len;
	int v;

	switch (o->type) {
	case CFG_STR:
	case CFG_SECRET:
		len = strlen(val);
		if (len >= o->size) {
			snprintf(err, errlen, "%s: value too long (at most %zu "
			    "bytes)", o->name, o->size - 1);
			return -1;
		}
		if ((long long)len < o->min) {
			snprintf(err, errlen, "%s: must not be empty", o->name);
			return -1;
		}
		memcpy(field, val, len + 1);
		return 0;
	case CFG_ENUM:
		for (v = 0; o->choices[v] != NULL; v++) {
			if (strcmp(val, o->choices[v]) == 0) {
				memcpy(field, &v, sizeof(v));
				return 0;
			}
		}
		cfg_choices_text(o, choices, sizeof(choices));
		snprintf(err, errlen, "%s: invalid value \"%.32s\": expected "
		    "%s", o->name, val, choices);
		return -1;
	case CFG_INT:
		if (cfg_parse_int(val, o->min, o->max, &v) == -1) {
			snprintf(err, errlen, "%s: invalid value \"%.64s\": "
			    "expected an integer in [%lld, %lld]", o->name,
			    o->type == CFG_SECRET ? "***" : val, o->min,
			    o->max);
			return -1;
		}
		memcpy(field, &v, sizeof(v));
		return 0;
	}
	snprintf(err, errlen, "%s: bad table row", o->name);
	return -1;
}

int
cfg_load(const struct cfg_opt *opts, size_t n, void *dst, char *err,
    size_t errlen)
{
	const char *val;
	size_t i;

	for (i = 0; i < n; i++) {
		val = getenv(opts[i].name);
		if (val == NULL)
			val = opts[i].def;
		if (cfg_set(&opts[i], val, dst, err, errlen) == -1)
			return -1;
	}
	return 0;
}

void
cfg_log(const struct cfg_opt *opts, size_t n, const void *src)
{
	const char *field;
	struct buf b;
	size_t i;
	int v;

	buf_init(&b, 4096);
	for (i = 0; i < n; i++) {
		field = (const char *)src + opts[i].offset;
		switch (opts[i].type) {
		case CFG_STR:
			buf_appendf(&b, " %s=%s", opts[i].name, field);
			break;
		case CFG_SECRET:
			buf_appendf(&b, " %s=%s", opts[i].name,
			    *field ? "***" : "");
			break;
		case CFG_INT:
			memcpy(&v, field, sizeof(v));
			buf_appendf(&b, " %s=%d", opts[i].name, v);
			break;
		case CFG_ENUM:
			memcpy(&v, field, sizeof(v));
			buf_appendf(&b, " %s=%s", opts[i].name,
			    opts[i].choices[v]);
			break;
		}
	}
	log_info("config:%s", b.data ? b.data : "");
	buf_free(&b);
}

void
cfg_usage(const struct cfg_opt *opts, size_t n)
{
	char choices[128];
	size_t i;

	printf("Configuration (environment variables):\n");
	for (i = 0; i < n; i++) {
		if (opts[i].type == CFG_ENUM) {
			cfg_choices_text(&opts[i], choices, sizeof(choices));
			printf("  %-26s default %-8s [%s]  %s\n",
			    opts[i].name, opts[i].def, choices, opts[i].help);
		} else if (opts[i].type == CFG_INT)
			printf("  %-26s default %-8s [%lld..%lld]  %s\n",
			    opts[i].name, opts[i].def, opts[i].min,
			    opts[i].max, opts[i].help);
		else
			printf("  %-26s default %-8s  %s\n", opts[i].name,
			    opts[i].type == CFG_SECRET ? "(secret)" :
			    opts[i].def, opts[i].help);
	}
}
