#!/usr/bin/env bash
# shellcheck disable=SC2317 # checks run through check() look unreachable
# tests/bench_charts_test.sh - the bench's charts (tests/load/bench_charts.sh)
# drawn from small files of known content, without a bench: each SVG is
# well-formed XML (xmllint) and carries its title, series and marks; a
# chart whose input is missing is said and the others are drawn; no folder
# and no gnuplot are one clear line each; and the bench's raw consumer
# drains with the worker's default window.  Needs gnuplot and jq
# (scripts/deps.sh tools), no server.  Prints "charts: N passed, N failed"
# (tests/run.sh).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
charts=$root/tests/load/bench_charts.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TEST_NAME=charts
# shellcheck source=tests/check.sh
. "$root/tests/check.sh"

# texts <svg>: every text of the drawing, one a line (xmllint: a file
# that is not well-formed XML has none).
texts() {
	xmllint --xpath '//*[local-name()="text"]' "$1" 2>/dev/null |
		sed -E 's/<[^>]*>/\n/g' | sed -E 's/^ +//; /^$/d'
}
# has <svg> <text...>: each text is one of the drawing's, whole.
has() {
	local svg=$1 t
	shift
	for t in "$@"; do texts "$svg" | grep -qxF -- "$t" || return 1; done
}
lacks() { ! texts "$1" | grep -qF -- "$2"; }
wellformed() { [ -s "$1" ] && xmllint --noout "$1" 2>/dev/null; }
# draw <folder>: runs the chart script; OUT, RC.
draw() {
	RC=0
	OUT=$(bash "$charts" "$@" 2>&1) || RC=$?
	printf '%s\n' "$OUT" | sed 's/^/charts:   /'
}
said() { grep -qF -- "$1" <<<"$OUT"; }

# ---- a run with history: every input there ---------------------------
run=$tmp/run
mkdir -p "$run"
# 100 latencies, 1 to 100 ms: p50 is the 51st (51 ms), p99 the 99th.
{
	echo "# outbox-bench-e2e: 1000 POST/s for 30 s, 100 effects; end-to-end latency (ms), sorted"
	seq 1 100
} >"$run/e2e-latency-empty.dat"
{
	echo "# outbox-bench-e2e: 1000 POST/s for 30 s, 50 effects; end-to-end latency (ms), sorted"
	seq 2 2 100
} >"$run/e2e-latency-history.dat"
for d in relay worker; do
	printf '# %s drain\n0.125 4000\n0.375 8000\n0.625 8000\n0.875 2000\n'  "$d" >"$run/drain-$d-empty.dat"
done
printf '# relay drain, history\n0.125 2000\n0.375 6000\n' >"$run/drain-relay-history.dat"
cat >"$run/result.json" <<'JSON'
{
  "cores": 2,
  "raw": { "txn_per_s_64conn": 4000, "publish_per_s_1000_inflight": 8500, "publish_props_per_s_1000_inflight": 7142, "consume_per_s_prefetch_500": 17092 },
  "app": { "req_per_s_64conn": 7000, "ratio": 1.75 },
  "relay": { "msg_per_s": 7185.2, "ratio": 1.01, "ratio_vs_bare": null },
  "worker": { "msg_per_s": 11055, "ratio": 0.65 },
  "history": null
}
JSON
draw "$run"
check "all three drawn: exit 0 (exit $RC)" test "$RC" = 0
cdf=$run/e2e-latency-cdf.svg drains=$run/drain-throughput.svg ratios=$run/ratios.svg
for f in "$cdf" "$drains" "$ratios"; do
	check "${f##*/}: written, well-formed XML" wellformed "$f"
	check "${f##*/}: named in the output" said "$f"
done
check "latency: the title, with the rate" \
	has "$cdf" "End-to-end latency at 1,000 POST/s, open loop: the customer's row to the worker's effect"
check "latency: a log latency axis" has "$cdf" "latency (ms, log scale)"
check "latency: the empty tables' curve, with its count" has "$cdf" "empty tables (100 messages)"
check "latency: the history curve, with its count" has "$cdf" "with history (50 messages)"
check "latency: p50 and p99 of the empty tables marked (51, 99 ms)" \
	has "$cdf" "p50 51.0 ms" "p99 99.0 ms"
check "latency: p50 and p99 with history marked (52, 100 ms)" \
	has "$cdf" "p50 52.0 ms" "p99 100.0 ms"
check "drains: the title" has "$drains" "Throughput during the drains (250 ms steps, moving average over 1.25 s)"
for s in "relay drain" "worker drain" "relay drain, with history" \
	"raw publish limit (7142 msg/s)" "raw consume limit (17092 msg/s)"; do
	check "drains: the series '$s'" has "$drains" "$s"
done
check "drains: no worker history series (no such file)" lacks "$drains" "worker drain, with history"
check "ratios: the title, with the cores" \
	has "$ratios" "The system over the raw limits of the same servers, same run (2 cores)"
for s in "app ingest" "over raw txn" "1.75" "over publish + props" "1.01" "over raw consume" "0.65"; do
	check "ratios: '$s'" has "$ratios" "$s"
done
check "ratios: no bar for a null ratio (relay over bare publish)" lacks "$ratios" "over bare publish"

