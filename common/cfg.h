/*
 * cfg.h - strict configuration from environment variables, driven by a
 * table with one row per setting (name, type, default, bounds, field).
 *
 * Every value is parsed strictly: an integer with trailing garbage, out of
 * its range, or a string longer than its field is an error naming the
 * variable.  The daemons call cfg_load once at start and fatalx on error.
 */
#ifndef OUTBOX_CFG_H
#define OUTBOX_CFG_H

#include <stddef.h>

enum cfg_type {
	CFG_STR,    /* char array of .size bytes in the target struct */
	CFG_SECRET, /* like CFG_STR, never printed */
	CFG_INT,    /* int in [min, max] */
};

struct cfg_opt {
	const char *name;  /* environment variable */
	enum cfg_type type;
	const char *def;   /* default, as text */
	long long min;     /* CFG_INT bounds; CFG_STR: minimum length */
	long long max;
	size_t offset;     /* offsetof() the field in the target struct */
	size_t size;       /* CFG_STR/CFG_SECRET: sizeof the char array */
	const char *help;  /* one line for the README and the usage text */
};

/* Row helpers: T is the config struct type, F the field. */
#define CFG_ROW_STR(N, T, F, DEF, MINLEN, HELP) \
	{ N, CFG_STR, DEF, MINLEN, 0, offsetof(T, F), sizeof(((T *)0)->F), HELP }
#define CFG_ROW_SECRET(N, T, F, DEF, HELP) \
	{ N, CFG_SECRET, DEF, 0, 0, offsetof(T, F), sizeof(((T *)0)->F), HELP }
#define CFG_ROW_INT(N, T, F, DEF, MIN, MAX, HELP) \
	{ N, CFG_INT, DEF, MIN, MAX, offsetof(T, F), sizeof(int), HELP }

/* Safe string-to-integer: the whole string must be a decimal integer in
 * [min, max].  Returns 0, or -1 and leaves *out unchanged. */
int cfg_parse_int(const char *s, long long min, long long max, int *out);

/* Fills dst from the environment (or the defaults) for every row.
 * Returns 0, or -1 with a message naming the variable in err. */
int cfg_load(const struct cfg_opt *opts, size_t n, void *dst, char *err,
    size_t errlen);

/* Logs the effective configuration on one line, secrets masked. */
void cfg_log(const struct cfg_opt *opts, size_t n, const void *src);

/* Prints the table (name, default, range, help) to stdout: --help. */
void cfg_usage(const struct cfg_opt *opts, size_t n);

#endif
