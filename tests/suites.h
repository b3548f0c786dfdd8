/*
 * suites.h - runs a list of Check suites and prints the line tests/run.sh
 * counts: "<label>: N passed, N failed".
 */
#ifndef OUTBOX_TEST_SUITES_H
#define OUTBOX_TEST_SUITES_H

#include <check.h>
#include <stddef.h>

typedef Suite *(*suite_fn)(void);

/* Runs every suite of fns (n of them) in one runner with the given
 * output mode; CK_RUN_SUITE / CK_RUN_CASE select as Check does.  Returns
 * the exit status: 0 when at least one test ran and none failed. */
int suites_run(const char *label, const suite_fn *fns, size_t n,
    enum print_output mode);

#endif
