#!/usr/bin/env bash
# tests/dev_test.sh - drives `make dev` as a user would: starts it, waits
# for the API, POSTs the README's customer, waits for the relay's and the
# worker's lines about it, presses Ctrl-C (SIGINT to the whole process
# group, as a terminal does), and checks that make exits 0 and no daemon is
# left running.  Run by tests/run.sh; prints "dev: N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logs=${OUTBOX_TEST_LOGS:-/tmp}
out="$logs/make-dev.log"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 3900)
passed=0
failed=0
check() { # check <description> <command...>
	local what=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "dev: ok: $what"
	else
		failed=$((failed + 1))
		echo "dev: FAILED: $what"
	fi
}
# wait_for <seconds> <command...>: polls every 0.1 s until it succeeds.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.1
	done
}
daemons_left() { pgrep -f "$root/build/release/bin/outbox-(app|relay|worker)" >/dev/null; }

# Job control: the background job gets its own process group and, unlike
# a plain `&` job, does not ignore SIGINT.
set -m
APP_PORT=$port make --no-print-directory dev >"$out" 2>&1 &
pid=$!
set +m

ready() { curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; }
check "make dev serves the API within 180 s" wait_for 180 ready

email="dev-test-$$-$RANDOM@example.com"
body=$(curl -s -X POST -H "Content-Type: application/json" \
	-d "{\"email\":\"$email\",\"name\":\"TESTTTTTT\"}" \
	"http://127.0.0.1:$port/customers")
check "POST answers the customer" grep -q "\"email\":\"$email\"" <<<"$body"
relay_line() { grep -q '^outbox-demo-relay *| .* Published messages: \[' "$out"; }
worker_line() { grep -q "^outbox-demo-worker *| .* Handling \[CustomerCreated\] - Payload: '.*\"email\":\"$email\"" "$out"; }
check "relay line, prefixed" wait_for 30 relay_line
check "worker line for this customer, prefixed" wait_for 30 worker_line

kill -INT -- "-$pid" 2>/dev/null
exited() { ! kill -0 "$pid" 2>/dev/null; }
check "Ctrl-C stops make dev within 20 s" wait_for 20 exited
wait "$pid"
rc=$?
# make reports the interrupt itself (130, as for any Ctrl-C'd make); the
# daemons' own exit statuses are what must be clean.
check "make dev ends on Ctrl-C with 0 or make's 130 (got $rc)" \
	test "$rc" -eq 0 -o "$rc" -eq 130
for d in app relay worker; do
	check "$d exited 0" grep -q "^dev: $d stopped (exit 0)" "$out"
done
check "no daemon left running" bash -c "! pgrep -f '$root/build/release/bin/outbox-(app|relay|worker)' >/dev/null"
for d in app relay worker; do
	check "$d logged its clean stop" grep -q "^outbox-demo-$d *| .*stopped" "$out"
done
if daemons_left; then
	pkill -KILL -f "$root/build/release/bin/outbox-(app|relay|worker)"
fi
[ "$failed" -ne 0 ] && { echo "dev: make dev output:"; tail -n 40 "$out"; }
echo "dev: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
