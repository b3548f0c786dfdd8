/*
 * unit_main.c - runs the unit suites: pure logic, no servers.
 */
#include "suites.h"

Suite *unit_common_suite(void);
Suite *unit_validate_suite(void);
Suite *unit_relay_suite(void);
Suite *unit_worker_suite(void);
Suite *unit_migrate_suite(void);

int
main(void)
{
	static const suite_fn suites[] = {
		unit_common_suite, unit_validate_suite, unit_relay_suite,
		unit_worker_suite, unit_migrate_suite,
	};

	return suites_run("unit", suites, sizeof(suites) / sizeof(suites[0]),
	    CK_NORMAL);
}
