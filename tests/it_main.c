/*
 * it_main.c - runs the integration suites against the real servers.
 * Each suite lives in its own it_*.c; a suite not linked in is skipped.
 * Select one with CK_RUN_SUITE=<name>, one case with CK_RUN_CASE=<name>.
 */
#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "db.h"

Suite *it_app_suite(void) __attribute__((weak));
Suite *it_relay_suite(void) __attribute__((weak));
Suite *it_worker_suite(void) __attribute__((weak));
Suite *it_e2e_suite(void) __attribute__((weak));

int
main(void)
{
	Suite *(*const suites[])(void) = {
		it_app_suite, it_relay_suite, it_worker_suite, it_e2e_suite,
	};
	SRunner *sr = NULL;
	size_t i;
	int run, failed;

	db_global_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (suites[i] == NULL)
			continue;
		if (sr == NULL)
			sr = srunner_create(suites[i]());
		else
			srunner_add_suite(sr, suites[i]());
	}
	if (sr == NULL) {
		printf("integration: 0 passed, 0 failed\n");
		return 1;
	}
	srunner_run_all(sr, CK_VERBOSE);
	run = srunner_ntests_run(sr);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	db_global_end();
	printf("integration: %d passed, %d failed\n", run - failed, failed);
	return failed == 0 && run > 0 ? 0 : 1;
}
