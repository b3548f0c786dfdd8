/*
 * unit_app.c - unit tests of the app's pure logic outside validation:
 * the pool's gate for groups of creates (app/pool.h).
 */
#include <check.h>

#include "app/pool.h"
#include "suites.h"

Suite *unit_app_suite(void);

#define NOW 1000000LL

/* No group at work, or only groups past their time alone: open. */
START_TEST(gate_open_without_a_young_group)
{
	const long long none[] = { -1, -1, -1, -1 };
	const long long old[] = { -1, NOW - 20, NOW - 500, -1 };
	long long wait = -1;

	ck_assert_int_eq(pool_gate_open(none, 4, NOW, 20, &wait), 1);
	ck_assert_int_eq(wait, 0);
	ck_assert_int_eq(pool_gate_open(old, 4, NOW, 20, &wait), 1);
	ck_assert_int_eq(wait, 0);
}
END_TEST

/* A group in its first alone_ms closes it until its time is over; with
 * two, until the younger one's is. */
START_TEST(gate_closed_by_a_young_group)
{
	const long long one[] = { -1, NOW - 5, -1 };
	const long long two[] = { NOW - 15, NOW - 2, NOW - 900 };
	long long wait = -1;

	ck_assert_int_eq(pool_gate_open(one, 3, NOW, 20, &wait), 0);
	ck_assert_int_eq(wait, 15);
	ck_assert_int_eq(pool_gate_open(two, 3, NOW, 20, &wait), 0);
	ck_assert_int_eq(wait, 18);
	/* A group that began this very millisecond. */
	ck_assert_int_eq(pool_gate_open(one, 3, NOW - 5, 20, &wait), 0);
	ck_assert_int_eq(wait, 20);
}
END_TEST

/* APP_GROUP_ALONE_MS=0: groups never wait for one another. */
START_TEST(gate_always_open_at_zero)
{
	const long long busy[] = { NOW, NOW - 1 };
	long long wait = -1;

	ck_assert_int_eq(pool_gate_open(busy, 2, NOW, 0, &wait), 1);
	ck_assert_int_eq(wait, 0);
}
END_TEST

Suite *
unit_app_suite(void)
{
	const TTest *const gate[] = { gate_open_without_a_young_group,
	    gate_closed_by_a_young_group, gate_always_open_at_zero, NULL };
	Suite *s = suite_create("app");

	suites_case(s, "gate", 0, NULL, NULL, gate);
	return s;
}
