#!/usr/bin/env bash
# tests/load/valgrind.sh - `make valgrind`: app, relay and worker under
# valgrind memcheck while a load flows through them (outbox-bench-e2e at a
# modest rate: valgrind runs code ~30x slower), then SIGTERM.  Passes when
# every daemon exits 0 with no memcheck error and no leak.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# The test servers (scripts/ports.env), never the dev ones: this empties
# tables and queues.
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
use_test_servers
# shellcheck source=scripts/env.sh
. scripts/env.sh
# shellcheck source=scripts/roles.env
. scripts/roles.env
build=${BUILD_ROOT:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
bin="$build/release/bin"
out="$build/valgrind"
rate=${VALGRIND_RATE:-40}
secs=${VALGRIND_SECONDS:-10}
mkdir -p "$out"
rm -f "$out"/*.log

vg=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=97
    --track-fds=no --num-callers=30)
port=$(for p in $(seq 39100 39199); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; break; }; done)
declare -A pid=()
start() { # start <daemon> VAR=value...
	local d=$1
	shift
	env "$@" "${vg[@]}" --log-file="$out/$d.valgrind" "$bin/outbox-$d" \
		>"$out/$d.log" 2>&1 &
	pid[$d]=$!
}
start app DB_USER="$OUTBOX_APP_DB_USER" DB_PASS="$OUTBOX_APP_DB_PASS" \
	APP_PORT="$port" APP_BIND=127.0.0.1 APP_METRICS_PORT=0 APP_ACCESS_LOG=0
start relay DB_USER="$OUTBOX_RELAY_DB_USER" DB_PASS="$OUTBOX_RELAY_DB_PASS" \
	RABBITMQ_USER="$OUTBOX_RELAY_MQ_USER" RABBITMQ_PASS="$OUTBOX_RELAY_MQ_PASS" \
	RELAY_METRICS_PORT=0
start worker DB_USER="$OUTBOX_WORKER_DB_USER" DB_PASS="$OUTBOX_WORKER_DB_PASS" \
	RABBITMQ_USER="$OUTBOX_WORKER_MQ_USER" RABBITMQ_PASS="$OUTBOX_WORKER_MQ_PASS" \
	WORKER_METRICS_PORT=0
ready() { curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; }
end=$((SECONDS + 120))
until ready; do
	[ "$SECONDS" -ge "$end" ] && { echo "valgrind: app not ready"; break; }
	sleep 0.2
done
echo "valgrind: load of $rate POST/s for $secs s through app, relay, worker"
"$bin/outbox-bench-e2e" "$port" "$rate" "$secs" | tee "$out/load.out"
load_rc=${PIPESTATUS[0]}

rc=0
for d in app relay worker; do
	kill -TERM "${pid[$d]}" 2>/dev/null
done
for d in app relay worker; do
	wait "${pid[$d]}"
	st=$?
	summary=$(grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|possibly lost' "$out/$d.valgrind" | sed 's/^==[0-9]*== *//' | tr '\n' ';')
	echo "valgrind: $d exit $st: $summary"
	[ "$st" -eq 0 ] || rc=1
done
[ "$load_rc" -eq 0 ] || { echo "valgrind: the load did not complete (exit $load_rc)"; rc=1; }
echo "valgrind: reports in $out/*.valgrind"
exit $rc
