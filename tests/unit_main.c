/*
 * unit_main.c - runs the unit suites: pure logic, no servers.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

Suite *unit_common_suite(void);
Suite *unit_validate_suite(void);
Suite *unit_relay_suite(void) __attribute__((weak));
Suite *unit_worker_suite(void) __attribute__((weak));

int
main(void)
{
	SRunner *sr;
	int run, failed;

	sr = srunner_create(unit_common_suite());
	srunner_add_suite(sr, unit_validate_suite());
	if (unit_relay_suite != NULL)
		srunner_add_suite(sr, unit_relay_suite());
	if (unit_worker_suite != NULL)
		srunner_add_suite(sr, unit_worker_suite());
	srunner_run_all(sr, CK_NORMAL);
	run = srunner_ntests_run(sr);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	printf("unit: %d passed, %d failed\n", run - failed, failed);
	return failed == 0 ? 0 : 1;
}
