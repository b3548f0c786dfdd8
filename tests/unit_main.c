/*
 * unit_main.c - runs the unit suites: pure logic, no servers.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

/* Each unit binary links the suites of one program (the daemons are
 * separate programs, so their modules may share names); a suite not
 * linked in is skipped. */
Suite *unit_common_suite(void) __attribute__((weak));
Suite *unit_validate_suite(void) __attribute__((weak));
Suite *unit_relay_suite(void) __attribute__((weak));
Suite *unit_worker_suite(void) __attribute__((weak));

static SRunner *
add_suite(SRunner *sr, Suite *(*fn)(void))
{
	if (fn == NULL)
		return sr;
	if (sr == NULL)
		return srunner_create(fn());
	srunner_add_suite(sr, fn());
	return sr;
}

int
main(void)
{
	SRunner *sr = NULL;
	int run, failed;

	sr = add_suite(sr, unit_common_suite);
	sr = add_suite(sr, unit_validate_suite);
	sr = add_suite(sr, unit_relay_suite);
	sr = add_suite(sr, unit_worker_suite);
	if (sr == NULL) {
		printf("unit: 0 passed, 0 failed\n");
		return 1;
	}
	srunner_run_all(sr, CK_NORMAL);
	run = srunner_ntests_run(sr);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	printf("unit: %d passed, %d failed\n", run - failed, failed);
	return failed == 0 ? 0 : 1;
}
