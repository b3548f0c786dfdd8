/*
 * unit.h - what the unit suites share (tests/unit_main.c): no server, no
 * file, only the process's own environment.
 */
#ifndef OUTBOX_TEST_UNIT_H
#define OUTBOX_TEST_UNIT_H

#include <stddef.h>

#include "cfg.h"

/* Unsets the variable of every row of a settings table (n rows): the
 * table's defaults apply again. */
void unit_env_clear(const struct cfg_opt *opts, size_t n);

#endif
