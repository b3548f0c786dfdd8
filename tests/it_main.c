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
Suite *it_obs_suite(void) __attribute__((weak));
Suite *it_durability_suite(void) __attribute__((weak));

/* Adds the suite made by fn, if it is linked in. */
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

	db_global_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	sr = add_suite(sr, it_app_suite);
	sr = add_suite(sr, it_relay_suite);
	sr = add_suite(sr, it_worker_suite);
	sr = add_suite(sr, it_e2e_suite);
	sr = add_suite(sr, it_obs_suite);
	sr = add_suite(sr, it_durability_suite);
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
