#!/usr/bin/env bash
# shellcheck disable=SC2317 # checks run through check() and wait_for look unreachable
# tests/monitor_test.sh - the monitoring of monitoring/ against the live
# system (README, "Monitoring"):
#
# - the configurations: `promtool check config` of a copy of
#   monitoring/prometheus.yml (which checks alerts.yml with it), and
#   monitoring/prometheus-compose.yml is what `scripts/prometheus.sh
#   compose` makes of prometheus.yml today;
# - monitoring/dashboard.json in Grafana's dashboard model (jq, no
#   Grafana): schemaVersion, uid, title, time, the datasource variable,
#   every panel's id (unique), type, title, gridPos and datasource, every
#   target's expr, refId (unique in its panel) and datasource;
# - the compose profile "monitoring": images pinned (Prometheus to
#   Debian's version), mounted files present, Grafana's provisioning
#   pointing at the profile's Prometheus and at the dashboard's folder,
#   `docker-compose config -q` with the profile where docker-compose is
#   installed (scripts/containers.sh installs it);
# - the live system: app, relay and worker (the sanitizer build, each as
#   its own login, metrics on free ports) on the test servers, and a
#   private Prometheus on OUTBOX_PROM_PORT (scripts/ports.env) with the
#   generated copy of the configuration: 1 s scrape and evaluation
#   intervals, every rule's `for:` shortened to 3 s.  The three targets
#   come up; after 20 POSTs every query of every dashboard panel
#   returns data (a finite value); every rule of alerts.yml is loaded,
#   the binlog mode's ones evaluated and silent beside a poll-mode
#   relay; no OutboxDaemonDown while all run;
#   a message dead-lettered (an outbox row of an event the worker has no
#   handler for) makes OutboxDeadLetters fire (the worker's DLQ gauge,
#   end to end), the DLQ purged resolves it; the relay stopped (SIGTERM),
#   OutboxDaemonDown for job outbox-relay goes to firing through
#   /api/v1/alerts (its annotations rendered), then is gone once the
#   relay runs again.
#
# Deadlines, never fixed sleeps.  Prometheus, the daemons and the
# Prometheus data folder are removed whatever happens.  Needs curl, jq,
# prometheus and promtool (scripts/deps.sh tools): a missing one fails
# the test.  Prints "monitor: N passed, N failed" (tests/run.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
build=${BUILD_ROOT:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
bin=${OUTBOX_BIN:-$build/san/bin}
logs=${OUTBOX_TEST_LOGS:-$build/test-logs}
mkdir -p "$logs"
TEST_NAME=monitor
# shellcheck source=tests/check.sh
. "$root/tests/check.sh"

need_tools curl jq prometheus promtool

# ---- the configurations -------------------------------------------------
use_test_servers
# shellcheck source=scripts/env.sh
. scripts/env.sh
# shellcheck source=scripts/roles.env
. scripts/roles.env
APP_PORT=$(free_port)
APP_METRICS_PORT=$(free_port "$APP_PORT")
RELAY_METRICS_PORT=$(free_port "$APP_PORT" "$APP_METRICS_PORT")
WORKER_METRICS_PORT=$(free_port "$APP_PORT" "$APP_METRICS_PORT" "$RELAY_METRICS_PORT")
# The worker's queue gauges every second (5 s by default).
WORKER_QUEUE_SAMPLE_INTERVAL=1
export APP_PORT APP_METRICS_PORT RELAY_METRICS_PORT WORKER_METRICS_PORT \
	WORKER_QUEUE_SAMPLE_INTERVAL
prom_port=$OUTBOX_PROM_PORT
prom_dir=$(mktemp -d "${TMPDIR:-/tmp}/outbox-prometheus.XXXXXX")
prom="http://127.0.0.1:$prom_port"

declare -A pid=()
cleanup() {
	local p
	for p in "${pid[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	for p in "${pid[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$prom_dir"
}
trap cleanup EXIT

PROM_INTERVAL=1s PROM_FOR=3s bash scripts/prometheus.sh config "$prom_dir"
check "promtool check config: the test's copy of prometheus.yml and its rules" \
	promtool check config "$prom_dir/prometheus.yml"
check "the test's rules differ from alerts.yml only in their for: lines" \
	test -z "$(diff "$root/monitoring/alerts.yml" "$prom_dir/alerts.yml" | grep -E '^[<>]' | grep -vE '^[<>] +for: ' || true)"
compose_fresh() {
	bash scripts/prometheus.sh compose | diff - monitoring/prometheus-compose.yml
}
check "monitoring/prometheus-compose.yml is up to date (bash scripts/prometheus.sh compose > monitoring/prometheus-compose.yml)" \
	compose_fresh
check "promtool check config: monitoring/prometheus-compose.yml" \
	promtool check config monitoring/prometheus-compose.yml

# ---- the dashboard in Grafana's model ----------------------------------
dash=monitoring/dashboard.json
check "dashboard.json is JSON" jq -e . "$dash" >/dev/null
# Each jq program prints the offenders; nothing printed is a pass.
dash_ok() { # dash_ok JQ: fails, showing them, when JQ prints anything
	local out
	out=$(jq -r "$1" "$dash" 2>&1) || { echo "$out"; return 1; }
	[ -z "$out" ] || { echo "$out"; return 1; }
}
check "dashboard: title, uid, schemaVersion, time, editable" dash_ok '
	if (.title | type) == "string" and (.uid | type) == "string"
	   and (.schemaVersion | type) == "number" and .schemaVersion >= 36
	   and (.time.from | type) == "string" and (.time.to | type) == "string"
	then empty else "top-level fields" end'
check "dashboard: a datasource variable of type prometheus" dash_ok '
	if [.templating.list[] | select(.type == "datasource" and
	    .query == "prometheus" and .name == "datasource")] | length == 1
	then empty else "no datasource variable" end'
check "dashboard: every panel has a unique id, a type, a title, a gridPos within 24 columns" dash_ok '
	(.panels | map(.id) | if length != (unique | length) then "duplicate ids" else empty end),
	(.panels[] | select((.id | type) != "number" or (.type | type) != "string"
	    or (.title | type) != "string" or ([.gridPos.h, .gridPos.w,
	    .gridPos.x, .gridPos.y] | map(type == "number") | all | not)
	    or .gridPos.x + .gridPos.w > 24) | "panel \(.id // "?"): \(.title // "?")")'
# shellcheck disable=SC2016 # ${datasource} is Grafana's, not the shell's
check "dashboard: every panel and target queries \${datasource}, every target has an expr and a refId unique in its panel" dash_ok '
	.panels[] | select(.type != "row") |
	if .datasource.uid != "${datasource}" or (.targets | length) == 0
	   or ([.targets[] | .datasource.uid == "${datasource}"
	        and (.expr | type) == "string" and (.expr | length) > 0
	        and (.refId | type) == "string"] | all | not)
	   or (.targets | map(.refId) | length != (unique | length))
	then "panel \(.id): \(.title)" else empty end'

# ---- the compose profile "monitoring" -----------------------------------
compose=docker-compose.yml
# image NAME: the image of the profile's service NAME.
image() {
	sed -n "/^  $1:\$/,/^  [a-z]/s/^    image: *//p" "$compose" | head -n 1
}
prom_version=$(prometheus --version 2>&1 | sed -n 's/^prometheus, version \([0-9.]*\).*/\1/p')
check "compose: Prometheus pinned to Debian's version (image $(image prometheus), Debian $prom_version)" \
	test "$(image prometheus)" = "prom/prometheus:v$prom_version"
check "compose: Grafana pinned to an exact version (image $(image grafana))" \
	grep -qE '^grafana/grafana:[0-9]+\.[0-9]+\.[0-9]+$' <<<"$(image grafana)"
mounts_exist() {
	local src bad=0
	while IFS= read -r src; do
		[ -e "$src" ] || { echo "missing: $src"; bad=1; }
	done < <(sed -n 's/^ *- \(\.\/monitoring\/[^:]*\):.*/\1/p' "$compose")
	return "$bad"
}
check "compose: every file it mounts from monitoring/ exists" mounts_exist
check "compose: Prometheus mounts the generated configuration and alerts.yml" \
	grep -qF -- '- ./monitoring/prometheus-compose.yml:/etc/prometheus/prometheus.yml:ro' "$compose"
check "grafana: the datasource is the profile's Prometheus (http://prometheus:9090)" \
	grep -qE '^ +url: http://prometheus:9090$' monitoring/grafana/provisioning/datasources/prometheus.yml
dash_dir=$(sed -n 's/^ *path: *//p' monitoring/grafana/provisioning/dashboards/outbox.yml)
check "grafana: the dashboard provider reads the folder dashboard.json is mounted in ($dash_dir)" \
	grep -qF -- "- ./monitoring/dashboard.json:$dash_dir/dashboard.json:ro" "$compose"
if command -v docker-compose >/dev/null 2>&1; then
	check "compose: docker-compose config -q with the profile" \
		docker-compose -f "$compose" --profile monitoring config -q
else
	echo "monitor: docker-compose config not run (docker-compose not installed; scripts/containers.sh setup installs it)"
fi

# ---- the live system ----------------------------------------------------
bash scripts/infra.sh start >"$logs/monitor-infra.log" 2>&1 ||
	{ check "the test servers start (log $logs/monitor-infra.log)" false; finish; }
"$bin/outbox-migrate" >"$logs/monitor-migrate.log" 2>&1 ||
	{ check "migrations (log $logs/monitor-migrate.log)" false; finish; }

start() { # start DAEMON: as its own login, log in $logs/monitor-DAEMON.log
	local d=$1 u=${1^^}
	local db_user="OUTBOX_${u}_DB_USER" db_pass="OUTBOX_${u}_DB_PASS"
	local mq_user="OUTBOX_${u}_MQ_USER" mq_pass="OUTBOX_${u}_MQ_PASS"
	env DB_USER="${!db_user}" DB_PASS="${!db_pass}" \
		RABBITMQ_USER="${!mq_user:-}" RABBITMQ_PASS="${!mq_pass:-}" \
		"$bin/outbox-$d" >>"$logs/monitor-$d.log" 2>&1 &
	pid[$d]=$!
}
ready() { curl -sf -m 2 -o /dev/null "http://127.0.0.1:$1/readyz"; }
stop() { # stop NAME: SIGTERM, then its exit status must be 0
	local rc=0
	kill -TERM "${pid[$1]}" 2>/dev/null || true
	wait "${pid[$1]}" || rc=$?
	unset "pid[$1]"
	check "$1 stopped with exit 0 (got $rc; log $logs/monitor-$1.log)" test "$rc" -eq 0
}
rm -f "$logs"/monitor-{app,relay,worker,prometheus}.log
start app
start relay
start worker
all_ready() {
	ready "$APP_PORT" && ready "$RELAY_METRICS_PORT" && ready "$WORKER_METRICS_PORT"
}
check "app, relay and worker ready within 60 s" wait_for 60 all_ready

holder=$(port_holder "$prom_port")
check "Prometheus's port 127.0.0.1:$prom_port is free (OUTBOX_PROM_PORT; ${holder:-free})" test -z "$holder"
bash scripts/prometheus.sh run "$prom_dir" "$prom_port" >"$logs/monitor-prometheus.log" 2>&1 &
pid[prometheus]=$!
prom_ready() { curl -sf -m 2 -o /dev/null "$prom/-/ready"; }
check "Prometheus ready within 60 s (log $logs/monitor-prometheus.log)" wait_for 60 prom_ready
prom_ready || { tail -n 20 "$logs/monitor-prometheus.log"; finish; }

# query EXPR: the API's answer to an instant query.
query() { curl -sf -m 5 --get --data-urlencode "query=$1" "$prom/api/v1/query"; }
targets_up() {
	[ "$(query 'count(up{job=~"outbox-.*"} == 1)' | jq -r '.data.result[0].value[1] // 0')" = 3 ]
}
check "the three daemons scraped (up == 1) within 30 s" wait_for 30 targets_up

# Traffic for the panels' rates and percentiles.
posted=0
for i in $(seq 1 20); do
	code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' \
		-d "{\"email\":\"monitor-$$-$i-$RANDOM@example.com\",\"name\":\"Monitor\"}" \
		"http://127.0.0.1:$APP_PORT/customers" || true)
	[ "$code" != 201 ] || posted=$((posted + 1))
done
check "20 POSTs answered 201 (got $posted)" test "$posted" -eq 20
handled_seen() {
	[ "$(query 'sum(outbox_worker_messages_handled_total)' | jq -r '.data.result[0].value[1] // 0')" -ge 20 ] 2>/dev/null
}
check "Prometheus sees the 20 handled within 60 s" wait_for 60 handled_seen

# has_data EXPR: the query answers at least one finite value.
has_data() {
	query "$1" | jq -e '.status == "success" and ([.data.result[].value[1]
		| select(. != "NaN" and . != "+Inf" and . != "-Inf")] | length > 0)' >/dev/null
}
while IFS=$'\t' read -r title expr; do
	# Grafana's variable, as Grafana would give it here.
	e=${expr//\$__rate_interval/1m}
	check "panel \"$title\" has data: $expr" wait_for 15 has_data "$e"
done < <(jq -r '.panels[] | .title as $t | .targets[] | [$t, .expr] | @tsv' "$dash")

# ---- the rules -----------------------------------------------------------
rules() { curl -sf -m 5 "$prom/api/v1/rules"; }
loaded=$(rules | jq -r '[.data.groups[].rules[] | select(.type == "alerting") | .name] | sort | join(" ")' || true)
shipped=$(awk '$1 == "-" && $2 == "alert:" { print $3 }' monitoring/alerts.yml | sort | paste -sd ' ')
check "Prometheus loaded every rule of alerts.yml (got: $loaded)" test "$loaded" = "$shipped"
# The binlog mode's rules read series only a relay in that mode has:
# evaluated without error and silent beside this poll-mode relay.
binlog_rules_silent() {
	rules | jq -e '[.data.groups[].rules[] | select(.name | startswith("OutboxBinlog"))]
		| length == 3 and all(.health == "ok" and .state == "inactive"
			and .lastEvaluation != "0001-01-01T00:00:00Z")' >/dev/null
}
check "the binlog mode's three rules evaluated and silent (poll mode) within 15 s" \
	wait_for 15 binlog_rules_silent

# ---- alerts through Prometheus's API ------------------------------------
alerts() { curl -sf -m 5 "$prom/api/v1/alerts"; }
alert_state() { # alert_state NAME JOB: its state, "" when not there
	alerts | jq -r --arg a "$1" --arg j "$2" '[.data.alerts[] |
		select(.labels.alertname == $a and .labels.job == $j)] | .[0].state // ""'
}
state_is() { [ "$(alert_state "$1" "$2")" = "$3" ]; }
summary() { # summary NAME: the summary of the alert NAME
	alerts | jq -r --arg a "$1" '.data.alerts[] | select(.labels.alertname == $a) | .annotations.summary'
}
check "no OutboxDaemonDown while the three run" state_is OutboxDaemonDown outbox-relay ""

# A dead letter: an outbox row of an event the worker has no handler for,
# published by the relay, dead-lettered by the worker; the worker's DLQ
# gauge, then OutboxDeadLetters.  Emptied (as an operator would), the
# alert resolves.
mq_ctl() { bash scripts/infra.sh mq-ctl "$@" >>"$logs/monitor-infra.log" 2>&1; }
check "the DLQ emptied before (rabbitmqctl purge_queue)" mq_ctl purge_queue outbox.dlq
check "OutboxDeadLetters not firing once the DLQ is empty (within 60 s)" \
	wait_for 60 state_is OutboxDeadLetters outbox-worker ""
check "an outbox row of an unknown event inserted" bash scripts/infra.sh db-sql -D "$DB_NAME" -e \
	"INSERT INTO outbox (message_id, event_name, payload, created_at) VALUES (UUID(), 'MonitorTestUnknown', '{}', UTC_TIMESTAMP(6))"
check "OutboxDeadLetters firing within 60 s" wait_for 60 state_is OutboxDeadLetters outbox-worker firing
check "its summary counts the message (got: $(summary OutboxDeadLetters))" \
	test "$(summary OutboxDeadLetters)" = "dead-lettered messages waiting in outbox.dlq: 1"
check "the DLQ purged" mq_ctl purge_queue outbox.dlq
check "OutboxDeadLetters resolved within 60 s" wait_for 60 state_is OutboxDeadLetters outbox-worker ""
firing_now=$(alerts | jq -r '[.data.alerts[] | select(.state == "firing") | .labels.alertname] | join(" ")')
echo "monitor: alerts firing before the relay stops (from earlier tests' data, if any): ${firing_now:-none}"

stop relay
check "OutboxDaemonDown{job=\"outbox-relay\"} firing within 60 s" \
	wait_for 60 state_is OutboxDaemonDown outbox-relay firing
check "its summary names the relay and its target (got: $(summary OutboxDaemonDown))" \
	test "$(summary OutboxDaemonDown)" = "outbox-relay on 127.0.0.1:$RELAY_METRICS_PORT is down"

start relay
check "the relay back, ready within 60 s" wait_for 60 ready "$RELAY_METRICS_PORT"
check "OutboxDaemonDown resolved (gone from /api/v1/alerts) within 60 s" \
	wait_for 60 state_is OutboxDaemonDown outbox-relay ""

for d in app relay worker prometheus; do
	stop "$d"
done
finish
