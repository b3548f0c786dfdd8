/*
 * suites.h - what the unit and integration binaries share to build and
 * run their Check suites: a case from a list of tests, and the runner
 * that prints the line tests/run.sh counts: "<label>: N passed, N
 * failed".
 */
#ifndef OUTBOX_TEST_SUITES_H
#define OUTBOX_TEST_SUITES_H

#include <check.h>
#include <stddef.h>

typedef Suite *(*suite_fn)(void);

/* Adds to s the case name with the tests of the NULL-terminated list
 * (START_TEST names), in that order, each run in a process of its own
 * with the checked fixture setup / teardown (NULL: none) around it, and
 * timeout_s seconds at most (0: Check's default).  Returns the case, for
 * an unchecked fixture or loop tests. */
TCase *suites_case(Suite *s, const char *name, double timeout_s,
    SFun setup, SFun teardown, const TTest *const *tests);

/* Runs every suite of fns (n of them) in one runner with the given
 * output mode; CK_RUN_SUITE / CK_RUN_CASE select as Check does (several
 * suites may share a name: the selection runs them all).  Returns the
 * exit status: 0 when at least one test ran and none failed. */
int suites_run(const char *label, const suite_fn *fns, size_t n,
    enum print_output mode);

#endif
