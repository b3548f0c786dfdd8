#!/usr/bin/env bash
# shellcheck disable=SC2317 # checks run through check() and wait_for look unreachable
# tests/dev_test.sh - `make dev` driven as a user would, again and again.
# Regression test of issue 12: Ctrl-C raced the daemons' own SIGINT and
# was reported as a crash ("dev: *** app EXITED (status 0) ***",
# "make: *** [Makefile:174: dev] Error 1").
#
# DEV_TEST_RUNS times (at least 5): start `make dev`, wait for
# "dev: all ready", POST the README's customer, wait for the relay's and
# the worker's lines, press Ctrl-C (SIGINT to make's whole process group,
# as a terminal does).  Each time: make ends within 30 s with 0 or 130,
# exactly one "dev: stopping" line, each daemon logs its clean stop and
# exits 0, no "EXITED" and no "Error" line from make or dev.sh, no daemon
# left.  Then once more, with the relay killed (kill -9) from outside:
# reported loudly ("dev: *** relay EXITED"), the others stopped cleanly,
# make fails, no daemon left.
# And once `make dev RELAYS=3 WORKERS=4` (issue 17): DEV_TEST_SCALE_POSTS
# (300) customers POSTed, each one's welcome handled by exactly one worker
# line, no delivery absorbed as a duplicate by any worker (none reached
# the queue twice), every instance stopped cleanly.
# First, `make dev RELAY_MODE=binlog RELAYS=2` (issue 18): the MariaDB
# restarted with the binary log (it ran without it), one relay leads and
# the other stands by, the README's customer handled once, Ctrl-C stops
# all cleanly; then the MariaDB restarted without the binary log, as the
# other tests want it (DEV_TEST_BINLOG_ONLY=1: only this part).
# The last of the DEV_TEST_RUNS is `make dev MONITOR=1`: besides the
# above, "dev: all ready" names the Prometheus, which answers on its port
# and scrapes the three daemons (up == 1), and Ctrl-C stops it too
# ("dev: prometheus stopped (exit 0)", its port free again).
#
# `make dev` runs against the test servers (scripts/ports.env) with the
# daemons' own ports moved to free ones, so a `make dev` of the user's may
# run meanwhile.  Needs make, curl, pgrep (procps) and ss (iproute2),
# which scripts/deps.sh installs: a missing one fails the test rather than
# passing it vacuously.  Prints "dev: N passed, N failed" (tests/run.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
runs=${DEV_TEST_RUNS:-5}
logs=${OUTBOX_TEST_LOGS:-$root/build/test-logs}
build=${BUILD_ROOT:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
bin="$build/release/bin"
daemons="^$bin/outbox-(app|relay|worker)( |$)"
mkdir -p "$logs"
TEST_NAME=dev
# shellcheck source=tests/check.sh
. "$root/tests/check.sh"

need_tools make curl pgrep ss
check "DEV_TEST_RUNS=$runs is at least 5" test "$runs" -ge 5 2>/dev/null

# Not the dev servers: this test writes customers.  tests/run.sh has
# already selected the test servers; run alone, the same.
use_test_servers
# DEV_TEST_<NAME> moves one (a machine where free_port's range is taken).
# Each free port differs from those chosen before it (none is bound yet).
# The relays' and workers' metrics ports step by 10 from theirs
# (scripts/dev.sh): the workers' is the relays' plus one, as 9466 is
# 9465's, so that no step of one is a step of the other, and the other
# ports are picked outside their steps.
pick_metrics() {
	local r
	for _ in $(seq 1 50); do
		r=$(free_port) || return 1
		if [ -z "$(ss -Htan "( sport = :$((r + 1)) )" 2>/dev/null)" ]; then
			echo "$r"
			return 0
		fi
	done
	return 1
}
RELAY_METRICS_PORT=${DEV_TEST_RELAY_METRICS_PORT:-$(pick_metrics)}
WORKER_METRICS_PORT=${DEV_TEST_WORKER_METRICS_PORT:-$((RELAY_METRICS_PORT + 1))}
mapfile -t steps < <(seq "$RELAY_METRICS_PORT" "$((RELAY_METRICS_PORT + 81))")
APP_PORT=${DEV_TEST_APP_PORT:-$(free_port "${steps[@]}")}
APP_METRICS_PORT=${DEV_TEST_APP_METRICS_PORT:-$(free_port "${steps[@]}" "$APP_PORT")}
# The Prometheus of the MONITOR=1 run: not the user's make dev's.
OUTBOX_DEV_PROM_PORT=${DEV_TEST_PROM_PORT:-$(free_port "${steps[@]}" "$APP_PORT" "$APP_METRICS_PORT")}
export APP_PORT APP_METRICS_PORT RELAY_METRICS_PORT WORKER_METRICS_PORT \
	OUTBOX_DEV_PROM_PORT
prom="http://127.0.0.1:$OUTBOX_DEV_PROM_PORT"

# daemons_left: 0 when none of this checkout's make dev daemons runs, 1
# when some do, 2 when pgrep itself fails (never a vacuous pass).
daemons_left() {
	local rc=0
	pgrep -f "$daemons" >/dev/null || rc=$?
	case $rc in 0) return 1 ;; 1) return 0 ;; *) return 2 ;; esac
}
exited() { ! kill -0 "$1" 2>/dev/null; }
ready() { grep -q '^dev: all ready' "$1"; }
# ready_or_ended LOG: ready, or make dev already gave up (a failed build
# ends it at once: no waiting out the deadline for a line that cannot come).
ready_or_ended() { ready "$1" || exited "$MAKE_PID"; }
# came_up N LOG: make dev reached 'all ready' within N s; when it did not,
# its output is shown and the test ends here (every later step would fail
# on the same cause, each after its own deadline).
came_up() {
	wait_for "$1" ready_or_ended "$2" || true
	check "$3: make dev says 'dev: all ready' within $1 s" ready "$2"
	ready "$2" && return 0
	echo "dev: make dev output:"
	tail -n 40 "$2"
	stop_dev
	finish
}
relay_line() { grep -q '^outbox-demo-relay *| .* Published messages: \[' "$1"; }
worker_line() {
	grep -q "^outbox-demo-worker *| .* Handling \[CustomerCreated\] - Payload: '.*\"email\":\"$2\"" "$1"
}
# Lines of make and dev.sh (not the daemons' own) that report a failure.
alarms() { grep -vE '^outbox-demo-[a-z]+ *\|' "$1" | grep -E 'EXITED|Error' || true; }

