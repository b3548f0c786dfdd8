#!/usr/bin/env bash
# tests/run.sh - runs every test of the project: the unit tests (no
# servers), then the integration and end-to-end tests against the private
# MariaDB and RabbitMQ of scripts/infra.sh, with the ASan+UBSan build.
# Prints each part's time, then one "N passed, N failed" line at the end;
# exits non-zero on any failure.  `make test` calls it after building.
#
# Always the test servers of scripts/ports.env (OUTBOX_TEST_* move them),
# never the dev ones, whatever OUTBOX_* the caller exported: the tests
# empty the tables and queues and stop and kill the servers.  It starts
# them, and stops them at the end if it started them
# (OUTBOX_TEST_KEEP_SERVERS=1 keeps them).  tests/isolation_test.sh proves
# that the dev servers' data survives the run.
#
# The containers step needs root (podman runs rootful here).  Run as
# another user, it goes through sudo: passwordless, or asked for at the
# start (a terminal) and kept fresh for the run; if sudo cannot, the run
# stops at once saying what to run.  `tests/run.sh --preflight` does only
# that check (make test runs it before building).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# shellcheck source=tests/failures.sh
. tests/failures.sh

containers=0
if [ "${OUTBOX_TEST_CONTAINERS:-1}" = 1 ] || [ -n "${CI:-}" ]; then
	containers=1
fi
preflight() {
	[ "$containers" = 1 ] && [ "$(id -u)" -ne 0 ] || return 0
	local why
	if ! command -v sudo >/dev/null 2>&1; then
		why="sudo is not installed"
	elif sudo -n true 2>/dev/null; then
		return 0
	elif [ -t 0 ]; then
		echo "make test: the containers step needs root (podman runs rootful here): sudo asks for your password now, once"
		sudo -v && return 0
		why="sudo refused"
	else
		why="sudo needs a password and there is no terminal to ask"
	fi
	local sudo_way="'sudo -v && make test' (sudo asks once), or "
	command -v sudo >/dev/null 2>&1 || sudo_way=
	echo "make test: the containers step needs root (podman runs rootful here) and $why:" \
		"run make test as root, or ${sudo_way}'OUTBOX_TEST_CONTAINERS=0 make test' to leave the containers out." >&2
	return 1
}
preflight || exit 1
[ "${1:-}" != --preflight ] || exit 0
# Keeps sudo's timestamp fresh until the containers step (sudo forgets it
# after 15 minutes by default): refreshed once a minute, each wait ended
# at once by this script's exit (tail --pid), so the keeper never
# outlives it.
sudo_keeper=
if [ "$containers" = 1 ] && [ "$(id -u)" -ne 0 ]; then
	(while kill -0 $$ 2>/dev/null && sudo -n -v 2>/dev/null; do
		timeout 60 tail --pid=$$ -f /dev/null || :
	done) &
	sudo_keeper=$!
	trap 'kill "$sudo_keeper" 2>/dev/null' EXIT
fi

use_test_servers
# shellcheck source=scripts/env.sh
. scripts/env.sh

