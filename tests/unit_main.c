/*
 * unit_main.c - runs the unit suites: pure logic, no servers; and the
 * helpers they share (unit.h).
 */
#include <stdlib.h>

#include "suites.h"
#include "unit.h"

Suite *unit_common_suite(void);
Suite *unit_mq_suite(void);
Suite *unit_validate_suite(void);
Suite *unit_app_suite(void);
Suite *unit_relay_suite(void);
Suite *unit_worker_suite(void);
Suite *unit_migrate_suite(void);
Suite *unit_admin_suite(void);

void
unit_env_clear(const struct cfg_opt *opts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		unsetenv(opts[i].name);
}

int
main(void)
{
	static const suite_fn suites[] = {
		unit_common_suite, unit_mq_suite, unit_validate_suite, unit_app_suite,
		unit_relay_suite, unit_worker_suite, unit_migrate_suite,
		unit_admin_suite,
	};

	return suites_run("unit", suites, sizeof(suites) / sizeof(suites[0]),
	    CK_NORMAL);
}
