#!/usr/bin/env bash
# shellcheck disable=SC2317 # checks run through check() look unreachable
# tests/isolation_test.sh - the tests never touch what `make dev` wrote
# (issue 12: `make test` used the dev servers and wiped them).
#
#   tests/isolation_test.sh write   before the server tests (tests/run.sh)
#   tests/isolation_test.sh check   after them
#
# write: starts the dev servers (scripts/ports.env's dev set: reused if
# they run, as when `make dev` runs beside `make test`), migrates, runs
# app, relay and worker against them, POSTs a customer through the API,
# waits for its welcome email, stops the daemons (each must exit 0).
# check: the dev servers are the same processes as before (nobody stopped
# or restarted them), and the customer, its outbox row (published) and its
# welcome email are still there; then removes that customer's rows and
# stops the dev servers if `write` started them.
# State between the two: $OUTBOX_TEST_LOGS/isolation.state.  Prints
# "isolation: N passed, N failed" (tests/run.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
phase=${1:-}
build=${BUILD_ROOT:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
bin=${OUTBOX_BIN:-$build/san/bin}
logs=${OUTBOX_TEST_LOGS:-$build/test-logs}
state=$logs/isolation.state
mkdir -p "$logs"
TEST_NAME=isolation
# shellcheck source=tests/check.sh
. "$root/tests/check.sh"

fail() { check "$1" false; finish; }

# The test set, as the other tests see it, then the dev set: this
# script's servers from here on.
use_test_servers
# shellcheck source=scripts/env.sh
. scripts/env.sh
test_var=$OUTBOX_VAR test_db=$OUTBOX_DB_PORT test_mq=$OUTBOX_MQ_PORT
unset OUTBOX_VAR OUTBOX_DB_PORT OUTBOX_MQ_PORT OUTBOX_MQ_DIST_PORT OUTBOX_MQ_EPMD_PORT
export OUTBOX_SERVERS=dev
# shellcheck source=scripts/env.sh
. scripts/env.sh
# shellcheck source=scripts/roles.env
. scripts/roles.env

sql() { bash scripts/infra.sh db-sql -N -B -D "$DB_NAME" -e "$1"; }
# "<mariadbd pid> <beam pid>" of the dev servers.
server_pids() {
	local db mq
	db=$(cat "$OUTBOX_VAR/mariadb/run/mariadbd.pid" 2>/dev/null || echo none)
	mq=$(cat "$OUTBOX_VAR/rabbitmq/run/rabbitmq.pid" 2>/dev/null || echo none)
	echo "$db $mq"
}

# The daemons of `write`, killed if it stops half-way.
declare -A pid=()
kill_daemons() {
	local p
	for p in "${pid[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
}
trap kill_daemons EXIT

save_state() { # save_state STARTED ID MID
	printf 'started=%s\nid=%s\nmid=%s\npids="%s"\n' "$1" "$2" "$3" \
		"$(server_pids)" >"$state"
}

write() {
	local started=0 port email body code id mid
	check "dev and test servers differ (dev: $OUTBOX_VAR, $OUTBOX_DB_PORT, $OUTBOX_MQ_PORT; test: $test_var, $test_db, $test_mq)" \
		test "$OUTBOX_VAR" != "$test_var" -a "$OUTBOX_DB_PORT" != "$test_db" -a "$OUTBOX_MQ_PORT" != "$test_mq"
	bash scripts/infra.sh status >/dev/null 2>&1 || started=1
	rm -f "$state"
	if ! bash scripts/infra.sh start; then
		# Half started (the database up, the broker not): what this
		# start started is stopped again, nothing left behind.
		[ "$started" = 0 ] || bash scripts/infra.sh stop >/dev/null 2>&1 ||
			echo "isolation: warning: the dev servers did not stop cleanly"
		fail "the dev servers start (or run already)"
	fi
	save_state "$started" "" ""
	"$bin/outbox-migrate" >"$logs/isolation-migrate.log" 2>&1 ||
		fail "migrations on the dev servers (log: $logs/isolation-migrate.log)"

	port=$(free_port)
	env DB_USER="$OUTBOX_APP_DB_USER" DB_PASS="$OUTBOX_APP_DB_PASS" \
		APP_PORT="$port" APP_BIND=127.0.0.1 APP_METRICS_PORT=0 \
		"$bin/outbox-app" >"$logs/isolation-app.log" 2>&1 &
	pid[app]=$!
	env DB_USER="$OUTBOX_RELAY_DB_USER" DB_PASS="$OUTBOX_RELAY_DB_PASS" \
		RABBITMQ_USER="$OUTBOX_RELAY_MQ_USER" RABBITMQ_PASS="$OUTBOX_RELAY_MQ_PASS" \
		RELAY_METRICS_PORT=0 "$bin/outbox-relay" >"$logs/isolation-relay.log" 2>&1 &
	pid[relay]=$!
	env DB_USER="$OUTBOX_WORKER_DB_USER" DB_PASS="$OUTBOX_WORKER_DB_PASS" \
		RABBITMQ_USER="$OUTBOX_WORKER_MQ_USER" RABBITMQ_PASS="$OUTBOX_WORKER_MQ_PASS" \
		WORKER_METRICS_PORT=0 "$bin/outbox-worker" >"$logs/isolation-worker.log" 2>&1 &
	pid[worker]=$!

	app_ready() { curl -sf -m 2 -o /dev/null "http://127.0.0.1:$port/readyz"; }
	check "an app against the dev servers is ready within 60 s" wait_for 60 app_ready
	email="isolation-$(date +%s)-$$-$RANDOM@example.com"
	body=$(mktemp)
	code=$(curl -s -m 10 -o "$body" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' \
		-d "{\"email\":\"$email\",\"name\":\"Dev Data\"}" \
		"http://127.0.0.1:$port/customers" || true)
	id=$(sed -n 's/^{"id":"\([0-9a-f-]\{36\}\)".*/\1/p' "$body")
	rm -f "$body"
	check "POST /customers to the dev app: 201 (got $code), customer ${id:-none}" \
		test "$code" = 201 -a -n "$id"
	emailed() { [ "$(sql "SELECT COUNT(*) FROM welcome_emails WHERE customer_id = '$id'")" = 1 ]; }
	check "its welcome email written within 60 s" wait_for 60 emailed
	mid=$(sql "SELECT message_id FROM outbox WHERE JSON_VALUE(payload, '\$.id') = '$id'" || true)
	check "its outbox row (message ${mid:-none})" test -n "$mid"

	local d rc
	for d in app relay worker; do
		kill -TERM "${pid[$d]}" 2>/dev/null || true
	done
	for d in app relay worker; do
		rc=0
		wait "${pid[$d]}" || rc=$?
		check "$d against the dev servers stopped with exit 0 (got $rc; log $logs/isolation-$d.log)" \
			test "$rc" -eq 0
	done
	pid=()
	save_state "$started" "$id" "$mid"
	finish
}

check_after() {
	local started id mid pids
	[ -f "$state" ] || fail "$state exists (run '$0 write' first)"
	# shellcheck disable=SC1090
	. "$state"
	check "the dev servers are the same processes (before: $pids, now: $(server_pids))" \
		test "$(server_pids)" = "$pids"
	dev_running() { bash scripts/infra.sh status >/dev/null 2>&1; }
	check "the dev servers still run" dev_running
	if [ -n "$id" ] && [ -n "$mid" ]; then
		check "the customer is still there" \
			test "$(sql "SELECT COUNT(*) FROM customers WHERE id = '$id'")" = 1
		check "its outbox row is still there, published" \
			test "$(sql "SELECT COUNT(*) FROM outbox WHERE message_id = '$mid' AND published_at IS NOT NULL")" = 1
		check "its welcome email is still there" \
			test "$(sql "SELECT COUNT(*) FROM welcome_emails WHERE customer_id = '$id' AND message_id = '$mid'")" = 1
		# Leave the user's data as it was.
		sql "DELETE FROM welcome_emails WHERE customer_id = '$id';
			DELETE FROM processed_messages WHERE message_id = '$mid';
			DELETE FROM outbox WHERE message_id = '$mid';
			DELETE FROM customers WHERE id = '$id';" ||
			echo "isolation: warning: could not remove customer $id from the dev database"
	fi
	if [ "$started" = 1 ]; then
		bash scripts/infra.sh stop >/dev/null ||
			echo "isolation: warning: the dev servers did not stop cleanly"
	fi
	rm -f "$state"
	finish
}

case $phase in
	write) write ;;
	check) check_after ;;
	*)
		echo "usage: $0 write|check" >&2
		exit 2
		;;
esac