# start_dev LOG [MAKE ARG...]: `make dev` in a process group of its own
# (job control), as a terminal runs it; a plain `&` job would ignore
# SIGINT.  And with SIGINT's default action, as a terminal gives it: a
# make test started with SIGINT ignored (a background job of a script,
# nohup, some CI runners) passes that on to every child, and a shell
# cannot trap a signal ignored when it started (dev.sh's Ctrl-C).
MAKE_PID=
start_dev() {
	local log=$1
	shift
	set -m
	env --default-signal=INT make --no-print-directory dev "$@" >"$log" 2>&1 &
	MAKE_PID=$!
	set +m
}
# int_default PID: the process does not ignore SIGINT (/proc's SigIgn
# mask, bit 2 - 1), read once it runs make (10 s at most): until env
# execs make with SIGINT's default, it is the shell's fork, which ignores
# what the shell ignores (a run started in the background does: a CI run
# read the fork's mask and failed); 2 when it cannot be read (never a
# vacuous pass).
runs_make() { [ "$(cat "/proc/$1/comm" 2>/dev/null)" = make ]; }
int_default() {
	local mask
	wait_for 10 runs_make "$1" || return 2
	mask=$(sed -n 's/^SigIgn:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)
	[ -n "$mask" ] || return 2
	[ $((16#$mask & 2)) -eq 0 ]
}
# stop_dev: whatever happened, nothing of this run is left behind.
stop_dev() {
	if ! exited "$MAKE_PID"; then
		kill -INT -- "-$MAKE_PID" 2>/dev/null || true
		wait_for 30 exited "$MAKE_PID" || kill -KILL -- "-$MAKE_PID" 2>/dev/null || true
	fi
	if ! daemons_left; then
		pkill -KILL -f "$daemons" 2>/dev/null || true
	fi
}
trap stop_dev EXIT

# The first start may build the release binaries: a generous deadline.
ready_s=600
# up3: Prometheus scrapes the three daemons.
up3() {
	[ "$(curl -sf -m 2 --get --data-urlencode 'query=count(up{job=~"outbox-.*"} == 1)' \
		"$prom/api/v1/query" | grep -o '"value":\[[^]]*\]' | grep -o '"[0-9]*"]')" = '"3"]' ]
}
prom_port_free() { [ -z "$(port_holder "$OUTBOX_DEV_PROM_PORT")" ]; }

# The binlog mode: the test MariaDB with the binary log for this part only.
log_bin() { bash scripts/infra.sh db-sql -N -B -e 'SELECT @@log_bin' 2>/dev/null; }
out="$logs/make-dev-binlog.log"
echo "dev: --- start with RELAY_MODE=binlog RELAYS=2 ($out)"
start_dev "$out" RELAY_MODE=binlog RELAYS=2
check "make dev runs with Ctrl-C's default action, as from a terminal" \
	int_default "$MAKE_PID"
came_up "$ready_s" "$out" binlog
check "binlog: the MariaDB runs with the binary log" test "$(log_bin)" = 1
leading() { grep -q '^outbox-demo-relay[-0-9]* *| .* binlog mode: leading' "$1"; }
check "binlog: a relay leads" wait_for 30 leading "$out"
standing_by() { grep -q '^outbox-demo-relay[-0-9]* *| .* binlog mode: standby' "$1"; }
check "binlog: the other stands by" wait_for 30 standing_by "$out"
email="dev-binlog-$$-$RANDOM@example.com"
body=$(curl -s -m 10 -X POST -H "Content-Type: application/json" \
	-d "{\"email\":\"$email\",\"name\":\"TESTTTTTT\"}" "http://127.0.0.1:$APP_PORT/customers" || true)
check "binlog: POST answers the customer" grep -q "\"email\":\"$email\"" <<<"$body"
binlog_relay_line() { grep -q '^outbox-demo-relay[-0-9]* *| .* Published messages: \[' "$1"; }
check "binlog: a relay's line" wait_for 60 binlog_relay_line "$out"
check "binlog: the worker's line for this customer" wait_for 60 worker_line "$out" "$email"
kill -INT -- "-$MAKE_PID" 2>/dev/null || true
check "binlog: Ctrl-C stops make dev within 30 s" wait_for 30 exited "$MAKE_PID"
for d in app relay relay-2 worker; do
	check "binlog: $d exited 0" grep -q "^dev: $d stopped (exit 0)" "$out"
done
check "binlog: no daemon left running" daemons_left
[ "$failed" -eq 0 ] || { echo "dev: make dev output:"; tail -n 40 "$out"; }
stop_dev
{ bash scripts/infra.sh db-stop && bash scripts/infra.sh db-start; } >>"$out" 2>&1 || true
check "binlog: the MariaDB runs without the binary log again" test "$(log_bin)" = 0
# docker-compose.yml's binlog mode (no engine here: its configuration).
if command -v docker-compose >/dev/null 2>&1; then
	compose_binlog() {
		docker-compose --env-file scripts/compose-binlog.env -f docker-compose.yml config 2>/dev/null |
			grep -cE '^ *(- --log-bin=mariadb-bin|RELAY_MODE: binlog|RELAY_BINLOG_USER: outbox_binlog)$'
	}
	check "compose: with scripts/compose-binlog.env, the db's binary log on and the relay in binlog mode" \
		test "$(compose_binlog)" = 3
	check "compose: without it, the binary log off and the relay polling" \
		test "$(docker-compose -f docker-compose.yml config 2>/dev/null | grep -cE '^ *(- --skip-log-bin|RELAY_MODE: poll)$')" = 2
fi
[ "${DEV_TEST_BINLOG_ONLY:-0}" != 1 ] || finish

for i in $(seq 1 "$runs"); do
	out="$logs/make-dev-$i.log"
	monitor=0
	[ "$i" -ne "$runs" ] || monitor=1
	echo "dev: --- start $i of $runs ($out)$([ "$monitor" = 0 ] || echo ', MONITOR=1')"
	start_dev "$out" "MONITOR=$monitor"
	came_up "$ready_s" "$out" "$i"
	if [ "$monitor" = 1 ]; then
		check "$i: 'dev: all ready' names the Prometheus" \
			grep -q "^dev: all ready: .*Prometheus on $prom " "$out"
		check "$i: Prometheus scrapes the three daemons within 30 s" wait_for 30 up3
	fi
	ready_s=180
	email="dev-test-$$-$i-$RANDOM@example.com"
	body=$(curl -s -m 10 -X POST -H "Content-Type: application/json" \
		-d "{\"email\":\"$email\",\"name\":\"TESTTTTTT\"}" \
		"http://127.0.0.1:$APP_PORT/customers" || true)
	check "$i: POST answers the customer" grep -q "\"email\":\"$email\"" <<<"$body"
	check "$i: relay line, prefixed" wait_for 60 relay_line "$out"
	check "$i: worker line for this customer, prefixed" wait_for 60 worker_line "$out" "$email"

	kill -INT -- "-$MAKE_PID" 2>/dev/null || true
	check "$i: Ctrl-C stops make dev within 30 s" wait_for 30 exited "$MAKE_PID"
	exited "$MAKE_PID" || stop_dev
	rc=0
	wait "$MAKE_PID" || rc=$?
	# make reports the interrupt itself (130, as for any Ctrl-C'd make);
	# what dev.sh and the daemons say must be clean.
	check "$i: make dev ends on Ctrl-C with 0 or make's 130 (got $rc)" \
		test "$rc" -eq 0 -o "$rc" -eq 130
	n=$(grep -c '^dev: stopping' "$out" || true)
	check "$i: one 'dev: stopping' line (got $n)" test "$n" -eq 1
	a=$(alarms "$out")
	check "$i: no EXITED or Error line${a:+ (got: $a)}" test -z "$a"
	for d in app relay worker; do
		check "$i: $d exited 0" grep -q "^dev: $d stopped (exit 0)" "$out"
		check "$i: $d logged its clean stop" grep -q "^outbox-demo-$d *| .*stopped" "$out"
	done
	check "$i: no daemon left running" daemons_left
	if [ "$monitor" = 1 ]; then
		check "$i: prometheus exited 0" grep -q "^dev: prometheus stopped (exit 0)" "$out"
		check "$i: Prometheus's port free again" prom_port_free
	fi
	[ "$failed" -eq 0 ] || { echo "dev: make dev output:"; tail -n 40 "$out"; }
	stop_dev
done

# Several relays and workers: every message once, none twice.
# metric_sum NAME BASE N: NAME summed over the N daemons whose metrics
# ports are BASE, BASE+10, ... (scripts/dev.sh).
metric_sum() {
	local i sum=0 v
	for i in $(seq 0 $(($3 - 1))); do
		v=$(curl -sf -m 2 "http://127.0.0.1:$(($2 + 10 * i))/metrics" |
			awk -v n="$1" '$1 == n { print $2 }') || return 1
		[ -n "$v" ] || return 1
		sum=$((sum + ${v%.*}))
	done
	echo "$sum"
}
scale_n=${DEV_TEST_SCALE_POSTS:-300}
scale_tag="dev-scale-$$-$RANDOM"
handled_ours() { grep -c "^outbox-demo-worker[-0-9]* *| .* Handling \[CustomerCreated\] - Payload: '.*\"email\":\"$scale_tag-" "$1" || true; }
all_handled() { [ "$(handled_ours "$1")" -ge "$scale_n" ]; }
# Each relay's and worker's metrics port is 10 above the one before
# (scripts/dev.sh): ports whose steps meet are refused before anything
# starts (a CI run's random ports were 10 apart: relay-2 and relay-3 took
# the first two workers' ports, which ran without metrics).
clash_out="$logs/dev-clash.log"
clash_refused() {
	! DEV_RELAYS=3 DEV_WORKERS=4 RELAY_METRICS_PORT=24360 WORKER_METRICS_PORT=24370 \
		timeout 20 bash scripts/dev.sh >"$clash_out" 2>&1 &&
		grep -q "relay-2's metrics port 24370 is also taken by worker " "$clash_out"
}
check "RELAYS=3 WORKERS=4 with metrics ports 10 apart refused, saying which ($clash_out)" clash_refused
check "nothing started meanwhile" bash -c "! grep -q 'started\|ready' '$clash_out'"

out="$logs/make-dev-scale.log"
echo "dev: --- start with RELAYS=3 WORKERS=4, $scale_n POSTs ($out)"
start_dev "$out" RELAYS=3 WORKERS=4
came_up "$ready_s" "$out" scale
check "scale: 3 relays and 4 workers started" \
	grep -q '^dev: starting app relay relay-2 relay-3 worker worker-2 worker-3 worker-4;' "$out"
created=0
for i in $(seq 1 "$scale_n"); do
	code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST -H "Content-Type: application/json" \
		-d "{\"email\":\"$scale_tag-$i@example.com\",\"name\":\"Scale $i\"}" \
		"http://127.0.0.1:$APP_PORT/customers" || true)
	[ "$code" != 201 ] || created=$((created + 1))
done
check "scale: $scale_n POSTs answered 201 (got $created)" test "$created" -eq "$scale_n"
check "scale: every welcome handled within 120 s" wait_for 120 all_handled "$out"
dups=$(grep -o "\"email\":\"$scale_tag-[0-9]*@" "$out" | sort | uniq -d | head -n 3)
n=$(handled_ours "$out")
check "scale: $scale_n customers, $n handled lines, none twice${dups:+ (twice: $dups)}" \
	test "$n" -eq "$scale_n" -a -z "$dups"
published=$(metric_sum outbox_relay_messages_published_total "$RELAY_METRICS_PORT" 3 || echo '?')
consumed=$(metric_sum outbox_worker_messages_consumed_total "$WORKER_METRICS_PORT" 4 || echo '?')
dup=$(metric_sum outbox_worker_messages_duplicate_total "$WORKER_METRICS_PORT" 4 || echo '?')
echo "dev: scale: published $published (3 relays), consumed $consumed, duplicates $dup (4 workers)"
check "scale: no duplicate reached the workers (got $dup)" test "$dup" = 0
check "scale: the relays published at least the $scale_n (got $published)" \
	test "$published" != '?' -a "${published/\?/0}" -ge "$scale_n"
kill -INT -- "-$MAKE_PID" 2>/dev/null || true
check "scale: Ctrl-C stops make dev within 30 s" wait_for 30 exited "$MAKE_PID"
for d in relay relay-2 relay-3 worker worker-2 worker-3 worker-4; do
	check "scale: $d exited 0" grep -q "^dev: $d stopped (exit 0)" "$out"
done
check "scale: no daemon left running" daemons_left
[ "$failed" -eq 0 ] || { echo "dev: make dev output:"; tail -n 40 "$out"; }
stop_dev

# A daemon that dies on its own is still an alarm, and stops the others.
out="$logs/make-dev-kill.log"
echo "dev: --- start with the relay killed ($out)"
start_dev "$out"
came_up "$ready_s" "$out" kill
relay=$(pgrep -f "^$bin/outbox-relay( |$)" || true)
check "kill: the relay's pid found (${relay:-none})" test -n "$relay"
[ -z "$relay" ] || kill -KILL "$relay"
check "kill: make dev ends within 30 s" wait_for 30 exited "$MAKE_PID"
exited "$MAKE_PID" || stop_dev
rc=0
wait "$MAKE_PID" || rc=$?
check "kill: make dev fails (got $rc)" test "$rc" -ne 0 -a "$rc" -ne 130
check "kill: the relay's death reported loudly" grep -q '^dev: \*\*\* relay EXITED' "$out"
for d in app worker; do
	check "kill: $d stopped cleanly (exit 0)" grep -q "^dev: $d stopped (exit 0)" "$out"
done
check "kill: no daemon left running" daemons_left
[ "$failed" -eq 0 ] || { echo "dev: make dev output:"; tail -n 40 "$out"; }
stop_dev
finish