build=${BUILD_ROOT:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
export OUTBOX_ROOT="$root"
export OUTBOX_BIN="$build/san/bin"
export OUTBOX_TEST_LOGS="$build/test-logs"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=98"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
rm -rf "$OUTBOX_TEST_LOGS"
mkdir -p "$OUTBOX_TEST_LOGS"

# The container images (scripts/containers.sh setup images: the
# base image made with mmdebstrap, the three builds and their checks; podman's
# packages too when scripts/deps.sh has not installed them) are made in
# the background from the start, at the lowest CPU priority (nice 19).
# On a fresh machine that is over two minutes of downloads, dpkg and one
# compile, a few seconds once podman's cache holds them; beside the
# server tests it slows them (seen: integration 430 -> 495 s, unit 27 ->
# 43 s) by less than it takes in a row.  The run waits for it before the
# load tests (chaos, cluster); the smoke run against the test servers
# comes last (below).  Through sudo -n when not root, see the top.
ctr_pid=
ctr_log="$OUTBOX_TEST_LOGS/containers-images.log"
if [ "$containers" = 1 ]; then
	OUTBOX_SUDO=-n nice -n 19 bash scripts/containers.sh setup images >"$ctr_log" 2>&1 &
	ctr_pid=$!
fi

passed=0
failed=0
t_all=$(now_us)
timings=()
# timing NAME START_US: one line of the final summary.
timing() { timings+=("$(printf '%-16s %7s s' "$1" "$(secs "$2")")"); }
# failures: what failed, repeated after the timings (tests/failures.sh);
# failed_part NAME WHY [OUT]: a part that failed, and the lines of its
# output that say which checks.
failures=()
failed_part() {
	local l
	failures+=("$1: $2")
	[ -z "${3:-}" ] && return
	while IFS= read -r l; do failures+=("  $l"); done < <(failure_lines "$3")
}

# slowest_cases XML N: the N slowest cases of check's XML log, "run:" and
# their seconds first.
slowest_cases() {
	awk -F'[<>]' '/<test / { t = 1 } /<\/test>/ { t = 0 } t && /<id>/ { id = $3 }
		t && /<duration>/ { printf "run:   %7.1f s  %s\n", $3, id }' "$1" |
		sort -k2,2 -rn | head -n "$2"
}

# run <name> <cmd...>: runs a test binary, adds its "N passed, N failed".
run() {
	local name=$1 out line p f rc t
	shift
	t=$(now_us)
	out="$OUTBOX_TEST_LOGS/$name.out"
	echo "== $name"
	"$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	timing "$name" "$t"
	line=$(grep -E '^[a-z]+: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
	if [ -z "$line" ]; then
		echo "$name: no result line (exit $rc): counted as 1 failure"
		failed=$((failed + 1))
		failed_part "$name" "no result line (exit $rc; $out)" "$out"
		return
	fi
	p=$(sed -E 's/^[a-z]+: ([0-9]+) passed.*/\1/' <<<"$line")
	f=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "$name: exit status $rc with no failed test: counted as 1 failure"
		failed=$((failed + 1))
		failed_part "$name" "exit status $rc with no failed test ($out)" "$out"
	elif [ "$f" -ne 0 ]; then
		failed_part "$name" "$f failed ($out)" "$out"
	fi
}

echo "== lint"
t=$(now_us)
if bash scripts/lint.sh banned; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
	failed_part lint "scripts/lint.sh banned failed"
fi
timing lint "$t"

# scripts/deps.sh leaves the host's services alone (fakes, no apt).
run deps bash tests/deps_test.sh

# The bench's charts drawn from small known files (no bench, no server).
run charts bash tests/bench_charts_test.sh

# The lines repeated of a failed part at the end (tests/failures.sh).
run failures bash tests/failures_test.sh

# scripts/infra.sh's options the server tests rely on, on a MariaDB of
# its own (a temporary folder, a free port).  Its first minute is a wait
# (a port's TIME-WAIT waited out): it runs in the background beside the
# unit tests and the test servers' start, and is counted before the
# integration tests, which it must not share the machine with.
infra_log="$OUTBOX_TEST_LOGS/infra.bg"
t_infra=$(now_us)
bash tests/infra_test.sh >"$infra_log" 2>&1 &
infra_pid=$!

run unit env CK_XML_LOG_FILE_NAME="$OUTBOX_TEST_LOGS/unit.xml" "$OUTBOX_BIN/outbox-unit"

# The alerting rules (monitoring/alerts.yml): each one's promtool unit
# tests (monitoring/alerts_test.yml: fires when it should, not before its
# for:, not when healthy).
run alerts bash -c 'if promtool check rules monitoring/alerts.yml &&
	promtool test rules monitoring/alerts_test.yml; then
	echo "alerts: 1 passed, 0 failed"; else echo "alerts: 0 passed, 1 failed"; exit 1; fi'

echo "== servers ($OUTBOX_SERVERS: MariaDB 127.0.0.1:$OUTBOX_DB_PORT, RabbitMQ 127.0.0.1:$OUTBOX_MQ_PORT, data $OUTBOX_VAR)"
t=$(now_us)
servers_started=0
bash scripts/infra.sh status >/dev/null 2>&1 || servers_started=1
servers_ok=1
if bash scripts/infra.sh start; then
	passed=$((passed + 1))
else
	echo "the test servers did not start: server tests not run"
	failed=$((failed + 1))
	failed_part servers "the test servers did not start: server tests not run"
	servers_ok=0
fi
timing servers "$t"

# A customer written to the dev servers before the server tests, checked
# after them (the end of this script).
run isolation-write bash tests/isolation_test.sh write

# The infra test started beside the unit tests (above): its output and
# result (the time shown is only the wait for its end; "infra (all)" its
# whole run).
infra_rc=0
t=$(now_us)
wait "$infra_pid" || infra_rc=$?
timing "infra (all)" "$t_infra"
run infra bash -c 'cat "$1"; exit "$2"' _ "$infra_log" "$infra_rc"
timing "infra wait" "$t"

if [ "$servers_ok" = 1 ]; then
	echo "== migrations"
	t=$(now_us)
	if "$OUTBOX_BIN/outbox-migrate"; then
		passed=$((passed + 1))
		timing migrations "$t"
		run integration env CK_XML_LOG_FILE_NAME="$OUTBOX_TEST_LOGS/integration.xml" \
			"$OUTBOX_BIN/outbox-itest"
	else
		echo "migrations failed: integration tests not run"
		failed=$((failed + 1))
		failed_part migrations "failed: integration tests not run"
	fi
fi

# A short fuzzing pass (libFuzzer, ASan+UBSan) of the request body parser
# and the message decoder; `make fuzz` runs longer.  It needs no server and
# builds apart (build/fuzz): it runs on one core beside the dev and monitor
# steps, which mostly wait; its result is counted after them.
fuzz_log="$OUTBOX_TEST_LOGS/fuzz.log"
mkdir -p "$OUTBOX_TEST_LOGS"
(if make --no-print-directory fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-15}"; then
	echo "fuzz: 2 passed, 0 failed"; else echo "fuzz: 0 passed, 2 failed"; exit 1; fi) \
	>"$fuzz_log" 2>&1 &
fuzz_pid=$!

# `make dev` driven as a user would (start, POST, see the lines, Ctrl-C).
run dev bash tests/dev_test.sh

# The monitoring against the live daemons: a private Prometheus with the
# shipped configuration, every dashboard query, an alert firing and
# resolving (tests/monitor_test.sh).
run monitor bash tests/monitor_test.sh

# The images made in the background (above): done before the load tests
# (the time shown is only the wait for its end).
ctr_rc=0
if [ -n "$ctr_pid" ]; then
	t=$(now_us)
	wait "$ctr_pid" || ctr_rc=$?
	timing "images wait" "$t"
fi

# A short chaos run (tests/load/chaos.sh) with the ASan+UBSan daemons: kill -9
# of app, relay and worker, a RabbitMQ and a MariaDB restart under load;
# every 201 checked, sanitizer reports and unexpected exits fail it.
run chaos env CHAOS_BIN="$OUTBOX_BIN" CHAOS_LOGS="$OUTBOX_TEST_LOGS/chaos" \
	CHAOS_REQUESTS=2000 CHAOS_RATE=200 CHAOS_FAULTS=6 CHAOS_GAP_MIN_S=1 \
	CHAOS_GAP_MAX_S=3 CHAOS_SETTLE_S=60 bash tests/load/chaos.sh

# A broker failover for real (tests/cluster_test.sh): the 3-node RabbitMQ
# cluster with quorum queues, 2 relays and 2 workers, the node leading the
# queue outbox killed (kill -9) under load; every 201 once, nothing
# dead-lettered, the daemons on the surviving nodes by themselves.
# Within make test's time: 1,200 POSTs, and the loss of the majority left
# to make chaos-cluster (which also runs the rolling restart).
run cluster env CLUSTER_REQUESTS=1200 CLUSTER_MINORITY_POSTS=0 \
	bash tests/cluster_test.sh

# The fuzzing pass started beside dev and monitor (above): its output and
# result (the time shown is only the wait for its end).
fuzz_rc=0
wait "$fuzz_pid" || fuzz_rc=$?
run fuzz bash -c 'cat "$1"; exit "$2"' _ "$fuzz_log" "$fuzz_rc"

# The container images, made in the background (above; their output
# first), then run against the test servers (scripts/containers.sh smoke;
# through sudo -n when not root, see the top).  Always in CI; locally
# OUTBOX_TEST_CONTAINERS=0 leaves it out, and says so.
if [ "$containers" = 1 ]; then
	run containers bash -c 'cat "$1"
		if [ "$2" != 0 ]; then
			echo "containers: the images were not built (exit $2): no smoke run"
		elif OUTBOX_SUDO=-n bash scripts/containers.sh smoke; then
			echo "containers: 1 passed, 0 failed"; exit 0
		fi
		echo "containers: 0 passed, 1 failed"; exit 1' _ "$ctr_log" "$ctr_rc"
else
	echo "containers: not run (OUTBOX_TEST_CONTAINERS=0)"
fi
[ -z "$sudo_keeper" ] || kill "$sudo_keeper" 2>/dev/null
sudo_keeper=

run isolation-check bash tests/isolation_test.sh check

if [ "$servers_started" = 1 ] && [ "${OUTBOX_TEST_KEEP_SERVERS:-0}" != 1 ]; then
	t=$(now_us)
	bash scripts/infra.sh stop || echo "warning: the test servers did not stop cleanly"
	timing "servers stop" "$t"
fi

if [ "$failed" -ne 0 ]; then
	echo "daemon logs: $OUTBOX_TEST_LOGS"
fi
echo "== timings"
for line in "${timings[@]}"; do
	echo "run:   $line"
done
echo "run:   $(printf '%-16s %7s s' total "$(secs "$t_all")")"
# The slowest cases of the integration tests (check's XML log of each
# case's time, $OUTBOX_TEST_LOGS/integration.xml): where make test's
# time goes.
if [ -s "$OUTBOX_TEST_LOGS/integration.xml" ]; then
	echo "== slowest integration cases"
	slowest_cases "$OUTBOX_TEST_LOGS/integration.xml" 12
fi
if [ ${#failures[@]} -ne 0 ]; then
	echo "== what failed"
	printf '%s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