# ---- 20,000 latencies: the curve is thinned, the file stays small -------
big=$tmp/big
mkdir -p "$big"
cp "$run"/drain-*-empty.dat "$run/result.json" "$big/"
{
	echo "# outbox-bench-e2e: 1000 POST/s for 20 s, 20000 effects; end-to-end latency (ms), sorted"
	awk 'BEGIN { for (i = 1; i <= 20000; i++) printf "%.3f\n", 2 + i * i / 4e6 }'
} >"$big/e2e-latency-empty.dat"
draw "$big"
check "20,000 latencies: drawn (exit $RC)" test "$RC" = 0
check "20,000 latencies: the SVG under 64 KiB ($(stat -c %s "$big/e2e-latency-cdf.svg" 2>/dev/null) bytes)" \
	test "$(stat -c %s "$big/e2e-latency-cdf.svg" 2>/dev/null || echo 999999)" -lt 65536
check "20,000 latencies: p50 and p99 as bench_e2e.c takes them (the 10,001st: 27.0 ms; the 19,800th: 100.0 ms)" \
	has "$big/e2e-latency-cdf.svg" "p50 27.0 ms" "p99 100.0 ms"

# ---- inputs missing ------------------------------------------------------
part=$tmp/part
mkdir -p "$part"
cp "$run"/drain-*-empty.dat "$part/"
draw "$part"
check "inputs missing: exit 1 (exit $RC)" test "$RC" = 1
check "inputs missing: the latency chart says which file" \
	said "bench-charts: warning: e2e-latency-cdf.svg not drawn: no $part/e2e-latency-empty.dat"
check "inputs missing: the ratios say which file" \
	said "bench-charts: warning: ratios.svg not drawn: no $part/result.json"
check "inputs missing: no latency or ratios SVG left" \
	test ! -e "$part/e2e-latency-cdf.svg" -a ! -e "$part/ratios.svg"
check "inputs missing: the drains drawn still" wellformed "$part/drain-throughput.svg"
check "inputs missing: the drains' series there" \
	has "$part/drain-throughput.svg" "relay drain" "worker drain"
check "inputs missing: no raw limits without result.json" \
	lacks "$part/drain-throughput.svg" "raw publish limit"

draw "$tmp/nowhere"
check "no folder: exit 2 (exit $RC)" test "$RC" = 2
check "no folder: one line that says so" \
	test "$OUT" = "bench-charts: warning: no folder $tmp/nowhere: run make bench first"

RC=0
OUT=$(GNUPLOT=/nonexistent/gnuplot bash "$charts" "$run" 2>&1) || RC=$?
check "no gnuplot: exit 2 (exit $RC)" test "$RC" = 2
check "no gnuplot: one line that says how to install it ($OUT)" \
	test "$OUT" = "bench-charts: warning: /nonexistent/gnuplot not found: no charts drawn (scripts/deps.sh tools installs gnuplot-nox and jq)"

# The raw consumer, the worker's reference in the bench, drains with the
# worker's window and acks: its fallbacks are the worker's defaults
# (worker/config.c), not numbers of their own that a change of those
# defaults leaves behind (it drained with 500 and 200 after they became
# 2,000 and 500).
wdef() { sed -nE "s/.*CFG_ROW_INT\(\"$1\", T, [a-z_]+, \"([0-9]+)\".*/\1/p" "$root/worker/config.c"; }
bdef() { sed -nE "s/^$1=\\$\{$2:-([0-9]+)\}$/\1/p" "$root/tests/load/bench.sh"; }
P=$(wdef WORKER_PREFETCH) B=$(wdef WORKER_BATCH_MAX)
check "bench: the raw consumer's prefetch is WORKER_PREFETCH's default ($(bdef raw_prefetch WORKER_PREFETCH) vs $P)" \
	test -n "$P" -a "$(bdef raw_prefetch WORKER_PREFETCH)" = "$P"
check "bench: the raw consumer acks every WORKER_BATCH_MAX's default ($(bdef raw_ack_every WORKER_BATCH_MAX) vs $B)" \
	test -n "$B" -a "$(bdef raw_ack_every WORKER_BATCH_MAX)" = "$B"
check "bench: both raw drains use that window" \
	test "$(grep -c '"$bin/outbox-bench-consume" [a-z]* "$rows" "$raw_prefetch" "$raw_ack_every"' "$root/tests/load/bench.sh")" = 2

# The worker's history figure is a ratio of two drains: both must follow
# the same steps (the raw consumer ran between the relay's drain and the
# worker's in the empty-table section only, and the broker's speed for
# the drain after it is not the same, README "History and memory").
steps() { # <tag>: the measure_* steps (and relay_rounds) of a section, in order
	sed -nE "s/^[[:space:]]*(measure_[a-z0-9_]+|relay_rounds) $1( .*)?$/\1/p" "$root/tests/load/bench.sh" | tr '\n' ' '
}
E=$(steps empty) H=$(steps history)
check "bench: history and empty-table sections take the same steps ($H/ $E)" \
	test -n "$E" -a "$E" = "$H"
check "bench: the raw consumer runs between the relay's drain and the worker's ($E)" \
	test -z "${E##*relay_rounds measure_raw_consume measure_worker *}"

finish
