/*
 * it_harness.c - the harness the integration tests stand on (harness.c):
 * what a test reads of a daemon's log is that daemon's run only.  A loop
 * test's iterations start their daemons under the same names, and the
 * logs are appended to: a wait for a line that an earlier iteration
 * logged passed at once, without the daemon at hand having logged it.
 */
#include <check.h>

#include "harness.h"
#include "suites.h"

Suite *it_harness_suite(void);

/* Each iteration starts a relay under the same name (its log appended
 * to): each sees its own started line, once. */
START_TEST(daemon_log_holds_only_its_own_run)
{
	struct h_daemon d = { 0 };

	H_START(&d, H_RELAY, NULL, NULL);
	ck_assert_msg(h_log_count(&d, h_started_line(H_RELAY)) == 1,
	    "iteration %d: %d started lines in this run's log (%s)", _i,
	    h_log_count(&d, h_started_line(H_RELAY)), d.log);
	h_stop_clean(&d);
	ck_assert_int_eq(h_log_count(&d, "stopped"), 1);
}
END_TEST

Suite *
it_harness_suite(void)
{
	Suite *s = suite_create("harness");
	TCase *tc = suites_case(s, "logs", 60, NULL, NULL, NULL);

	tcase_add_loop_test(tc, daemon_log_holds_only_its_own_run, 0, 2);
	return s;
}
