#!/usr/bin/env bash
# shellcheck disable=SC2317 # checks run through check() look unreachable
# tests/failures_test.sh - the lines tests/run.sh repeats of a failed part
# at the end of the run (tests/failures.sh), from outputs of the formats
# the parts print: check's failed assertion and timeout, a shell test's
# FAILED check, chaos's FAIL lines; a passing output gives none, a long
# line is cut, at most MAX lines.  No server.  Prints "failures: N
# passed, N failed" (tests/run.sh).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TEST_NAME=failures
# shellcheck source=tests/check.sh
. "$root/tests/check.sh"
# shellcheck source=tests/failures.sh
. "$root/tests/failures.sh"

# same <file> <expected...>: failure_lines of file are exactly these.
same() {
	local f=$1
	shift
	[ "$(failure_lines "$f")" = "$(printf '%s\n' "$@" | sed '/^$/d')" ]
}

cat >"$tmp/check.out" <<'EOF2'
Running suite(s): app
 97%: Checks: 3, Failures: 1, Errors: 1
tests/it_app_api.c:120:P:api:post_ok:0: Passed
tests/it_app_api.c:140:F:api:post_bad:0: Assertion 'code == 400' failed: code == 500, 400 == 400
tests/it_relay_faults.c:88:E:faults:broker_restart:0: (after this point) Test timeout expired
integration: 1 passed, 2 failed
EOF2
check "check's failed assertion and timeout, in order, not its passed case" \
	same "$tmp/check.out" \
	"tests/it_app_api.c:140:F:api:post_bad:0: Assertion 'code == 400' failed: code == 500, 400 == 400" \
	"tests/it_relay_faults.c:88:E:faults:broker_restart:0: (after this point) Test timeout expired"

cat >"$tmp/shell.out" <<'EOF2'
dev: ok: make dev starts
dev: FAILED: Ctrl-C exits 0 (exit 130)
dev: 1 passed, 1 failed
EOF2
check "a shell test's FAILED check" same "$tmp/shell.out" \
	"dev: FAILED: Ctrl-C exits 0 (exit 130)"

cat >"$tmp/chaos.out" <<'EOF2'
faults: 6 (kill -9 relay, restart mariadb)
FAIL: 3 acknowledged requests lost
RESULT: FAIL (replay: CHAOS_SEED=42)
chaos: 0 passed, 1 failed
EOF2
check "chaos's FAIL and RESULT lines" same "$tmp/chaos.out" \
	"FAIL: 3 acknowledged requests lost" "RESULT: FAIL (replay: CHAOS_SEED=42)"

printf '%s\n' "unit: ok: parse" "RESULT: PASS" "x.c:1:P:a:b:0: Passed" \
	"unit: 3 passed, 0 failed" >"$tmp/pass.out"
check "a passing output gives no line" same "$tmp/pass.out"
check "a missing output gives no line and no error" \
	same "$tmp/none.out"

long=$(printf 'x%.0s' $(seq 1 400))
echo "tests/it_e2e.c:9:F:e2e:big:0: $long" >"$tmp/long.out"
check "a long line is cut to 240 characters" \
	test "$(failure_lines "$tmp/long.out" | wc -c)" -eq 241

for i in 1 2 3 4 5 6 7; do echo "dev: FAILED: step $i"; done >"$tmp/many.out"
check "at most 5 lines by default" \
	test "$(failure_lines "$tmp/many.out" | wc -l)" -eq 5
check "at most MAX lines when given" \
	test "$(failure_lines "$tmp/many.out" 2 | tail -n 1)" = "dev: FAILED: step 2"

# run.sh repeats them: gathers them from each failed part's output and
# prints them after the timings, before its last line.
check "tests/run.sh gathers them from a failed part's output" \
	grep -qE 'done < <\(failure_lines "\$3"\)' "$root/tests/run.sh"
check "tests/run.sh prints them after the timings, before its last line" \
	awk '/^echo "== timings"/ { t = NR }
	    /printf .%s\\n. "\$\{failures\[@\]\}"/ && t { f = NR }
	    /^echo "\$passed passed, \$failed failed"/ { l = NR }
	    END { exit !(t && f > t && l > f) }' "$root/tests/run.sh"
finish
