/*
 * suites.c - cases and the runner shared by the unit and integration
 * binaries (see suites.h).
 */
#include "suites.h"

#include <stdio.h>

TCase *
suites_case(Suite *s, const char *name, double timeout_s, SFun setup,
    SFun teardown, const TTest *const *tests)
{
	TCase *tc = tcase_create(name);
	size_t i;

	if (timeout_s > 0)
		tcase_set_timeout(tc, timeout_s);
	if (setup != NULL || teardown != NULL)
		tcase_add_checked_fixture(tc, setup, teardown);
	for (i = 0; tests != NULL && tests[i] != NULL; i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
	return tc;
}

int
suites_run(const char *label, const suite_fn *fns, size_t n,
    enum print_output mode)
{
	SRunner *sr = NULL;
	size_t i;
	int run, failed;

	for (i = 0; i < n; i++) {
		if (sr == NULL)
			sr = srunner_create(fns[i]());
		else
			srunner_add_suite(sr, fns[i]());
	}
	if (sr == NULL) {
		printf("%s: 0 passed, 0 failed\n", label);
		return 1;
	}
	srunner_run_all(sr, mode);
	run = srunner_ntests_run(sr);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	printf("%s: %d passed, %d failed\n", label, run - failed, failed);
	return failed == 0 && run > 0 ? 0 : 1;
}
