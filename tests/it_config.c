/*
 * it_config.c - a daemon given a bad setting refuses to start: exit
 * status 1, an error that names the variable, and never its started line.
 * One table for the three daemons (the unit tests check each settings
 * table in detail: tests/unit_*.c).
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "suites.h"

Suite *it_config_suite(void);

static const struct {
	enum h_kind kind;
	const char *env; /* NAME=value: the error must name NAME */
} bad_settings[] = {
	{ H_APP, "APP_PORT=http" },
	{ H_APP, "APP_PORT=+3000" },
	{ H_APP, "APP_DB_POOL=\n4" },
	{ H_WORKER, "DB_PORT=\v3306" },
	{ H_RELAY, "RELAY_BATCH_SIZE=1001" },
	{ H_RELAY, "RELAY_BATCH_SIZE=0" },
	{ H_RELAY, "RELAY_POLL_MS=20ms" },
	{ H_RELAY, "RELAY_RETRY_MAX_MS=10" },
	{ H_RELAY, "RELAY_RETENTION_HOURS=-1" },
	{ H_RELAY, "RABBITMQ_PORT=amqp" },
	{ H_RELAY, "LOG_LEVEL=loud" },
	{ H_RELAY, "LOG_FORMAT=xml" },
	{ H_RELAY, "RELAY_INFLIGHT_BATCHES=9" },
	{ H_WORKER, "WORKER_PREFETCH=lots" },
	{ H_WORKER, "WORKER_PREFETCH=0" },
	{ H_WORKER, "WORKER_BATCH_MAX=100000" },
	{ H_WORKER, "WORKER_BATCH_WAIT_MS=-5" },
	{ H_WORKER, "RABBITMQ_PORT=amqp" },
	{ H_WORKER, "DB_PORT=70000" },
	{ H_WORKER, "LOG_LEVEL=chatty" },
};

START_TEST(bad_setting_refused)
{
	const char *env[2] = { bad_settings[_i].env, NULL };
	enum h_kind kind = bad_settings[_i].kind;
	struct h_daemon d = { 0 };
	char name[64], row[16];

	snprintf(name, sizeof(name), "%.*s",
	    (int)strcspn(bad_settings[_i].env, "="), bad_settings[_i].env);
	snprintf(row, sizeof(row), "%d", _i);
	h_spawn(&d, kind, __func__, row, env);
	ck_assert_msg(h_daemon_wait(&d, H_STOP_MS) == 1, "%s: not refused with "
	    "exit status 1 (log %s)", bad_settings[_i].env, d.log);
	ck_assert_msg(h_log_contains(&d, name), "%s: the error does not name "
	    "%s (log %s)", bad_settings[_i].env, name, d.log);
	ck_assert_msg(!h_log_contains(&d, h_started_line(kind)), "%s: started "
	    "all the same (log %s)", bad_settings[_i].env, d.log);
}
END_TEST

Suite *
it_config_suite(void)
{
	Suite *s = suite_create("config");

	tcase_add_loop_test(suites_case(s, "refused", 90, NULL, NULL, NULL),
	    bad_setting_refused, 0,
	    (int)(sizeof(bad_settings) / sizeof(bad_settings[0])));
	return s;
}
