/*
 * it_main.c - runs the integration suites against the real servers.
 * Each file it_*.c holds the tests of one concern, in a suite named
 * after what it tests (app, relay, worker, privileges, config, e2e, obs,
 * durability, binlog, relay_binlog, published, harness; several files may add
 * cases to one suite).  Select a suite with CK_RUN_SUITE=<name>, one case
 * with CK_RUN_CASE=<name>.
 */
#include <curl/curl.h>

#include "db.h"
#include "suites.h"

Suite *it_app_api_suite(void);
Suite *it_app_clients_suite(void);
Suite *it_app_faults_suite(void);
Suite *it_privileges_suite(void);
Suite *it_config_suite(void);
Suite *it_relay_publish_suite(void);
Suite *it_relay_faults_suite(void);
Suite *it_relay_refusals_suite(void);
Suite *it_relay_sessions_suite(void);
Suite *it_worker_handling_suite(void);
Suite *it_worker_faults_suite(void);
Suite *it_worker_retention_suite(void);
Suite *it_e2e_suite(void);
Suite *it_obs_suite(void);
Suite *it_durability_suite(void);
Suite *it_lost_commit_suite(void);
Suite *it_migrations_suite(void);
Suite *it_admin_suite(void);
Suite *it_brokers_suite(void);
Suite *it_quorum_suite(void);
Suite *it_binlog_suite(void);
Suite *it_relay_binlog_suite(void);
Suite *it_published_suite(void);
Suite *it_harness_suite(void);

int
main(void)
{
	static const suite_fn suites[] = {
		it_app_api_suite, it_app_clients_suite, it_app_faults_suite,
		it_privileges_suite, it_config_suite,
		it_relay_publish_suite, it_relay_faults_suite,
		it_relay_refusals_suite, it_relay_sessions_suite,
		it_worker_handling_suite, it_worker_faults_suite,
		it_worker_retention_suite,
		it_e2e_suite, it_obs_suite, it_durability_suite,
		it_lost_commit_suite, it_migrations_suite, it_admin_suite,
		it_brokers_suite, it_quorum_suite,
		it_binlog_suite, it_relay_binlog_suite, it_published_suite,
		it_harness_suite,
	};
	int rc;

	db_global_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = suites_run("integration", suites,
	    sizeof(suites) / sizeof(suites[0]), CK_VERBOSE);
	curl_global_cleanup();
	db_global_end();
	return rc;
}
