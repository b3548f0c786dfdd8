#!/usr/bin/env bash
# tests/load/bench.sh - `make bench`: the system against the raw limits of the
# same servers on the same machine, measured in one run, as ratios.
#
#   raw limits (small clients of the project, no application work):
#     txn      the app's two-row transaction on 64 connections
#     publish  persistent messages with confirms, 1,000 in flight
#     consume  draining with the worker's prefetch and multiple acks
#   the system:
#     app      POST /customers, 64 connections, closed loop (wrk)
#     relay    draining a backlog of 100,000 outbox rows
#     worker   draining 100,000 queued messages
#     e2e      1,000 POST/s open loop for 30 s: 201 -> committed effect;
#              then one request at a time (10/s, each done before the
#              next: the latency of a lone request, polling included)
#     memory   resident size of each daemon idle and while draining
#     pruning  BENCH_PRUNE_KEYS (200,000) expired idempotency keys deleted
#              by the app's pruner while wrk loads it: keys/s
#
# Prints a table and writes $BUILD_ROOT/bench/result.json.  Loopback only;
# every load is bounded in count and time.  Not part of `make test`: it
# asserts nothing, it measures.  Knobs: BENCH_ROWS (100000),
# BENCH_SECONDS (15, the closed-loop runs), BENCH_E2E_RATE (1000),
# BENCH_E2E_SECONDS (30), BENCH_SINGLE_SECONDS (10, at 10 requests/s).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# The test servers (scripts/ports.env), never the dev ones: this empties
# tables and queues.
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
use_test_servers
# shellcheck source=scripts/env.sh
. scripts/env.sh
build=${BUILD_ROOT:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
bin="$build/release/bin"
out="$build/bench"
rows=${BENCH_ROWS:-100000}
secs=${BENCH_SECONDS:-15}
e2e_rate=${BENCH_E2E_RATE:-1000}
e2e_secs=${BENCH_E2E_SECONDS:-30}
single_secs=${BENCH_SINGLE_SECONDS:-10}
prune_n=${BENCH_PRUNE_KEYS:-200000}
mkdir -p "$out"
export MYSQL_PWD="$DB_PASS"

LIB_NAME=bench LIB_SAY_STDERR=1
sql() { mariadb -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" -N -B "$DB_NAME" -e "$1"; }
# json_num <file> <key>: a number from a one-line JSON object.
json_num() { sed -nE "s/.*\"$2\": *([0-9.eE+-]+).*/\1/p" "$1" | head -n 1; }
# rate_of <file>: the "= <rate> msg/s" of the raw clients' lines.
rate_of() { sed -nE 's/.*= *([0-9.]+) msg\/s.*/\1/p' "$1" | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "null" }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
free_port() {
	local p
	for p in $(seq 39000 39999); do
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}
# wait_for_every <interval> <seconds> <command...>: polls until it succeeds.
wait_for_every() {
	local every=$1 end=$((SECONDS + $2))
	shift 2
	until "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep "$every"
	done
}
wait_for() { wait_for_every 0.1 "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

reset() {
	sql "TRUNCATE TABLE welcome_emails; TRUNCATE TABLE processed_messages;
	     TRUNCATE TABLE outbox; TRUNCATE TABLE customers;
	     TRUNCATE TABLE idempotency_keys"
	bash scripts/infra.sh mq-ctl -q purge_queue outbox >/dev/null 2>&1 || true
	bash scripts/infra.sh mq-ctl -q purge_queue outbox.dlq >/dev/null 2>&1 || true
}

declare -A pid=()
start() { # start <daemon> [VAR=value...]
	local d=$1
	shift
	env "$@" "$bin/outbox-$d" >>"$out/$d.log" 2>&1 &
	pid[$d]=$!
}
stop() {
	local d=$1
	[ -n "${pid[$d]:-}" ] || return 0
	kill -TERM "${pid[$d]}" 2>/dev/null || true
	wait "${pid[$d]}" 2>/dev/null || true
	unset "pid[$d]"
}
cleanup() { for d in "${!pid[@]}"; do stop "$d"; done; }
trap cleanup EXIT

rm -f "$out"/*.log "$out"/*.out
quiet=(APP_ACCESS_LOG=0 APP_METRICS_PORT=0 LOG_LEVEL=warn)

# ---- raw: the two-row transaction ------------------------------------
reset
say "raw two-row transactions, 64 connections, ${secs} s"
"$bin/outbox-bench-txn" 64 "$secs" | tee "$out/txn.out" >&2
raw_txn=$(json_num "$out/txn.out" tx_per_s)

# ---- app ingest --------------------------------------------------------
reset
port=$(free_port)
start app "${quiet[@]}" APP_PORT="$port" APP_BIND=127.0.0.1
ready() { curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; }
wait_for 30 ready
app_idle=$(rss_kib "${pid[app]}")
say "app ingest: wrk, 64 connections, ${secs} s"
wrk -t2 -c64 -d"${secs}s" --latency -s tests/load/bench_post.lua \
	"http://127.0.0.1:$port/" | tee "$out/wrk.out" >&2
app_rps=$(sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' "$out/wrk.out")
# wrk prints latencies as 1.23ms, 456.00us or 1.02s.
to_ms() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.2f", v }'; }
app_p50=$(awk '$1 == "50%" { print $2 }' "$out/wrk.out" | to_ms)
app_p99=$(awk '$1 == "99%" { print $2 }' "$out/wrk.out" | to_ms)
app_non2xx=$(sed -nE 's/.*Non-2xx or 3xx responses: *([0-9]+).*/\1/p' "$out/wrk.out")
app_non2xx=${app_non2xx:-0}
app_load=$(hwm_kib "${pid[app]}")
stop app

# ---- expired idempotency keys, pruned while the app takes load ---------
reset
sql "INSERT INTO idempotency_keys (idem_key, request_email, request_name,
     status, customer_id, response_body, created_at)
     SELECT CONCAT('expired-', seq), 'old@example.com', 'Old', 201,
     '00000000-0000-4000-8000-000000000000', '{}',
     UTC_TIMESTAMP(6) - INTERVAL 49 HOUR FROM seq_1_to_$prune_n"
port=$(free_port)
t_prune=$(now)
start app "${quiet[@]}" APP_PORT="$port" APP_BIND=127.0.0.1
wait_for 30 ready
say "pruning: $prune_n expired idempotency keys under wrk, 64 connections"
wrk -t2 -c64 -d"${secs}s" -s tests/load/bench_post.lua \
	"http://127.0.0.1:$port/" >"$out/wrk-prune.out" 2>&1 &
wrk_pid=$!
pruned() { [ "$(sql "SELECT COUNT(*) FROM idempotency_keys WHERE idem_key LIKE 'expired-%'")" = 0 ]; }
if wait_for 300 pruned; then
	prune_s=$(elapsed "$t_prune")
	prune_rate=$(awk -v n="$prune_n" -v s="$prune_s" 'BEGIN { printf "%.0f", n / s }')
else
	prune_s=null prune_rate=0
fi
wait "$wrk_pid" || true
prune_rps=$(sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' "$out/wrk-prune.out")
say "pruning: $prune_n keys in $prune_s s = $prune_rate keys/s (app meanwhile ${prune_rps:-0} req/s)"
stop app

# ---- raw: confirmed publishing ----------------------------------------
say "raw publish: $rows persistent messages, confirms, 1000 in flight"
"$bin/outbox-bench-publish" "$rows" 1000 | tee "$out/publish.out" >&2
raw_pub=$(rate_of "$out/publish.out")
# The same, carrying the properties SPEC section 7 requires of every
# message (message_id, type, timestamp, headers): the broker's own cost of
# them is part of the limit the relay can reach.
say "raw publish with the messages' properties"
"$bin/outbox-bench-publish" --props "$rows" 1000 | tee "$out/publish-props.out" >&2
raw_pub_props=$(rate_of "$out/publish-props.out")

# ---- relay drain -------------------------------------------------------
reset
say "relay: seeding $rows outbox rows"
sql "INSERT INTO outbox (message_id, event_name, payload, created_at)
     SELECT UUID(), 'CustomerCreated',
            JSON_OBJECT('id', UUID(), 'email', CONCAT('bench', seq, '@example.com'),
                        'name', 'Bench', 'CreatedAt', '2026-01-01T00:00:00.000000Z',
                        'UpdatedAt', '2026-01-01T00:00:00.000000Z'),
            UTC_TIMESTAMP(6)
     FROM seq_1_to_${rows}"
drained() { [ "$(sql 'SELECT COUNT(*) FROM outbox WHERE published_at IS NULL')" = 0 ]; }
say "relay: draining"
# Timed by the database clock (start, last published_at) and polled
# slowly: a client process every 0.1 s would steal CPU from the relay.
t0=$(sql "SELECT UTC_TIMESTAMP(6)")
start relay LOG_LEVEL=warn RELAY_LOG_IDS=0 RELAY_RETENTION_HOURS=0
wait_for_every 0.5 600 drained
relay_s=$(sql "SELECT TIMESTAMPDIFF(MICROSECOND, '$t0', MAX(published_at)) / 1e6 FROM outbox")
relay_load=$(hwm_kib "${pid[relay]}")
stop relay
relay_rate=$(awk -v n="$rows" -v s="$relay_s" 'BEGIN { printf "%.1f", n / s }')
say "relay: $rows rows in $relay_s s = $relay_rate msg/s"

# ---- raw: consuming ----------------------------------------------------
say "raw consume: $rows messages, prefetch 500, multiple acks"
"$bin/outbox-bench-consume" raw "$rows" 500 200 | tee "$out/consume.out" >&2
raw_con=$(rate_of "$out/consume.out")

# ---- worker drain (the relay's messages are queued) -------------------
say "worker: draining the $rows queued messages"
t=$(now)
start worker LOG_LEVEL=warn
"$bin/outbox-bench-consume" wait "$rows" 600 | tee "$out/worker.out" >&2
worker_s=$(elapsed "$t")
worker_rate=$(rate_of "$out/worker.out")
worker_load=$(hwm_kib "${pid[worker]}")
stop worker

# ---- end to end --------------------------------------------------------
reset
port=$(free_port)
start app "${quiet[@]}" APP_PORT="$port" APP_BIND=127.0.0.1
start relay LOG_LEVEL=warn
start worker LOG_LEVEL=warn
wait_for 30 ready
relay_idle=$(rss_kib "${pid[relay]}")
worker_idle=$(rss_kib "${pid[worker]}")
say "end to end: $e2e_rate POST/s for $e2e_secs s, open loop"
"$bin/outbox-bench-e2e" "$port" "$e2e_rate" "$e2e_secs" | tee "$out/e2e.out" >&2
say "end to end, one request at a time: 10 POST/s for $single_secs s"
"$bin/outbox-bench-e2e" "$port" 10 "$single_secs" | tee "$out/e2e-single.out" >&2
cleanup

e2e_p50=$(json_num "$out/e2e.out" e2e_p50_ms)
e2e_p99=$(json_num "$out/e2e.out" e2e_p99_ms)
e2e_max=$(json_num "$out/e2e.out" e2e_max_ms)
e2e_ok=$(json_num "$out/e2e.out" created)
e2e_fx=$(json_num "$out/e2e.out" effects)
one_p50=$(json_num "$out/e2e-single.out" e2e_p50_ms)
one_p99=$(json_num "$out/e2e-single.out" e2e_p99_ms)
one_max=$(json_num "$out/e2e-single.out" e2e_max_ms)

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
cpus=$(nproc)
{
	printf '\n%-44s %14s %14s %7s\n' "measure" "system" "raw limit" "ratio"
	printf '%-44s %14s %14s %7s\n' "app POST /customers, 64 conn (req/s)" "$app_rps" "$raw_txn" "$(ratio "$app_rps" "$raw_txn")"
	printf '%-44s %14s\n' "  app p50 / p99 latency (ms)" "$app_p50 / $app_p99"
	printf '%-44s %14s\n' "  app non-2xx answers" "$app_non2xx"
	printf '%-44s %14s %14s %7s\n' "relay drain of $rows rows (msg/s)" "$relay_rate" "$raw_pub_props" "$(ratio "$relay_rate" "$raw_pub_props")"
	printf '%-44s %14s %14s %7s\n' "  vs raw publish without properties" "$relay_rate" "$raw_pub" "$(ratio "$relay_rate" "$raw_pub")"
	printf '%-44s %14s %14s %7s\n' "worker drain of $rows msgs (msg/s)" "$worker_rate" "$raw_con" "$(ratio "$worker_rate" "$raw_con")"
	printf '%-44s %14s\n' "e2e at $e2e_rate/s: p50 / p99 / max (ms)" "$e2e_p50 / $e2e_p99 / $e2e_max"
	printf '%-44s %14s\n' "  e2e created / effects" "$e2e_ok / $e2e_fx"
	printf '%-44s %14s\n' "e2e one at a time: p50 / p99 / max (ms)" "$one_p50 / $one_p99 / $one_max"
	printf '%-44s %14s\n' "expired keys pruned under load (keys/s)" "$prune_rate"
	printf '%-44s %14s\n' "  app meanwhile (req/s)" "${prune_rps:-0}"
	printf '%-44s %14s\n' "RSS idle app / relay / worker (MiB)" "$(mib "$app_idle") / $(mib "$relay_idle") / $(mib "$worker_idle")"
	printf '%-44s %14s\n' "RSS peak under load app / relay / worker" "$(mib "$app_load") / $(mib "$relay_load") / $(mib "$worker_load")"
	printf '(%s cores; servers and load on this machine; raw limits measured in this run)\n' "$cpus"
} | tee "$out/table.txt"

cat >"$out/result.json" <<EOF
{
  "cores": $cpus,
  "raw": { "txn_per_s_64conn": ${raw_txn:-0}, "publish_per_s_1000_inflight": ${raw_pub:-0}, "publish_props_per_s_1000_inflight": ${raw_pub_props:-0}, "consume_per_s_prefetch_500": ${raw_con:-0} },
  "app": { "req_per_s_64conn": ${app_rps:-0}, "p50_ms": ${app_p50:-0}, "p99_ms": ${app_p99:-0}, "non_2xx": ${app_non2xx:-0}, "ratio": $(ratio "$app_rps" "$raw_txn") },
  "relay": { "rows": $rows, "seconds": $relay_s, "msg_per_s": $relay_rate, "ratio": $(ratio "$relay_rate" "$raw_pub_props"), "ratio_vs_bare": $(ratio "$relay_rate" "$raw_pub") },
  "worker": { "messages": $rows, "seconds": $worker_s, "msg_per_s": ${worker_rate:-0}, "ratio": $(ratio "${worker_rate:-0}" "$raw_con") },
  "e2e": { "rate": $e2e_rate, "seconds": $e2e_secs, "created": ${e2e_ok:-0}, "effects": ${e2e_fx:-0}, "p50_ms": ${e2e_p50:-0}, "p99_ms": ${e2e_p99:-0}, "max_ms": ${e2e_max:-0} },
  "e2e_single": { "rate": 10, "seconds": $single_secs, "p50_ms": ${one_p50:-0}, "p99_ms": ${one_p99:-0}, "max_ms": ${one_max:-0} },
  "pruning": { "keys": $prune_n, "seconds": $prune_s, "keys_per_s": $prune_rate, "app_req_per_s": ${prune_rps:-0} },
  "rss_kib": { "app_idle": $app_idle, "relay_idle": $relay_idle, "worker_idle": $worker_idle, "app_peak": $app_load, "relay_peak": $relay_load, "worker_peak": $worker_load }
}
EOF
say "result: $out/result.json"
