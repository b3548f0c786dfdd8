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
	CFG_ENUM,   /* int: the index of the value in .choices */
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
	const char *const *choices; /* CFG_ENUM: the values, NULL-ended */
};

/* Row helpers: T is the config struct type, F the field. */
#define CFG_ROW_STR(N, T, F, DEF, MINLEN, HELP)                            \
	{ .name = N, .type = CFG_STR, .def = DEF, .min = MINLEN,           \
	  .offset = offsetof(T, F), .size = sizeof(((T *)0)->F),           \
	  .help = HELP }
#define CFG_ROW_SECRET(N, T, F, DEF, HELP)                                 \
	{ .name = N, .type = CFG_SECRET, .def = DEF,                       \
	  .offset = offsetof(T, F), .size = sizeof(((T *)0)->F),           \
	  .help = HELP }
#define CFG_ROW_INT(N, T, F, DEF, MIN, MAX, HELP)                          \
	{ .name = N, .type = CFG_INT, .def = DEF, .min = MIN, .max = MAX,  \
	  .offset = offsetof(T, F), .size = sizeof(int), .help = HELP }
/* F is an int (or an enum with the values 0, 1, ... of CHOICES). */
#define CFG_ROW_ENUM(N, T, F, DEF, CHOICES, HELP)                          \
	{ .name = N, .type = CFG_ENUM, .def = DEF,                         \
	  .offset = offsetof(T, F), .size = sizeof(int), .help = HELP,     \
	  .choices = CHOICES }

/* Safe string-to-integer: the whole string must be a decimal integer in
 * [min, max], digits with an optional leading '-' (no '+', no white
 * space anywhere).  Returns 0, or -1 and leaves *out unchanged. */
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
