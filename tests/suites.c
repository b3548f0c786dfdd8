/*
 * suites.c - the runner shared by the unit and integration binaries.
 */
#include "suites.h"

#include <stdio.h>

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
