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
#     relay    draining a backlog of 100,000 outbox rows, against the
#              raw publisher with the messages' properties run just
#              before it (after the seeding), in this section and the
#              history's: the broker of that minute; BENCH_DRAIN_ROUNDS
#              (3) rounds, the round of the median rate reported
#     worker   draining 100,000 queued messages (the broker's CPU per
#              message meanwhile printed too)
#     e2e      1,000 POST/s open loop for 30 s: 201 -> committed effect;
#              then one request at a time (10/s, each done before the
#              next: the latency of a lone request, polling included)
#     memory   resident size of each daemon idle and while draining
#     pruning  BENCH_PRUNE_KEYS (200,000) expired idempotency keys deleted
#              by the app's pruner while wrk loads it: keys/s
#   with history (BENCH_HISTORY_ROWS, 10,000,000; 0 skips it):
#     the same app, relay, raw consume, worker and e2e measurements
#              again, in the same order, with that
#              many rows of history already in customers, outbox
#              (published), processed_messages and welcome_emails, next to
#              the empty-table figures of this run, as ratios; how long the
#              history took to load, and the tables' sizes
#     beside   the app's ingest and the e2e measurement once more on
#              empty tables, the history set aside on the same server
#              just after: the ratio of the history's own cost, without
#              the server's state at the bench's start (a mostly free
#              buffer pool); the ingest with history and beside it runs
#              BENCH_HISTORY_APP_ROUNDS (3) rounds, in turn, each side's
#              median req/s, p50 and p99 reported, every round shown; the e2e with
#              history and beside it run BENCH_HISTORY_E2E_ROUNDS (5)
#              rounds, in turn, each side's median p50, p99 and max
#              reported, every round's p50/p99 shown, and each round's
#              p50 with history minus the one beside it (their median);
#              each e2e run with history starts with as many outbox
#              rows and processed ids past the relay's and the worker's
#              retention as it sends requests (a deployment's sweeps at
#              that rate), and the rows deleted per request in each
#              round are shown, with the app's own answer (HTTP p50) and
#              the server's row lock waits in each round
#     keys     the key forms of processed_messages at that history: rows/s
#              of the worker's inserts (autocommit batches of 500) with
#              time-ordered ids as VARCHAR(36) (what the schema has), as
#              VARBINARY(16), and random (version 4) ids as VARCHAR(36);
#              bytes per row of each
#   both relay modes side by side (README, "Binlog mode"), on a MariaDB of
#   their own with the binary log on (OUTBOX_BENCH_BINLOG_DB_PORT, data
#   in $OUTBOX_VAR/bench-binlog; started here, stopped at the end), the
#   test set's broker; each mode in turn, RELAY_MODE=poll then binlog
#   (single, serial and e2e: BENCH_BINLOG_E2E_ROUNDS (3) rounds of the
#   three, the modes in turn in each, poll first in odd rounds; each
#   figure the median of its rounds, every round's p50 shown):
#     single   one request at a time, POST to handled: p50, p99
#     serial   one request at a time, back to back: each POST sent once
#              the effect of the one before it is in the database (the
#              generator looks for it every 0.5 ms): p50, p99, requests/s
#     e2e      BENCH_E2E_RATE POST/s open loop for BENCH_E2E_SECONDS
#     drain    BENCH_ROWS outbox rows (transactions of 100) inserted while
#              the relay is stopped, then the relay started: msg/s from
#              its first confirmed batch until its
#              outbox_relay_messages_published_total reaches them (its
#              /metrics, sampled every 20 ms), over the raw confirmed
#              publisher with the messages' properties: the mean of its
#              runs just before (after the seeding) and just after, each
#              run and the drain started on a quiet machine;
#              BENCH_BINLOG_DRAIN_ROUNDS (5) rounds of seeding, raw
#              publish, drain and raw publish per mode, the round of the
#              median ratio reported, every round's ratio shown
#     database the growth of its global status counters during the drain
#              and the two e2e loads, per message: rows read, inserted,
#              updated, deleted; InnoDB and redo log fsyncs; binary log
#              group commits (one fsync each) and bytes
#   BENCH_ONLY=binlog runs this part alone (binlog.json and
#   table-binlog.txt, the full run's result.json left as it was).
#   a 3-node RabbitMQ cluster with quorum queues (README, "Benchmark"),
#   only with BENCH_ONLY=cluster (`make bench CLUSTER=3`), alone: the
#   test set's cluster (started here unless it runs, then stopped) and
#   MariaDB; the queues outbox and outbox.dlq deleted and declared again
#   (quorum) through the first node of RABBITMQ_HOSTS, which then leads
#   outbox; raw clients and daemons all given the same RABBITMQ_HOSTS,
#   so all connect to that first node (which one led the queue and where
#   each connected is printed):
#     raw      BENCH_ROWS messages with the relay's properties published
#              to outbox, confirms, 1,000 in flight; then drained from it
#              with the worker's prefetch (500) and multiple acks (200);
#              once before the daemons' drains, once after: the raw
#              figures are the means of the two
#     relay    draining BENCH_ROWS outbox rows, over the raw publisher
#              (target 0.8)
#     worker   draining the relay's BENCH_ROWS messages, over the raw
#              consumer (target 0.5)
#     e2e      BENCH_E2E_RATE POST/s open loop for BENCH_E2E_SECONDS
#   and the nodes' resource alarms (publishers blocked) meanwhile;
#   cluster.json and table-cluster.txt; a full run's result.json, when
#   there is one, gets (or has replaced) its "cluster" key, every other
#   key left as it was (jq); files of this part start with cluster or
#   end in -cluster.
#
# Prints a table and writes, in $BUILD_ROOT/bench: result.json; the data
# of the charts (e2e-latency-<tag>.dat: every end-to-end latency at
# BENCH_E2E_RATE, sorted; drain-relay-<tag>.dat, drain-worker-<tag>.dat:
# msg/s in 250 ms steps during the drains; <tag> empty or history) and
# the charts tests/load/bench_charts.sh draws from them and result.json
# (e2e-latency-cdf.svg, drain-throughput.svg, ratios.svg; `make
# bench-charts` draws them again); a chart that cannot be drawn is one
# warning (charts.log says more), never a failed bench.  Loopback only;
# every load is bounded in count and time.  Not part of `make test`: it
# asserts nothing, it measures.  Knobs: BENCH_ROWS (100000),
# BENCH_SECONDS (15, the closed-loop runs), BENCH_E2E_RATE (1000),
# BENCH_E2E_SECONDS (30), BENCH_SINGLE_SECONDS (10, at 10 requests/s),
# BENCH_HISTORY_ROWS (10000000), BENCH_KEY_ROWS (100000, the key forms'
# inserts), BENCH_ONLY (empty: everything but the cluster; binlog: the
# relay modes part alone; cluster: the cluster part alone), BENCH_APP_PORT, BENCH_RELAY_METRICS_PORT and
# BENCH_WORKER_METRICS_PORT (the daemons' ports, free ones by default).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# The test servers (scripts/ports.env), never the dev ones: this empties
# tables and queues.
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
use_test_servers
only=${BENCH_ONLY:-}
case $only in '' | binlog | cluster) ;; *) echo "bench: BENCH_ONLY=$only: empty, binlog or cluster" >&2; exit 2 ;; esac
if [ "$only" = cluster ]; then
	# The test set's cluster, every node in RABBITMQ_HOSTS, quorum
	# queues (scripts/env.sh), whatever the caller's shell says.
	export OUTBOX_MQ_NODES=3
	unset RABBITMQ_QUEUE_TYPE RABBITMQ_HOSTS
fi
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
drain_rounds=${BENCH_DRAIN_ROUNDS:-3}
bl_drain_rounds=${BENCH_BINLOG_DRAIN_ROUNDS:-5}
hist_e2e_rounds=${BENCH_HISTORY_E2E_ROUNDS:-5}
hist_app_rounds=${BENCH_HISTORY_APP_ROUNDS:-3}
bl_e2e_rounds=${BENCH_BINLOG_E2E_ROUNDS:-3}
prune_n=${BENCH_PRUNE_KEYS:-200000}
hist_n=${BENCH_HISTORY_ROWS:-10000000}
key_n=${BENCH_KEY_ROWS:-100000}
# The raw consumer gets the worker's window and acks: its WORKER_PREFETCH
# and WORKER_BATCH_MAX (the defaults unless given).
raw_prefetch=${WORKER_PREFETCH:-2000}
raw_ack_every=${WORKER_BATCH_MAX:-500}
# Set for the relay and the worker of an end-to-end run (the history's).
e2e_env=()
mkdir -p "$out"
export MYSQL_PWD="$DB_PASS"
# shellcheck source=scripts/roles.env
. scripts/roles.env

LIB_NAME=bench LIB_SAY_STDERR=1
[[ $drain_rounds =~ ^[1-9][0-9]?$ ]] ||
	die "BENCH_DRAIN_ROUNDS must be a whole number from 1 to 99, not '$drain_rounds'"
[[ $bl_drain_rounds =~ ^[1-9][0-9]?$ ]] ||
	die "BENCH_BINLOG_DRAIN_ROUNDS must be a whole number from 1 to 99, not '$bl_drain_rounds'"
[[ $hist_app_rounds =~ ^[1-9][0-9]?$ ]] ||
	die "BENCH_HISTORY_APP_ROUNDS must be a whole number from 1 to 99, not '$hist_app_rounds'"
[[ $hist_e2e_rounds =~ ^[1-9][0-9]?$ ]] ||
	die "BENCH_HISTORY_E2E_ROUNDS must be a whole number from 1 to 99, not '$hist_e2e_rounds'"
[[ $bl_e2e_rounds =~ ^[1-9][0-9]?$ ]] ||
	die "BENCH_BINLOG_E2E_ROUNDS must be a whole number from 1 to 99, not '$bl_e2e_rounds'"
# shellcheck disable=SC2153   # DB_NAME: from .local.env (scripts/env.sh)
sql() { mariadb -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" -N -B "$DB_NAME" -e "$1"; }
# json_num <file> <key>: a number from a one-line JSON object.
json_num() { sed -nE "s/.*\"$2\": *([0-9.eE+-]+).*/\1/p" "$1" | head -n 1; }
# rate_of <file>: the "= <rate> msg/s" of the raw clients' lines.
rate_of() { sed -nE 's/.*= *([0-9.]+) msg\/s.*/\1/p' "$1" | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "null" }'; }
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (a + b) / 2 }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
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
	purge_queue outbox
	purge_queue outbox.dlq
}
# purge_queue <name>: its messages dropped (none there, or no broker: no
# matter).
purge_queue() { bash scripts/infra.sh mq-ctl -q purge_queue "$1" >/dev/null 2>&1 || true; }

declare -A pid=()
logs=$out/  # the daemons' logs: <logs><daemon>.log
# The daemons' ports: given, or free ones (never the defaults 9465 and
# 9466, which another bench or a dev relay may hold).
app_port=${BENCH_APP_PORT:-$(free_port)}
relay_mport=${BENCH_RELAY_METRICS_PORT:-$(free_port "$app_port")}
worker_mport=${BENCH_WORKER_METRICS_PORT:-$(free_port "$app_port" "$relay_mport")}
start() { # start <daemon> [VAR=value...]
	local d=$1
	shift
	case $d in
	relay) set -- RELAY_METRICS_PORT="$relay_mport" RELAY_METRICS_BIND=127.0.0.1 "$@" ;;
	worker) set -- WORKER_METRICS_PORT="$worker_mport" WORKER_METRICS_BIND=127.0.0.1 "$@" ;;
	esac
	env "$@" "$bin/outbox-$d" >>"$logs$d.log" 2>&1 &
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
# The MariaDB with the binary log of the relay modes' part (below).
bl_var=$OUTBOX_VAR/bench-binlog
bl_port=$OUTBOX_BENCH_BINLOG_DB_PORT
bl_up=0
bl_infra() {
	OUTBOX_VAR=$bl_var OUTBOX_DB_PORT=$bl_port OUTBOX_DB_BINLOG=1 \
		bash scripts/infra.sh "$@" >>"$out/binlog-server.log" 2>&1
}
# bl_db_ticks: the binlog server's CPU time so far (pid_ticks, below).
bl_db_ticks() { pid_ticks "$bl_var/mariadb/run/mariadbd.pid" mariadbd; }
bl_down() {
	[ "$bl_up" = 1 ] || return 0
	bl_infra db-stop || warn "the binlog server did not stop ($out/binlog-server.log)"
	bl_up=0
}
# The cluster of BENCH_ONLY=cluster (below), when the bench started it.
cl_up=0
cl_infra() { bash scripts/infra.sh "$@" >>"$out/cluster-server.log" 2>&1; }
cl_down() {
	[ "$cl_up" = 1 ] || return 0
	cl_infra mq-stop || warn "the cluster did not stop ($out/cluster-server.log)"
	cl_up=0
}
trap 'cleanup; bl_down; cl_down' EXIT

if [ "$only" = binlog ]; then
	rm -f "$out"/binlog*
elif [ "$only" = cluster ]; then
	rm -f "$out"/cluster* "$out"/*-cluster.*
	logs=$out/cluster-
else
	rm -f "$out"/*.log "$out"/*.out "$out"/*.dat "$out"/*.svg "$out"/binlog*
fi
quiet=(APP_ACCESS_LOG=0 APP_METRICS_PORT=0 LOG_LEVEL=warn)

# The raw clients' scratch queues (bench.publish.<pid>, bench.consume.<pid>)
# get the policy of outbox and outbox.dlq (outbox-lazy, from
# scripts/rabbitmq-definitions.json; README, "The broker's settings"):
# each raw figure is taken on a queue that keeps its backlog as outbox
# does.  The cluster's quorum queues ignore it.
bench_queue_policy() {
	local def
	def=$(bash scripts/infra.sh mq-ctl -q list_policies --no-table-headers 2>/dev/null |
		awk -F'\t' '$2 == "outbox-lazy" { print $5 }')
	[ -n "$def" ] || die "the broker has no policy outbox-lazy (scripts/rabbitmq-definitions.json)"
	bash scripts/infra.sh mq-ctl -q set_policy --apply-to queues bench-scratch '^bench\.' "$def" >/dev/null ||
		die "the bench's scratch queues: cannot give them the policy of outbox"
}
[ "$only" = cluster ] || bench_queue_policy

# v7 <salt> <ms>: SQL for a version-7 id (common/uid.c's layout) at the
# time <ms> (an expression of seq, Unix milliseconds), its counter and
# random bits from seq and the salt: the same salt and seq give the same
# id in every table (the outbox row's id is the processed row's).
v7() {
	local h="LOWER(CONCAT(LPAD(HEX($2), 12, '0'), '7', LPAD(HEX(seq MOD 4096), 3, '0'), HEX(8 + seq DIV 4096 MOD 4), SUBSTR(MD5(CONCAT('$1', '-', seq)), 1, 15)))"
	echo "INSERT(INSERT(INSERT(INSERT($h, 21, 0, '-'), 17, 0, '-'), 13, 0, '-'), 9, 0, '-')"
}
# id_floor: a version-7 id below every id made from now on (a second of
# margin): the rows made after this point, found by primary key.
id_floor() {
	local ms=$(($(date +%s%3N) - 1000))
	printf '%08x-%04x-0000-0000-000000000000\n' $((ms >> 16)) $((ms & 0xffff))
}
declare -A R=()  # R[measure.tag]: tag "empty" or "history"
g() { echo "${R[$1]:-0}"; }

# settle: waits (at most 300 s) until the pages the last step dirtied are
# written (dirty pages under 1 % of the buffer pool), the page cleaner at
# full speed meanwhile: every measurement starts from the same clean
# state, not with the flush debt of the one before (a minute of bulk load,
# or wrk's burst into the random email index, leaves hundreds of MiB).
dirty_ok() {
	local d t
	read -r d t < <(sql "SELECT
	    (SELECT variable_value FROM information_schema.global_status
	     WHERE variable_name = 'INNODB_BUFFER_POOL_PAGES_DIRTY'),
	    (SELECT variable_value FROM information_schema.global_status
	     WHERE variable_name = 'INNODB_BUFFER_POOL_PAGES_TOTAL')")
	[ "$d" -le $((t / 100)) ]
}
settle() {
	sql "SET GLOBAL innodb_max_dirty_pages_pct_lwm = 0.001;
	     SET GLOBAL innodb_max_dirty_pages_pct = 0"
	wait_for_every 0.5 300 dirty_ok ||
		say "settle: dirty pages still above 1 % of the pool after 300 s"
	sql "SET GLOBAL innodb_max_dirty_pages_pct = DEFAULT;
	     SET GLOBAL innodb_max_dirty_pages_pct_lwm = DEFAULT"
}

# drain_series <file> <table> <column> <start> <what>: a drain's
# throughput over time, msg/s in 250 ms steps from <start> (database
# clock), counted after the drain from the times the system wrote itself
# (published_at, processed_at, each through its index): nothing samples
# during the drain, which a client polling often would slow (see the
# relay's).  A series that fails is said in charts.log, and its chart
# says it is missing: the bench's numbers go on.
drain_series() {
	{
		echo "# $5: seconds since the start, msg/s in 250 ms steps"
		sql "SELECT FLOOR(TIMESTAMPDIFF(MICROSECOND, '$4', $3) / 250000), COUNT(*)
		     FROM $2 WHERE $3 >= '$4' GROUP BY 1 ORDER BY 1" |
			awk '{ for (; b < $1; b++) printf "%.3f 0\n", (b + 0.5) / 4
			       printf "%.3f %d\n", ($1 + 0.5) / 4, $2 * 4; b = $1 + 1 }'
	} >"$1" 2>>"$out/charts.log" || {
		rm -f "$1"
		echo "bench: warning: the series $1 failed" >>"$out/charts.log"
	}
}

# ---- app ingest --------------------------------------------------------
ready() { curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; }
wait_app() { wait_for 30 ready || die "the app did not answer /readyz in 30 s (${logs}app.log)"; }
# wrk prints latencies as 1.23ms, 456.00us or 1.02s.
to_ms() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.2f", v }'; }
measure_app() { # <tag>
	local t=$1 n
	settle
	port=$app_port
	start app "${quiet[@]}" APP_PORT="$port" APP_BIND=127.0.0.1
	wait_app
	[ "$t" = empty ] && app_idle=$(rss_kib "${pid[app]}")
	say "app ingest ($t): wrk, 64 connections, ${secs} s"
	wrk -t2 -c64 -d"${secs}s" --latency -s tests/load/bench_post.lua \
		"http://127.0.0.1:$port/" | tee "$out/wrk-$t.out" >&2
	R[app_rps.$t]=$(sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' "$out/wrk-$t.out")
	R[app_p50.$t]=$(awk '$1 == "50%" { print $2 }' "$out/wrk-$t.out" | to_ms)
	R[app_p99.$t]=$(awk '$1 == "99%" { print $2 }' "$out/wrk-$t.out" | to_ms)
	n=$(sed -nE 's/.*Non-2xx or 3xx responses: *([0-9]+).*/\1/p' "$out/wrk-$t.out")
	R[app_non2xx.$t]=${n:-0}
	[ "$t" = empty ] && app_load=$(hwm_kib "${pid[app]}")
	stop app
}

# ---- relay drain -------------------------------------------------------
# seed_sql <tag> <ms> <source>: the INSERT of outbox rows as the app
# writes them, one per seq of <source> (a table or subquery with a seq
# column), ids of the time <ms> + seq DIV 100.
seed_sql() {
	echo "INSERT INTO outbox (message_id, event_name, payload, created_at)
	     SELECT $(v7 "relay-m-$1" "$2 + seq DIV 100"), 'CustomerCreated',
	            JSON_OBJECT('id', $(v7 "relay-c-$1" "$2 + seq DIV 100"),
	                        'email', CONCAT('bench', seq, '@example.com'),
	                        'name', 'Bench', 'CreatedAt', '2026-01-01T00:00:00.000000Z',
	                        'UpdatedAt', '2026-01-01T00:00:00.000000Z'),
	            UTC_TIMESTAMP(6)
	     FROM $3"
}
# raw_publish_props <name>: the raw publisher with the messages'
# properties, its output in $out/<name>.out (and on stderr); prints its
# rate.
raw_publish_props() {
	"$bin/outbox-bench-publish" --props "$rows" 1000 | tee "$out/$1.out" >&2
	rate_of "$out/$1.out"
}

measure_relay() { # <tag>
	local t=$1 t0 s
	say "relay ($t): seeding $rows outbox rows"
	sql "$(seed_sql "$t" "$(date +%s%3N)" "seq_1_to_${rows}")"
	drained() { [ "$(sql 'SELECT COUNT(*) FROM outbox WHERE published_at IS NULL')" = 0 ]; }
	settle
	# The broker of this minute, as the worker's drain has its raw
	# consume: the raw publisher with the messages' properties moved by a
	# quarter between minutes of one run (README, "History and memory").
	# Not on the cluster (its section has its own raw publish).
	if [ "$t" != cluster ]; then
		say "relay ($t): raw publish with the messages' properties, just before the drain"
		R[raw_pub_near.$t]=$(raw_publish_props "publish-props-$t")
	fi
	say "relay ($t): draining"
	# Timed by the database clock (start, last published_at) and polled
	# slowly: a client process every 0.1 s would steal CPU from the relay.
	t0=$(sql "SELECT UTC_TIMESTAMP(6)")
	start relay LOG_LEVEL=warn RELAY_LOG_IDS=0 RELAY_RETENTION_HOURS=0
	wait_for_every 0.5 600 drained
	# The last mark: the first entry of ix_outbox_due (published_at
	# descending; MAX() would read the whole index).
	s=$(sql "SELECT TIMESTAMPDIFF(MICROSECOND, '$t0', (SELECT published_at FROM outbox
	     WHERE published_at IS NOT NULL ORDER BY published_at DESC LIMIT 1)) / 1e6")
	[ "$t" = empty ] && relay_load=$(hwm_kib "${pid[relay]}")
	stop relay
	R[relay_s.$t]=$s
	R[relay_rate.$t]=$(awk -v n="$rows" -v s="$s" 'BEGIN { printf "%.1f", n / s }')
	say "relay ($t): $rows rows in $s s = ${R[relay_rate.$t]} msg/s"
	drain_series "$out/drain-relay-$t.dat" outbox published_at "$t0" \
		"relay drain of $rows rows ($t)"
}

# relay_rounds <tag>: drain_rounds (BENCH_DRAIN_ROUNDS, 3) drains of
# measure_relay, each with the raw publish of its own minute just before
# it: one drain a side put the history's relay at 0.75 of the empty
# tables' in one run and 1.14 in another, while by hand, alternated, the
# history's index cost nothing measurable (README, "History and memory").
# The round of the median rate is reported, its raw publish with it;
# every round's rate and raw publish are shown.  A later round starts
# with the queue emptied of the round before's messages: each drain
# publishes into an empty queue, and the worker's drain after them is of
# the last round's rows alone.
relay_rounds() { # <tag>
	local t=$1 r k lines="" best
	for ((r = 1; r <= drain_rounds; r++)); do
		[ "$r" = 1 ] || purge_queue outbox
		say "relay ($t): round $r of $drain_rounds"
		measure_relay "$t"
		for k in relay_s relay_rate raw_pub_near; do R[$k.$t.r$r]=${R[$k.$t]:-}; done
		mv "$out/drain-relay-$t.dat" "$out/drain-relay-$t-r$r.dat" 2>/dev/null
		lines+="${lines:+$'\n'}$(g "relay_rate.$t") $r"
	done
	best=$(middle "$drain_rounds" <<<"$lines" | cut -d' ' -f2)
	for k in relay_s relay_rate raw_pub_near; do R[$k.$t]=${R[$k.$t.r$best]:-}; done
	cp "$out/drain-relay-$t-r$best.dat" "$out/drain-relay-$t.dat" 2>/dev/null
	R[relay_rounds.$t]=$(for ((r = 1; r <= drain_rounds; r++)); do
		echo "$(g "relay_rate.$t.r$r")/$(g "raw_pub_near.$t.r$r")"; done | paste -sd ' ')
	say "relay ($t): msg/s / raw publish by round: ${R[relay_rounds.$t]}; the median, round $best, reported"
}

# ---- raw consume, then the worker's drain -----------------------------
# The broker's CPU time so far (user + system, clock ticks) and its cost
# per message of a drain in microseconds: the single node of the test set
# (0 without it, as in the cluster part, or when its pid file is stale).
mq_ticks() { pid_ticks "$OUTBOX_VAR/rabbitmq/run/rabbitmq.pid" beam.smp; }
# pid_ticks <pid file> <command name>: that server's CPU time so far (user
# + system, clock ticks); 0 when the file names no such live process.
pid_ticks() {
	local p
	p=$(cat "$1" 2>/dev/null) &&
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] &&
		awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0
}
# quiet <what>: waits (30 s at most) until the whole machine is quiet,
# under a tenth of one core busy over half a second (every process's CPU
# time: /proc/stat), and says how long it took.  A drain of 100,000
# messages takes about 3 s: the broker still deleting the last raw
# publish's scratch queue or the purged outbox queue, or the database
# still writing after the seeding, took a share of it, and the raw
# publisher moved by a fifth between consecutive runs.
cpu_busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
quiet() {
	local t0=$SECONDS a b limit
	limit=$(($(getconf CLK_TCK) / 20))
	while :; do
		a=$(cpu_busy_ticks)
		sleep 0.5
		b=$(cpu_busy_ticks)
		[ $((b - a)) -gt "$limit" ] || break
		if [ $((SECONDS - t0)) -ge 30 ]; then
			say "quiet ($1): the machine still busy after 30 s ($((b - a)) ticks in 0.5 s)"
			return 0
		fi
	done
	say "quiet ($1): after $((SECONDS - t0)) s"
}
per_msg_us() { # <ticks before> <ticks after>
	awk -v a="$1" -v b="$2" -v n="$rows" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.1f", (b - a) / hz / n * 1e6 }'
}
# The raw consumer (its own scratch queue, filled and drained), run in
# both sections between the relay's drain and the worker's, so that both
# sections take the same steps in the same order.  The broker's CPU per
# message is printed next to each worker drain: with RabbitMQ's defaults
# a classic queue drained at one of two speeds (README, "The broker's
# settings"), which the bench's brokers no longer run with.
measure_raw_consume() { # <tag>
	local t=$1
	say "raw consume ($t): $rows messages, prefetch $raw_prefetch, multiple acks every $raw_ack_every"
	"$bin/outbox-bench-consume" raw "$rows" "$raw_prefetch" "$raw_ack_every" | tee "$out/consume-$t.out" >&2
	R[raw_con.$t]=$(rate_of "$out/consume-$t.out")
}

# The worker's drain (the relay's messages are queued).
measure_worker() { # <tag> <id floor of the relay's rows>
	local t=$1 t0 t0_db c0
	settle
	say "worker ($t): draining the $rows queued messages"
	t0_db=$(sql "SELECT UTC_TIMESTAMP(6)")
	t0=$(now)
	c0=$(mq_ticks)
	start worker LOG_LEVEL=warn
	"$bin/outbox-bench-consume" wait "$rows" 600 "$2" | tee "$out/worker-$t.out" >&2
	R[worker_s.$t]=$(elapsed "$t0")
	R[worker_rate.$t]=$(rate_of "$out/worker-$t.out")
	R[worker_mq_us.$t]=$(per_msg_us "$c0" "$(mq_ticks)")
	[ "$t" = empty ] && worker_load=$(hwm_kib "${pid[worker]}")
	stop worker
	drain_series "$out/drain-worker-$t.dat" processed_messages processed_at \
		"$t0_db" "worker drain of $rows messages ($t)"
}

# ---- end to end --------------------------------------------------------
measure_e2e() { # <tag>
	local t=$1
	settle
	port=$app_port
	start app "${quiet[@]}" APP_PORT="$port" APP_BIND=127.0.0.1
	start relay LOG_LEVEL=warn "${e2e_env[@]}"
	start worker LOG_LEVEL=warn "${e2e_env[@]}"
	wait_app
	[ "$t" = cluster ] && cl_where
	if [ "$t" = empty ]; then
		relay_idle=$(rss_kib "${pid[relay]}")
		worker_idle=$(rss_kib "${pid[worker]}")
	fi
	say "end to end ($t): $e2e_rate POST/s for $e2e_secs s, open loop"
	"$bin/outbox-bench-e2e" "$port" "$e2e_rate" "$e2e_secs" \
		"$out/e2e-latency-$t.dat" | tee "$out/e2e-$t.out" >&2
	if [ "$t" = empty ]; then
		# Settled as every other measurement starts: not on the open
		# loop's flush debt (a run without it saw commits held up to
		# 0.7 s, its cause not shown).
		settle
		say "end to end, one request at a time: 10 POST/s for $single_secs s"
		"$bin/outbox-bench-e2e" "$port" 10 "$single_secs" | tee "$out/e2e-single.out" >&2
	fi
	cleanup
	R[e2e_p50.$t]=$(json_num "$out/e2e-$t.out" e2e_p50_ms)
	R[e2e_p99.$t]=$(json_num "$out/e2e-$t.out" e2e_p99_ms)
	R[e2e_max.$t]=$(json_num "$out/e2e-$t.out" e2e_max_ms)
	R[e2e_ok.$t]=$(json_num "$out/e2e-$t.out" created)
	R[e2e_fx.$t]=$(json_num "$out/e2e-$t.out" effects)
	R[e2e_del.$t]=$(json_num "$out/e2e-$t.out" db_handler_delete)
	R[e2e_http.$t]=$(json_num "$out/e2e-$t.out" http_p50_ms)
	R[e2e_lockw.$t]=$(json_num "$out/e2e-$t.out" db_innodb_row_lock_waits)
	if [ "$t" = empty ]; then
		one_p50=$(json_num "$out/e2e-single.out" e2e_p50_ms)
		one_p99=$(json_num "$out/e2e-single.out" e2e_p99_ms)
		one_max=$(json_num "$out/e2e-single.out" e2e_max_ms)
	fi
}

# e2e_keep <tag> <round>: one round's end-to-end figures and files kept
# (e2e-<tag>-r<round>.out, e2e-latency-<tag>-r<round>.dat).
e2e_keep() {
	local k
	for k in e2e_p50 e2e_p99 e2e_max e2e_ok e2e_fx e2e_del e2e_http e2e_lockw; do
		R[$k.$1.r$2]=${R[$k.$1]:-}
	done
	mv "$out/e2e-$1.out" "$out/e2e-$1-r$2.out"
	mv "$out/e2e-latency-$1.dat" "$out/e2e-latency-$1-r$2.dat"
}
# middle <count>: the median of count lines on stdin, by their first
# number (the lower middle one of an even count), the whole line.
middle() { sort -n | sed -n "$((($1 + 1) / 2))p"; }
# median_of <key> <tag>: the median of R[<key>.<tag>.r1..rN].
median_of() {
	local r
	for ((r = 1; r <= hist_e2e_rounds; r++)); do g "$1.$2.r$r"; done |
		middle "$hist_e2e_rounds"
}
# e2e_median <tag>: <tag>'s figures from its rounds: each of p50, p99 and
# max its own median (the round of one is not the round of another:
# choosing the p99's round would carry its p50 along, whatever it is),
# created and effects summed over the rounds; the latency file (the
# charts' curve) is the round of the median p99's.  R[e2e_rounds.<tag>]
# lists every round's "p50/p99".
e2e_median() {
	local r best=1 k
	for k in e2e_p50 e2e_p99 e2e_max; do
		R[$k.$1]=$(median_of "$k" "$1")
	done
	R[e2e_ok.$1]=0 R[e2e_fx.$1]=0
	for ((r = 1; r <= hist_e2e_rounds; r++)); do
		R[e2e_ok.$1]=$((R[e2e_ok.$1] + $(g "e2e_ok.$1.r$r")))
		R[e2e_fx.$1]=$((R[e2e_fx.$1] + $(g "e2e_fx.$1.r$r")))
		[ "$(g "e2e_p99.$1.r$r")" = "${R[e2e_p99.$1]}" ] && best=$r
	done
	cp "$out/e2e-$1-r$best.out" "$out/e2e-$1.out"
	cp "$out/e2e-latency-$1-r$best.dat" "$out/e2e-latency-$1.dat"
	R[e2e_round.$1]=$best
	R[e2e_rounds.$1]=$(for ((r = 1; r <= hist_e2e_rounds; r++)); do
		printf '%s/%s\n' "$(g "e2e_p50.$1.r$r")" "$(g "e2e_p99.$1.r$r")"; done | paste -sd ' ')
	# Rows deleted per request in each round (the retention sweeps').
	R[e2e_dels.$1]=$(for ((r = 1; r <= hist_e2e_rounds; r++)); do
		printf '%s\n' "$(ratio "$(g "e2e_del.$1.r$r")" "$(g "e2e_ok.$1.r$r")")"; done | paste -sd ' ')
	# The app's own answer and the row lock waits, in each round (a
	# retention sweep's gap locks held the app's inserts: 346-431 waits a
	# run with history, none beside, until its session read committed;
	# then 339-469, the sweep's deletes waiting for the relay's poll,
	# until migration 014).
	for k in e2e_http e2e_lockw; do
		R[${k}s.$1]=$(for ((r = 1; r <= hist_e2e_rounds; r++)); do g "$k.$1.r$r"; done | paste -sd ' ')
	done
	say "end to end ($1), p50/p99 by round: ${R[e2e_rounds.$1]}; medians p50 ${R[e2e_p50.$1]}, p99 ${R[e2e_p99.$1]} ms (the latency file: round $best's)"
}

# ---- both relay modes, on a MariaDB with the binary log -----------------
# The binlog mode needs a server with the binary log on (sync_binlog=1),
# which costs every commit a second fsync: both modes are measured on
# that one server (bl_infra, above), so that they differ only by the
# relay.  The test set's MariaDB (binary log off) keeps the figures above.
# The global status counters read around each load (bench_e2e.c reads
# the same ones itself, as its db_<name> keys).
bl_status=(handler_read_first handler_read_key handler_read_last
	handler_read_next handler_read_prev handler_read_rnd
	handler_read_rnd_next handler_write handler_update handler_delete
	innodb_data_fsyncs binlog_group_commits binlog_bytes_written)
# What is printed per message, from them (MariaDB 10.11 has no
# Innodb_rows_*): rows read (every Handler_read_*), written, updated,
# deleted; InnoDB's fsyncs; the binary log's fsyncs (group commits, with
# sync_binlog=1) and bytes.
bl_db=(rows_read rows_written rows_updated rows_deleted innodb_fsyncs
	binlog_fsyncs binlog_bytes)
declare -A D=()
# bl_db_per_msg <mode> <run> <messages>: R[bl.<mode>.<run>.<bl_db>] from
# the counters' growth D[<bl_status>].
bl_db_per_msg() {
	local k r=0
	for k in "${bl_status[@]}"; do
		case $k in handler_read_*) r=$((r + ${D[$k]:-0})) ;; esac
	done
	set -- "bl.$1.$2" "$3"
	R[$1.rows_read]=$(per_msg "$r" "$2")
	R[$1.rows_written]=$(per_msg "${D[handler_write]:-0}" "$2")
	R[$1.rows_updated]=$(per_msg "${D[handler_update]:-0}" "$2")
	R[$1.rows_deleted]=$(per_msg "${D[handler_delete]:-0}" "$2")
	R[$1.innodb_fsyncs]=$(per_msg "${D[innodb_data_fsyncs]:-0}" "$2")
	R[$1.binlog_fsyncs]=$(per_msg "${D[binlog_group_commits]:-0}" "$2")
	R[$1.binlog_bytes]=$(per_msg "${D[binlog_bytes_written]:-0}" "$2")
}
declare -A ST=()
status_into() { # <prefix>: ST[<prefix>.<name, lower case>] = its value now
	local k v
	while read -r k v; do
		ST[$1.${k,,}]=$v
	done < <(sql "SHOW GLOBAL STATUS WHERE LOWER(Variable_name) IN
	    ($(printf "'%s', " "${bl_status[@]}") '')")
}
# per_msg <total> <messages>: the total per message, 3 digits or more.
per_msg() {
	awk -v a="$1" -v n="$2" 'BEGIN { if (n <= 0) { print "null"; exit }
		v = a / n; printf (v >= 100 ? "%.0f" : v >= 1 ? "%.2f" : "%.4f"), v }'
}
# metric <port> <series>: M = the series' value on a daemon's /metrics
# (0 when it does not answer), read by bash itself: no process per
# sample, so sampling every 0.1 s takes nothing from the drain.
metric() {
	local line
	M=0
	{ exec 9<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
	printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&9
	while IFS= read -r -t 5 line <&9; do
		case $line in "$2 "*) M=${line#"$2 "} M=${M%$'\r'} ;; esac
	done
	exec 9<&-
}
relay_mode() { # <mode>: the relay's settings for it
	echo RELAY_MODE="$1"
	[ "$1" = binlog ] && echo RELAY_BINLOG_PASSWORD="$OUTBOX_BINLOG_DB_PASS"
	return 0
}
position_stored() { [ "$(sql 'SELECT COUNT(*) FROM outbox_relay_position')" -gt 0 ]; }
relay_ready() { curl -sf "http://127.0.0.1:$relay_mport/readyz" >/dev/null; }
# bl_reset: the tables and queues emptied, and no stored position: a
# binlog relay then starts at the binary log's end (its first start's
# recovery finds an empty table), never reading again what an earlier
# step wrote.
bl_reset() {
	reset
	sql "TRUNCATE TABLE outbox_relay_position"
}

# The drain's figures of one round (bl_drain_once), kept per round as
# bl.<mode>.round<N>.<key>.
bl_drain_keys() {
	local k
	printf '%s\n' drain_s drain_rate_all drain_start_ms drain_rate raw_before \
		raw_after raw drain_cpu_us drain_mq_us drain_db_us raw_mq_us raw_db_us
	for k in "${bl_db[@]}"; do printf 'drain.%s\n' "$k"; done
}
# bl_drain <mode>: bl_drain_rounds rounds of seeding, raw publish and
# drain.
# The raw publisher alone moved by up to a fifth between minutes on this
# machine (21,400 to 32,800 msg/s in three runs of one hour): one pair
# decides little.  Each round pairs a drain with the raw publishes of its
# own minute; the round whose ratio is the median is the one reported
# (its figures together, never a mix of rounds), and every round's
# ratio is printed beside it.  Five rounds: with three, the median of
# the binlog mode's ratio came out from 0.87 to 1.01 in eight runs of
# one build, its rounds from 0.85 to 1.19 (the raw publisher from 27,000
# to 46,000 msg/s between consecutive runs on a quiet machine).
bl_drain() { # <mode>
	local m=$1 r k ratios="" best
	for ((r = 1; r <= bl_drain_rounds; r++)); do
		bl_drain_once "$m" "$r"
		while read -r k; do
			R[bl.$m.round$r.$k]=${R[bl.$m.$k]:-}
		done < <(bl_drain_keys)
		# "<ratio> <round>", a line each, in round order.
		ratios+="${ratios:+$'\n'}$(ratio "$(g "bl.$m.drain_rate")" "$(g "bl.$m.raw")") $r"
	done
	best=$(middle "$bl_drain_rounds" <<<"$ratios" | cut -d' ' -f2)
	while read -r k; do
		R[bl.$m.$k]=${R[bl.$m.round$best.$k]:-}
	done < <(bl_drain_keys)
	R[bl.$m.drain_round]=$best
	R[bl.$m.drain_ratios]=$(cut -d' ' -f1 <<<"$ratios" | paste -sd '/')
	say "binlog server, $m mode: drain over raw publish by round: ${R[bl.$m.drain_ratios]}; the median, round $best, reported"
}

bl_drain_once() { # <mode> <round>
	local m=$1 t0 t1 tf mf end i n k c0 d0
	say "binlog server, $m mode: drain round $2 of $bl_drain_rounds"
	bl_reset
	if [ "$m" = binlog ]; then
		# A stored position at the end of the binary log, before the
		# rows: the drain reads them from the binary log.
		# shellcheck disable=SC2046   # one word per setting
		start relay LOG_LEVEL=warn $(relay_mode binlog)
		wait_for 60 position_stored || die "binlog relay: no position stored in 60 s ($out/relay.log)"
		stop relay
	fi
	say "binlog server, $m mode: seeding $rows outbox rows in transactions of 100"
	for ((i = 0; i < rows; i += 100)); do
		n=$((rows - i < 100 ? rows - i : 100))
		echo "$(seed_sql "bl-$m" "$(date +%s%3N)" "(SELECT seq + $i AS seq FROM seq_1_to_$n) s");"
	done | mariadb -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" "$DB_NAME"
	# The drain's raw reference, measured on both sides of it: the raw
	# publisher moved by up to a fifth between minutes on this machine
	# (27,900 to 31,500 msg/s in consecutive rounds of one run), and each
	# drain is judged against the broker of its own minutes, the mean of
	# the publish just before it and the one just after.
	say "binlog server, $m mode: raw publish with the messages' properties, just before the drain"
	settle
	quiet "before the raw publish"
	c0=$(mq_ticks) d0=$(bl_db_ticks)
	R[bl.$m.raw_before]=$(raw_publish_props "binlog-publish-props-$m-before")
	# Where the two cores went, per message: the broker's and the
	# database's CPU during the raw publish and during the drain (the
	# relay's own below): what the drain shares the machine with.
	R[bl.$m.raw_mq_us]=$(per_msg_us "$c0" "$(mq_ticks)")
	R[bl.$m.raw_db_us]=$(per_msg_us "$d0" "$(bl_db_ticks)")
	quiet "before the drain"
	say "binlog server, $m mode: draining"
	status_into "$m.drain0"
	c0=$(mq_ticks) d0=$(bl_db_ticks)
	t0=$EPOCHREALTIME
	# shellcheck disable=SC2046
	start relay LOG_LEVEL=warn RELAY_LOG_IDS=0 RELAY_RETENTION_HOURS=0 $(relay_mode "$m")
	end=$((SECONDS + 600))
	# Sampled every 20 ms (bash's own requests: nothing forked), from
	# the start and from the first confirmed batch: the raw publisher's
	# time starts once it is connected, so the drain's rate is taken
	# from its first confirm to its last, its start shown apart.
	tf="" mf=0
	while metric "$relay_mport" outbox_relay_messages_published_total &&
		[ "${M%%.*}" -lt "$rows" ] && [ "$SECONDS" -lt "$end" ]; do
		[ -z "$tf" ] && [ "${M%%.*}" -gt 0 ] && tf=$EPOCHREALTIME mf=${M%%.*}
		sleep 0.02
	done
	t1=$EPOCHREALTIME
	R[bl.$m.drain_mq_us]=$(per_msg_us "$c0" "$(mq_ticks)")
	R[bl.$m.drain_db_us]=$(per_msg_us "$d0" "$(bl_db_ticks)")
	[ -n "$tf" ] || tf=$t1 mf=${M%%.*}
	status_into "$m.drain1"
	# The relay's own CPU time (user + system, in clock ticks).
	R[bl.$m.drain_cpu_us]=$(awk -v n="$rows" -v hz="$(getconf CLK_TCK)" \
		'{ printf "%.1f", ($14 + $15) / hz / n * 1e6 }' "/proc/${pid[relay]}/stat")
	stop relay
	[ "${M%%.*}" -ge "$rows" ] || warn "binlog server, $m mode: $M of $rows published in 600 s"
	# The broker as the publish before it found it: the drained queue
	# emptied.
	purge_queue outbox
	quiet "after the purge"
	say "binlog server, $m mode: raw publish with the messages' properties, just after the drain"
	R[bl.$m.raw_after]=$(raw_publish_props "binlog-publish-props-$m-after")
	R[bl.$m.raw]=$(mean "$(g "bl.$m.raw_before")" "$(g "bl.$m.raw_after")")
	R[bl.$m.drain_s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	R[bl.$m.drain_start_ms]=$(awk -v a="$t0" -v b="$tf" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
	R[bl.$m.drain_rate_all]=$(awk -v n="${M%%.*}" -v s="${R[bl.$m.drain_s]}" 'BEGIN { printf "%.1f", n / s }')
	R[bl.$m.drain_rate]=$(awk -v n="$((${M%%.*} - mf))" -v a="$tf" -v b="$t1" \
		'BEGIN { printf "%.1f", (b > a ? n / (b - a) : 0) }')
	for k in "${bl_status[@]}"; do
		D[$k]=$((ST[$m.drain1.$k] - ST[$m.drain0.$k]))
	done
	bl_db_per_msg "$m" drain "$rows"
	say "binlog server, $m mode: $rows rows in ${R[bl.$m.drain_s]} s from the start = ${R[bl.$m.drain_rate_all]} msg/s; first confirm after ${R[bl.$m.drain_start_ms]} ms, from it to the last ${R[bl.$m.drain_rate]} msg/s"
}

# bl_e2e <mode> <round>: one round of the three end-to-end runs in that
# mode, each run's output in $out/binlog-<mode>-<run>-r<round>.out.
bl_e2e() {
	local m=$1 r=$2 run k
	bl_reset
	settle
	# shellcheck disable=SC2046
	start relay LOG_LEVEL=warn $(relay_mode "$m")
	start worker LOG_LEVEL=warn
	start app "${quiet[@]}" APP_PORT="$app_port" APP_BIND=127.0.0.1
	port=$app_port
	wait_app
	wait_for 60 relay_ready || die "the relay did not get ready in 60 s ($out/relay.log)"
	if [ "$m" = binlog ]; then
		wait_for 60 position_stored || die "binlog relay: no position stored in 60 s ($out/relay.log)"
	fi
	say "binlog server, $m mode, round $r of $bl_e2e_rounds: one request at a time, 10 POST/s for $single_secs s"
	"$bin/outbox-bench-e2e" "$port" 10 "$single_secs" | tee "$out/binlog-$m-single-r$r.out" >&2
	say "binlog server, $m mode, round $r of $bl_e2e_rounds: one request at a time, back to back (each POST once the one before it was handled) for $single_secs s"
	"$bin/outbox-bench-e2e" "$port" 0 "$single_secs" | tee "$out/binlog-$m-serial-r$r.out" >&2
	say "binlog server, $m mode, round $r of $bl_e2e_rounds: $e2e_rate POST/s for $e2e_secs s, open loop"
	"$bin/outbox-bench-e2e" "$port" "$e2e_rate" "$e2e_secs" \
		"$out/binlog-e2e-latency-$m-r$r.dat" | tee "$out/binlog-$m-e2e-r$r.out" >&2
	cleanup
	for run in single serial e2e; do
		for k in "${bl_run_keys[@]}"; do
			R[bl.$m.$run.$k.r$r]=$(json_num "$out/binlog-$m-$run-r$r.out" "$k")
		done
	done
}
bl_run_keys=(created effects e2e_p50_ms e2e_p99_ms e2e_max_ms post_p50_ms
	post_p99_ms offered_per_s)

# bl_e2e_rounds: BENCH_BINLOG_E2E_ROUNDS (3) rounds of both modes' runs, the
# modes in turn (poll first in odd rounds, binlog first in even ones).
# One round a mode put the binlog mode's p50 at 1,000/s at 0.42 of the
# poll mode's in one run and 0.58 in the next: half a minute of slow
# commits (the app's own answer at 6 ms, against 2.4 in the run before)
# lands on one mode alone.  Each figure is its own median over the rounds
# (latencies and requests/s; the round of one is not the round of
# another), created and effects are summed, the database's counters are
# summed and divided by every round's messages; every round's p50 is
# shown.  The latency file of the rounds' median p50 is kept as
# binlog-e2e-latency-<mode>.dat.
# bl_by_round <key>: R[<key>.r1..rN], a line each.
bl_by_round() {
	local r
	for ((r = 1; r <= bl_e2e_rounds; r++)); do g "$1.r$r"; done
}
bl_e2e_rounds() {
	local r m order run k f best
	for ((r = 1; r <= bl_e2e_rounds; r++)); do
		order="poll binlog"
		((r % 2)) || order="binlog poll"
		for m in $order; do bl_e2e "$m" "$r"; done
	done
	for m in poll binlog; do
		for run in single serial e2e; do
			for k in "${bl_run_keys[@]}"; do
				case $k in
				created | effects)
					R[bl.$m.$run.$k]=$(bl_by_round "bl.$m.$run.$k" |
						awk '{ s += $1 } END { print s + 0 }') ;;
				*)
					R[bl.$m.$run.$k]=$(bl_by_round "bl.$m.$run.$k" |
						middle "$bl_e2e_rounds") ;;
				esac
			done
			R[bl.$m.$run.p50s]=$(bl_by_round "bl.$m.$run.e2e_p50_ms" | paste -sd '/')
			# The back-to-back run's own looks for each effect are
			# reads of the server too: its counters are not the system's.
			[ "$run" = serial ] && continue
			for k in "${bl_status[@]}"; do
				D[$k]=0
				for ((r = 1; r <= bl_e2e_rounds; r++)); do
					f=$(json_num "$out/binlog-$m-$run-r$r.out" "db_$k")
					D[$k]=$((D[$k] + ${f:-0}))
				done
			done
			bl_db_per_msg "$m" "$run" "${R[bl.$m.$run.created]}"
		done
		best=1
		for ((r = 1; r <= bl_e2e_rounds; r++)); do
			[ "$(g "bl.$m.e2e.e2e_p50_ms.r$r")" = "$(g "bl.$m.e2e.e2e_p50_ms")" ] && best=$r
		done
		cp "$out/binlog-e2e-latency-$m-r$best.dat" "$out/binlog-e2e-latency-$m.dat" 2>/dev/null
		say "binlog server, $m mode: p50 by round: one at a time ${R[bl.$m.single.p50s]}, back to back ${R[bl.$m.serial.p50s]}, $e2e_rate/s ${R[bl.$m.e2e.p50s]} ms; the medians reported"
	done
}

measure_binlog() {
	local save_port=$DB_PORT
	say "binlog server: starting a MariaDB with the binary log on 127.0.0.1:$bl_port ($bl_var)"
	bl_up=1
	bl_infra db-start || die "the binlog server did not start ($out/binlog-server.log)"
	DB_PORT=$bl_port
	OUTBOX_DB_PORT=$bl_port scripts/env.sh "$bin/outbox-migrate" >>"$out/binlog-server.log" 2>&1 ||
		die "migrations on the binlog server failed ($out/binlog-server.log)"
	# The binary logs of earlier runs are of no use: each step below
	# starts from a fresh position.
	sql "RESET MASTER"
	bl_server=$(sql "SELECT CONCAT(VERSION(), ', sync_binlog=', @@sync_binlog,
	    ', innodb_flush_log_at_trx_commit=', @@innodb_flush_log_at_trx_commit)")
	bl_drain poll
	bl_drain binlog
	bl_e2e_rounds
	bl_reset
	bl_down
	DB_PORT=$save_port
}

# The table and JSON of the relay modes (BENCH_ONLY=binlog: alone).
bl_table() {
	local m k
	printf '\nboth relay modes on one MariaDB with the binary log on (%s)\n' "$bl_server"
	printf '%-44s %14s %14s %7s\n' "measure" "poll mode" "binlog mode" "b/p"
	row() { printf '%-44s %14s %14s %7s\n' "$1" "$(g "bl.poll.$2")" "$(g "bl.binlog.$2")" "$(ratio "$(g "bl.binlog.$2")" "$(g "bl.poll.$2")")"; }
	row "one request at a time: p50 (ms)" single.e2e_p50_ms
	row "one request at a time: p99 (ms)" single.e2e_p99_ms
	printf '%-44s %14s %14s\n' "  p50 by round (median above)" "${R[bl.poll.single.p50s]:-}" "${R[bl.binlog.single.p50s]:-}"
	row "  from the POST: p50 (ms)" single.post_p50_ms
	row "  from the POST: p99 (ms)" single.post_p99_ms
	row "one at a time, back to back: p50 (ms)" serial.e2e_p50_ms
	row "one at a time, back to back: p99 (ms)" serial.e2e_p99_ms
	printf '%-44s %14s %14s\n' "  p50 by round (median above)" "${R[bl.poll.serial.p50s]:-}" "${R[bl.binlog.serial.p50s]:-}"
	row "  from the POST: p50 (ms)" serial.post_p50_ms
	row "  from the POST: p99 (ms)" serial.post_p99_ms
	row "  requests/s" serial.offered_per_s
	row "e2e at $e2e_rate/s: p50 (ms)" e2e.e2e_p50_ms
	row "e2e at $e2e_rate/s: p99 (ms)" e2e.e2e_p99_ms
	printf '%-44s %14s %14s\n' "  p50 by round (median above)" "${R[bl.poll.e2e.p50s]:-}" "${R[bl.binlog.e2e.p50s]:-}"
	row "  from the POST: p50 (ms)" e2e.post_p50_ms
	row "  from the POST: p99 (ms)" e2e.post_p99_ms
	printf '%-44s %14s %14s\n' "  e2e created / effects" "$(g bl.poll.e2e.created) / $(g bl.poll.e2e.effects)" "$(g bl.binlog.e2e.created) / $(g bl.binlog.e2e.effects)"
	row "relay drain of $rows rows (msg/s)" drain_rate
	row "  from its start (msg/s)" drain_rate_all
	row "  its start to the first confirm (ms)" drain_start_ms
	row "  raw publish with properties just before" raw_before
	row "  raw publish with properties just after" raw_after
	printf '%-44s %14s %14s\n' "  drain over their mean" "$(ratio "$(g bl.poll.drain_rate)" "$(g bl.poll.raw)")" "$(ratio "$(g bl.binlog.drain_rate)" "$(g bl.binlog.raw)")"
	printf '%-44s %14s %14s\n' "  the same, every round (median above)" "${R[bl.poll.drain_ratios]:-}" "${R[bl.binlog.drain_ratios]:-}"
	row "  the relay's CPU time per message (us)" drain_cpu_us
	row "  the broker's CPU per message (us)" drain_mq_us
	row "  the database's CPU per message (us)" drain_db_us
	row "  raw publish: the broker's CPU per message" raw_mq_us
	row "  raw publish: the database's CPU per message" raw_db_us
	printf 'the database per message (global status counters):\n'
	for m in drain single e2e; do
		case $m in
		drain) printf '  relay drain of %s rows\n' "$rows" ;;
		single) printf '  one request at a time (app, relay, worker)\n' ;;
		e2e) printf '  e2e at %s/s (app, relay, worker)\n' "$e2e_rate" ;;
		esac
		for k in "${bl_db[@]}"; do
			row "    ${k//_/ }" "$m.$k"
		done
	done
}
bl_json() {
	local m k run sep=""
	printf '{ "server": "MariaDB %s, binary log on", "e2e_rounds": %s,' "$bl_server" "$bl_e2e_rounds"
	for m in poll binlog; do
		printf '\n    "%s": { "drain": { "rows": %s, "seconds": %s, "msg_per_s_from_start": %s, "start_to_first_confirm_ms": %s, "msg_per_s": %s, "raw_publish_props_before_per_s": %s, "raw_publish_props_after_per_s": %s, "raw_publish_props_per_s": %s, "ratio": %s, "relay_cpu_us_per_msg": %s, "broker_cpu_us_per_msg": %s, "database_cpu_us_per_msg": %s, "raw_broker_cpu_us_per_msg": %s, "raw_database_cpu_us_per_msg": %s, "round": %s, "ratio_by_round": [%s] },' \
			"$m" "$rows" "$(g "bl.$m.drain_s")" "$(g "bl.$m.drain_rate_all")" "$(g "bl.$m.drain_start_ms")" "$(g "bl.$m.drain_rate")" "$(g "bl.$m.raw_before")" "$(g "bl.$m.raw_after")" "$(g "bl.$m.raw")" "$(ratio "$(g "bl.$m.drain_rate")" "$(g "bl.$m.raw")")" "$(g "bl.$m.drain_cpu_us")" \
			"$(g "bl.$m.drain_mq_us")" "$(g "bl.$m.drain_db_us")" "$(g "bl.$m.raw_mq_us")" "$(g "bl.$m.raw_db_us")" \
			"$(g "bl.$m.drain_round")" "$(sed 's|/|, |g' <<<"${R[bl.$m.drain_ratios]:-}")"
		for run in single serial e2e; do
			printf '\n      "%s": { "rate": %s, "seconds": %s, "created": %s, "effects": %s, "p50_ms": %s, "p99_ms": %s, "max_ms": %s, "post_p50_ms": %s, "post_p99_ms": %s, "p50_ms_by_round": [%s] },' \
				"$run" "$(case $run in single) echo 10 ;; serial) g "bl.$m.serial.offered_per_s" ;; *) echo "$e2e_rate" ;; esac)" \
				"$([ "$run" = e2e ] && echo "$e2e_secs" || echo "$single_secs")" \
				"$(g "bl.$m.$run.created")" "$(g "bl.$m.$run.effects")" "$(g "bl.$m.$run.e2e_p50_ms")" \
				"$(g "bl.$m.$run.e2e_p99_ms")" "$(g "bl.$m.$run.e2e_max_ms")" \
				"$(g "bl.$m.$run.post_p50_ms")" "$(g "bl.$m.$run.post_p99_ms")" \
				"$(sed 's|/|, |g' <<<"${R[bl.$m.$run.p50s]:-}")"
		done
		printf '\n      "db_per_message": {'
		sep=""
		for run in drain single e2e; do
			printf '%s\n        "%s": {' "$sep" "$run"
			local s2=""
			for k in "${bl_db[@]}"; do
				printf '%s "%s": %s' "$s2" "$k" "$(g "bl.$m.$run.$k")"
				s2=","
			done
			printf ' }'
			sep=","
		done
		printf ' } },'
	done
	printf '\n    "ratios": { "single_p50": %s, "serial_p50": %s, "e2e_p50": %s, "e2e_p99": %s, "drain": %s } }' \
		"$(ratio "$(g bl.binlog.single.e2e_p50_ms)" "$(g bl.poll.single.e2e_p50_ms)")" \
		"$(ratio "$(g bl.binlog.serial.post_p50_ms)" "$(g bl.poll.serial.post_p50_ms)")" \
		"$(ratio "$(g bl.binlog.e2e.e2e_p50_ms)" "$(g bl.poll.e2e.e2e_p50_ms)")" \
		"$(ratio "$(g bl.binlog.e2e.e2e_p99_ms)" "$(g bl.poll.e2e.e2e_p99_ms)")" \
		"$(ratio "$(g bl.binlog.drain_rate)" "$(g bl.poll.drain_rate)")"
}

# ---- a 3-node RabbitMQ cluster with quorum queues (BENCH_ONLY=cluster) --
# The test set's cluster (scripts/infra.sh, OUTBOX_MQ_NODES=3) and
# MariaDB.  Every client, raw or daemon, gets the same RABBITMQ_HOSTS
# (scripts/env.sh: node 1, 2, 3) and connects to the first that answers:
# all on node 1.  The queues are declared again through node 1 too, so it
# leads outbox (a quorum queue's leader is the declaring client's node):
# raw figures and daemons' alike are those of clients on the leader.
# cl_node <AMQP port>: which node of the cluster that is.
cl_node() {
	local p n=0
	for p in $OUTBOX_MQ_PORTS; do
		n=$((n + 1))
		[ "$p" = "$1" ] && { echo "node $n (127.0.0.1:$p)"; return 0; }
	done
	echo "${1:-none}"
}
# cl_leader: the AMQP port of the node that leads queue outbox.
cl_leader() {
	bash scripts/infra.sh mq-ctl -q list_queues name leader --no-table-headers 2>/dev/null |
		awk '$1 == "outbox" { print $2 }' | sed -n 's/^outbox-\([0-9]*\)@.*$/\1/p'
}
# cl_on <daemon> <metrics port>: R[cl.on.<daemon>], the AMQP port of the
# node it is connected to (its outbox_<daemon>_broker_connected_info);
# 1 while it is connected to none.
cl_on() {
	local h
	for h in ${RABBITMQ_HOSTS//,/ }; do
		metric "$2" "outbox_$1_broker_connected_info{host=\"$h\"}"
		[ "$M" = 1 ] && { R[cl.on.$1]=${h##*:}; return 0; }
	done
	return 1
}
# cl_where: where the relay and the worker of the end-to-end run are
# connected (measure_e2e cluster calls it, the daemons up).
cl_where() {
	wait_for 30 cl_on relay "$relay_mport" || warn "cluster: the relay not connected after 30 s (${logs}relay.log)"
	wait_for 30 cl_on worker "$worker_mport" || warn "cluster: the worker not connected after 30 s (${logs}worker.log)"
}
# cl_raw_on <file>: the AMQP port a raw client's line says it used.
cl_raw_on() { sed -nE 's/.* on [^ ]*:([0-9]+)\)$/\1/p' "$1" | tail -n 1; }
# cl_alarms: how many resource alarms (memory or disk: publishers
# blocked) the nodes have raised so far, each counted in its own log.
cl_alarms() {
	local p n=0 k=0 c
	for p in $OUTBOX_MQ_PORTS; do
		n=$((n + 1))
		c=$(grep -c "resource limit alarm set on node 'outbox-$p@" \
			"$OUTBOX_VAR/rabbitmq-cluster/node$n/log/outbox-$p@localhost.log" 2>/dev/null) || true
		k=$((k + ${c:-0}))
	done
	echo "$k"
}
# cl_raw <run>: the raw clients on queue outbox: BENCH_ROWS messages
# with the relay's properties published (confirms, 1,000 in flight),
# then drained with the worker's prefetch and multiple acks; run 1
# before the daemons' drains, 2 after them: the raw figures are their
# means (the raw publisher alone moves by half between runs here).
cl_raw() {
	say "cluster: raw publish ($1 of 2) of $rows messages with the relay's properties to queue outbox, confirms, 1000 in flight"
	"$bin/outbox-bench-publish" --props --queue outbox "$rows" 1000 | tee "$out/cluster-publish-$1.out" >&2
	R[cl.pub.$1]=$(rate_of "$out/cluster-publish-$1.out")
	say "cluster: raw consume ($1 of 2) of them, prefetch $raw_prefetch, multiple acks every $raw_ack_every"
	"$bin/outbox-bench-consume" drain "$rows" "$raw_prefetch" "$raw_ack_every" | tee "$out/cluster-consume-$1.out" >&2
	R[cl.con.$1]=$(rate_of "$out/cluster-consume-$1.out")
}

measure_cluster() {
	local q
	if [ "$(bash scripts/infra.sh status 2>/dev/null | grep -c '^infra: rabbitmq: running')" != 3 ]; then
		say "cluster: starting the test set's 3-node RabbitMQ cluster (AMQP 127.0.0.1:${OUTBOX_MQ_PORTS// /, })"
		cl_up=1
		# A backlog of BENCH_ROWS messages in a quorum queue (kept in
		# memory, with its Raft log) raises the tests' 512 MiB memory
		# alarm, which blocks every publisher: the bench's nodes get
		# 1 GiB each unless OUTBOX_MQ_NODE_MEMORY says otherwise.
		OUTBOX_MQ_NODE_MEMORY=${OUTBOX_MQ_NODE_MEMORY:-1GiB} cl_infra start ||
			die "the cluster did not start ($out/cluster-server.log)"
	fi
	cl_info=$(bash scripts/infra.sh mq-ctl -q version 2>/dev/null || echo "?")
	for q in outbox outbox.dlq; do
		bash scripts/infra.sh mq-ctl -q delete_queue "$q" >/dev/null 2>&1 || true
	done
	"$bin/outbox-bench-consume" declare 2>>"$out/cluster-server.log" ||
		die "cluster: declaring the queues failed ($out/cluster-server.log)"
	cl_lead=$(cl_leader)
	say "cluster: RabbitMQ $cl_info, queue outbox ($RABBITMQ_QUEUE_TYPE) led by $(cl_node "$cl_lead"); RABBITMQ_HOSTS=$RABBITMQ_HOSTS"
	cl_alarms0=$(cl_alarms)
	reset
	cl_raw 1
	reset
	floor=$(id_floor)
	measure_relay cluster
	measure_worker cluster "$floor"
	reset
	cl_raw 2
	cl_pub=$(mean "$(g cl.pub.1)" "$(g cl.pub.2)")
	cl_con=$(mean "$(g cl.con.1)" "$(g cl.con.2)")
	reset
	measure_e2e cluster
	cl_lead_end=$(cl_leader)
	cl_alarms_n=$(($(cl_alarms) - cl_alarms0))
	reset
	cl_down
}

cl_table() {
	row() { printf '%-44s %14s %14s %7s %7s\n' "$@"; }
	printf '\n3-node RabbitMQ cluster (%s), quorum queues\n' "$cl_info"
	row "measure" "system" "raw limit" "ratio" "target"
	row "relay drain of $rows rows (msg/s)" "$(g relay_rate.cluster)" "$cl_pub" "$(ratio "$(g relay_rate.cluster)" "$cl_pub")" 0.8
	row "worker drain of $rows msgs (msg/s)" "$(g worker_rate.cluster)" "$cl_con" "$(ratio "$(g worker_rate.cluster)" "$cl_con")" 0.5
	printf '%-44s %14s\n' "e2e at $e2e_rate/s: p50 / p99 / max (ms)" "$(g e2e_p50.cluster) / $(g e2e_p99.cluster) / $(g e2e_max.cluster)"
	printf '%-44s %14s\n' "  e2e created / effects" "$(g e2e_ok.cluster) / $(g e2e_fx.cluster)"
	printf '%-44s %14s\n' "raw publish before / after the daemons" "$(g cl.pub.1) / $(g cl.pub.2)"
	printf '%-44s %14s\n' "raw consume before / after the daemons" "$(g cl.con.1) / $(g cl.con.2)"
	printf '%-44s %14s\n' "resource alarms of the nodes meanwhile" "$cl_alarms_n"
	printf 'leader of outbox: %s (after the run: %s)\n' "$(cl_node "$cl_lead")" "$(cl_node "$cl_lead_end")"
	printf 'connected to: raw publisher %s, raw consumer %s, relay %s, worker %s\n' \
		"$(cl_node "$(cl_raw_on "$out/cluster-publish-1.out")")" "$(cl_node "$(cl_raw_on "$out/cluster-consume-1.out")")" \
		"$(cl_node "$(g cl.on.relay)")" "$(cl_node "$(g cl.on.worker)")"
}
cl_json() {
	printf '{ "nodes": 3, "queue_type": "%s", "rabbitmq": "%s", "commit": "%s", "date": "%s",\n' \
		"$RABBITMQ_QUEUE_TYPE" "$cl_info" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf '  "leader": "%s", "leader_after": "%s",\n' "$(cl_node "$cl_lead")" "$(cl_node "$cl_lead_end")"
	printf '  "connected": { "raw_publish": "%s", "raw_consume": "%s", "relay": "%s", "worker": "%s" },\n' \
		"$(cl_node "$(cl_raw_on "$out/cluster-publish-1.out")")" "$(cl_node "$(cl_raw_on "$out/cluster-consume-1.out")")" \
		"$(cl_node "$(g cl.on.relay)")" "$(cl_node "$(g cl.on.worker)")"
	printf '  "raw": { "publish_props_per_s_1000_inflight": %s, "consume_per_s_prefetch_500": %s, "consume_prefetch": %s, "consume_ack_every": %s,\n' "${cl_pub:-0}" "${cl_con:-0}" "$raw_prefetch" "$raw_ack_every"
	printf '    "publish_runs": [%s, %s], "consume_runs": [%s, %s] }, "resource_alarms": %s,\n' \
		"$(g cl.pub.1)" "$(g cl.pub.2)" "$(g cl.con.1)" "$(g cl.con.2)" "${cl_alarms_n:-null}"
	printf '  "relay": { "rows": %s, "seconds": %s, "msg_per_s": %s, "ratio": %s, "target": 0.8 },\n' \
		"$rows" "$(g relay_s.cluster)" "$(g relay_rate.cluster)" "$(ratio "$(g relay_rate.cluster)" "$cl_pub")"
	printf '  "worker": { "messages": %s, "seconds": %s, "msg_per_s": %s, "ratio": %s, "target": 0.5 },\n' \
		"$rows" "$(g worker_s.cluster)" "$(g worker_rate.cluster)" "$(ratio "$(g worker_rate.cluster)" "$cl_con")"
	printf '  "e2e": { "rate": %s, "seconds": %s, "created": %s, "effects": %s, "p50_ms": %s, "p99_ms": %s, "max_ms": %s } }\n' \
		"$e2e_rate" "$e2e_secs" "$(g e2e_ok.cluster)" "$(g e2e_fx.cluster)" "$(g e2e_p50.cluster)" "$(g e2e_p99.cluster)" "$(g e2e_max.cluster)"
}

if [ "$only" = binlog ]; then
	measure_binlog
	bl_table | tee "$out/table-binlog.txt"
	printf '(%s cores; servers and load on this machine)\n' "$(nproc)" | tee -a "$out/table-binlog.txt"
	bl_json >"$out/binlog.json"
	echo >>"$out/binlog.json"
	say "result: $out/binlog.json"
	exit 0
fi
if [ "$only" = cluster ]; then
	measure_cluster
	cl_table | tee "$out/table-cluster.txt"
	printf '(%s cores shared by the 3 nodes, MariaDB, daemons and clients: figures for ratios)\n' "$(nproc)" |
		tee -a "$out/table-cluster.txt"
	cl_json >"$out/cluster.json"
	jq -e . "$out/cluster.json" >/dev/null || die "cluster.json is not JSON ($out/cluster.json)"
	say "result: $out/cluster.json"
	# A full run's result.json: its "cluster" key added or replaced (the
	# other keys as they were; a later full run writes it anew, without).
	if [ -f "$out/result.json" ]; then
		if jq --slurpfile c "$out/cluster.json" '.cluster = $c[0]' "$out/result.json" >"$out/result.json.new"; then
			mv "$out/result.json.new" "$out/result.json"
			say "result: $out/result.json, key \"cluster\""
		else
			rm -f "$out/result.json.new"
			warn "result.json not updated (not JSON?): the figures are in cluster.json"
		fi
	fi
	exit 0
fi

# ---- raw: the two-row transaction ------------------------------------
reset
settle
say "raw two-row transactions, 64 connections, ${secs} s"
"$bin/outbox-bench-txn" 64 "$secs" | tee "$out/txn.out" >&2
raw_txn=$(json_num "$out/txn.out" tx_per_s)

reset
measure_app empty

# ---- expired idempotency keys, pruned while the app takes load ---------
reset
sql "INSERT INTO idempotency_keys (idem_key, request_email, request_name,
     status, customer_id, response_body, created_at)
     SELECT CONCAT('expired-', seq), 'old@example.com', 'Old', 201,
     '00000000-0000-4000-8000-000000000000', '{}',
     UTC_TIMESTAMP(6) - INTERVAL 49 HOUR FROM seq_1_to_$prune_n"
port=$app_port
t_prune=$(now)
start app "${quiet[@]}" APP_PORT="$port" APP_BIND=127.0.0.1
wait_app
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

reset
floor=$(id_floor)
relay_rounds empty
# The same with the properties SPEC section 7 requires of every message
# (message_id, type, timestamp, headers): the broker's own cost of them is
# part of the limit the relay can reach; measured just before its drain.
raw_pub_props=$(g raw_pub_near.empty)

measure_raw_consume empty
raw_con=$(g raw_con.empty)
measure_worker empty "$floor"
reset
measure_e2e empty
measure_binlog

# ---- the same with history ----------------------------------------------
# History as a deployment has it after days: hist_n customers with their
# published outbox rows, processed ids and welcome emails, spread over 23
# hours, from 24 h to 1 h before the load, with time-ordered ids as the
# app makes them and emails spread over the key space as real ones are.
# The end-to-end runs with history add the retentions' steady state: a
# row of each of outbox and processed_messages to delete per request
# (age_history, below).
# Loaded with bulk inserts into the emptied tables (unique_checks off: one
# sorted build of each index, not a row at a time), two tables at a time.
if [ "$hist_n" -gt 0 ]; then
	reset
	# The history's tables, which the e2e beside it (below) sets aside as
	# _bench_hist_<table>; what a bench that died meanwhile left aside.
	hist_tables="customers outbox processed_messages welcome_emails"
	left=""
	for t in $hist_tables; do left+="${left:+, }_bench_hist_$t"; done
	sql "DROP TABLE IF EXISTS $left"
	hist_base=$(($(date +%s%3N) - 24 * 3600 * 1000))
	hist_ms="$hist_base + seq * $((23 * 3600 * 1000)) DIV $hist_n"
	hist_at="FROM_UNIXTIME(($hist_ms) / 1000)"
	hist_cid=$(v7 hc "$hist_ms")
	hist_mid=$(v7 hm "$hist_ms")
	hist_email="CONCAT(SUBSTR(MD5(CONCAT('he', seq)), 1, 12), '-', seq, '@example.com')"
	bulk() { sql "SET time_zone = '+00:00'; SET unique_checks = 0;
		SET foreign_key_checks = 0; START TRANSACTION; $1; COMMIT"; }
	# fill_built <percent> <command> <sql>: <command> (sql or bulk) of
	# <sql>, with the pages of the indexes it builds sorted filled to
	# <percent> (a global setting, put back).
	fill_built() {
		local rc=0
		sql "SET GLOBAL innodb_fill_factor = $1"
		"$2" "$3" || rc=$?
		sql "SET GLOBAL innodb_fill_factor = DEFAULT"
		[ "$rc" = 0 ] || die "history: failed: $3"
	}
	say "history: loading $hist_n rows into each of customers, outbox, processed_messages, welcome_emails"
	t_hist=$(now)
	{
		bulk "INSERT INTO customers (id, email, name, created_at, updated_at)
		      SELECT $hist_cid, $hist_email, CONCAT('History ', seq), $hist_at, $hist_at
		      FROM seq_1_to_$hist_n"
		bulk "INSERT INTO outbox (message_id, event_name, payload, created_at, published_at)
		      SELECT $hist_mid, 'CustomerCreated',
		             JSON_OBJECT('id', $hist_cid, 'email', $hist_email,
		                         'name', CONCAT('History ', seq),
		                         'CreatedAt', DATE_FORMAT($hist_at, '%Y-%m-%dT%H:%i:%s.%fZ'),
		                         'UpdatedAt', DATE_FORMAT($hist_at, '%Y-%m-%dT%H:%i:%s.%fZ')),
		             $hist_at, $hist_at + INTERVAL 1 SECOND
		      FROM seq_1_to_$hist_n"
	} &
	hist_a=$!
	bulk "INSERT INTO processed_messages (message_id, event_name, processed_at)
	      SELECT $hist_mid, 'CustomerCreated', $hist_at + INTERVAL 2 SECOND
	      FROM seq_1_to_$hist_n"
	bulk "INSERT INTO welcome_emails (customer_id, message_id, email, name, created_at)
	      SELECT $hist_cid, $hist_mid, $hist_email, CONCAT('History ', seq),
	             $hist_at + INTERVAL 2 SECOND
	      FROM seq_1_to_$hist_n"
	wait "$hist_a"
	# A sorted build fills each index page (innodb_fill_factor 100), as the
	# app's inserts fill the time-ordered indexes too (always at their
	# right edge).  The unique email index takes its rows at random
	# places: after days of that its pages are about 69 % full (a full
	# page splits in two halves), and built full it would split a page at
	# almost every insert measured below (31,725 splits for 30,000
	# requests at 1,000/s, by hand: end-to-end p99 166 ms against 42 at
	# 70 %), which a deployment sees only in the minutes after an index
	# rebuild (README, "History and memory").  Rebuilt at 70 %.
	say "history: rebuilding the email index at a fill of 70 %"
	# (Two statements: MariaDB takes a drop and an add of the same index
	# in one ALTER for no change at all.)
	fill_built 70 sql "ALTER TABLE customers DROP INDEX uq_customers_email;
	     ALTER TABLE customers ADD UNIQUE INDEX uq_customers_email (email_key),
	         ALGORITHM = INPLACE"
	hist_load_s=$(elapsed "$t_hist")
	say "history: loaded in $hist_load_s s"
	sql "ANALYZE TABLE customers, outbox, processed_messages, welcome_emails" >/dev/null
	sizes() {
		sql "SELECT table_name, table_rows, ROUND(data_length / 1048576),
		            ROUND(index_length / 1048576)
		     FROM information_schema.tables
		     WHERE table_schema = DATABASE() AND table_name IN
		           ('customers', 'outbox', 'processed_messages', 'welcome_emails')
		     ORDER BY table_name"
	}
	sizes | tee "$out/history-sizes.txt" >&2
	# A deployment that has run for days holds in its buffer pool what its
	# writes touch; this one holds the pages loaded last.  Read the one
	# index that takes writes at random places (customers' unique email)
	# once, as those days would have, into the pool's young part (a scan
	# otherwise only passes through its old part): the figures below are
	# the steady state, not the first minutes after a restart (README,
	# "History and memory").
	sql "SET GLOBAL innodb_old_blocks_time = 0;
	     SELECT COUNT(*) FROM customers FORCE INDEX (uq_customers_email);
	     SET GLOBAL innodb_old_blocks_time = DEFAULT" >/dev/null
	hist_reads0=$(sql "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_reads'" | cut -f2)

	# Empty tables beside the history (the app's ingest and the e2e
	# below): its four tables renamed aside, empty ones of the same
	# definition in their place (grants are by table name), measured,
	# then dropped and the history renamed back.
	aside="" back="" fresh="" drop=""
	for t in $hist_tables; do
		aside+="${aside:+, }$t TO _bench_hist_$t"
		back+="${back:+, }_bench_hist_$t TO $t"
		fresh+="CREATE TABLE $t LIKE _bench_hist_$t; "
		drop+="${drop:+, }$t"
	done
	set_aside() { sql "RENAME TABLE $aside; $fresh" || die "history: cannot set the history aside"; }
	put_back() {
		sql "DROP TABLE $drop; RENAME TABLE $back" ||
			die "history: cannot put the history back (tables _bench_hist_*)"
	}
	# The app's ingest with history and beside it, BENCH_HISTORY_APP_ROUNDS
	# (3) rounds in turn (history first in odd rounds): one 15 s run a
	# side, twenty minutes apart (the empty figure is the bench's start),
	# gave 0.73, 0.89 and 0.77 in three runs, the machine itself 40 %
	# slower in the third.  Beside it, in the same minutes, the ratio is
	# the history's own cost.  The app's rows join the history
	# (published, as if relayed): the relay's drain below is of its own
	# seeded rows only.
	for ((r = 1; r <= hist_app_rounds; r++)); do
		order="history beside"
		((r % 2)) || order="beside history"
		for side in $order; do
			if [ "$side" = history ]; then
				measure_app history
				sql "UPDATE outbox SET published_at = UTC_TIMESTAMP(6) WHERE published_at IS NULL"
			else
				set_aside
				measure_app beside
				put_back
			fi
			sql "TRUNCATE TABLE idempotency_keys"
			mv "$out/wrk-$side.out" "$out/wrk-$side-r$r.out"
			for k in app_rps app_p50 app_p99 app_non2xx; do
				R[$k.$side.r$r]=${R[$k.$side]:-}
			done
		done
	done
	for side in history beside; do
		for k in app_rps app_p50 app_p99; do
			R[$k.$side]=$(for ((r = 1; r <= hist_app_rounds; r++)); do
				g "$k.$side.r$r"; done | middle "$hist_app_rounds")
		done
		R[app_non2xx.$side]=0
		for ((r = 1; r <= hist_app_rounds; r++)); do
			R[app_non2xx.$side]=$((R[app_non2xx.$side] + $(g "app_non2xx.$side.r$r")))
		done
		R[app_rounds.$side]=$(for ((r = 1; r <= hist_app_rounds; r++)); do
			echo "$(g "app_rps.$side.r$r")/$(g "app_p99.$side.r$r")"
		done | paste -sd ' ')
	done
	say "app ingest, req/s/p99 ms by round: history ${R[app_rounds.history]}; beside ${R[app_rounds.beside]}; medians ${R[app_rps.history]} and ${R[app_rps.beside]}"
	floor=$(id_floor)
	relay_rounds history
	measure_raw_consume history
	measure_worker history "$floor"
	# The same end-to-end load on empty tables beside the history: its
	# four tables renamed aside, empty ones of the same definition in
	# their place (grants are by table name), measured, then dropped and
	# the history renamed back.  The empty figures above come from the
	# bench's start, a server that had written little and whose buffer
	# pool was mostly free; these come from the same server, minutes after
	# the history's, so that the ratio is the history's own cost (README,
	# "History and memory": by hand, alternated, it cost nothing seen).
	# One 30 s run's p99 moved from 10 to 36 ms for the same load on
	# this machine: BENCH_HISTORY_E2E_ROUNDS (5) rounds of both, in turn
	# (history first in odd rounds, beside first in even ones), each
	# side's medians reported (e2e_median), every round's shown.
	# The retentions' steady state.  A deployment that has run at the
	# end-to-end rate for longer than its retentions deletes, on average,
	# an outbox row and a processed id for each request (the relay's and
	# the worker's sweeps, each every minute).  The history above is
	# younger than both retentions, and what aged past the relay's 24 h
	# while it was stopped differed from round to round (0.33 to 1.49
	# rows per request in one run: README, "History and memory").  So
	# each end-to-end run with history starts with exactly hist_old rows
	# of outbox and of processed_messages past a retention of hist_keep_h
	# hours (the oldest ones, the rest of the history never ages past it
	# during the bench): one of each per request, every round alike.
	hist_keep_h=48
	hist_old=$((e2e_rate * e2e_secs))
	# The history list counts transactions, not rows: the update's
	# 30,000 rows are one entry until purged (by hand: 1 for 0.3 s after
	# an update of 100,000, then 0), so nothing but 0 says they are.
	purged() { [ "$(sql "SHOW GLOBAL STATUS LIKE 'Innodb_history_list_length'" | cut -f2)" = 0 ]; }
	age_history() {
		local at="UTC_TIMESTAMP(6) - INTERVAL $((hist_keep_h + 1)) HOUR"
		# Each along its primary key (the oldest first: seq, and
		# time-ordered ids), hist_old rows read: ordered by the column
		# it sets, an update reads the whole table into a sort (and
		# the buffer pool), 90,461 pages in one run.
		sql "UPDATE outbox SET published_at = $at ORDER BY seq LIMIT $hist_old;
		     UPDATE processed_messages SET processed_at = $at
		     ORDER BY message_id LIMIT $hist_old" ||
			die "history: cannot age $hist_old rows past the retention"
		# The update's old versions purged before the run.
		wait_for_every 0.5 300 purged ||
			say "history: purge still behind after 300 s"
	}
	# Both sides' relay and worker with those retentions.
	e2e_env=(RELAY_RETENTION_HOURS=$hist_keep_h
		WORKER_PROCESSED_RETENTION_HOURS=$hist_keep_h)
	for ((r = 1; r <= hist_e2e_rounds; r++)); do
		order="history beside"
		((r % 2)) || order="beside history"
		for side in $order; do
			if [ "$side" = history ]; then
				age_history
				measure_e2e history
			else
				set_aside
				measure_e2e beside
				put_back
			fi
			e2e_keep "$side" "$r"
		done
	done
	e2e_env=()
	e2e_median history
	e2e_median beside
	# Each round's p50 with history minus the one beside it in the same
	# round, and their median: the history's cost in ms (by hand, one
	# side's p50 moved by up to 1.3 ms from round to round, and the
	# difference within a round by as much: README, "History and
	# memory").
	R[e2e_gaps]=$(for ((r = 1; r <= hist_e2e_rounds; r++)); do
		awk -v a="$(g "e2e_p50.history.r$r")" -v b="$(g "e2e_p50.beside.r$r")" \
			'BEGIN { printf "%.2f\n", a - b }'; done | paste -sd ' ')
	R[e2e_gap]=$(tr ' ' '\n' <<<"${R[e2e_gaps]}" | middle "$hist_e2e_rounds")
	say "end to end, p50 with history minus beside by round: ${R[e2e_gaps]} ms; median ${R[e2e_gap]} ms"
	hist_reads=$(( $(sql "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_reads'" | cut -f2) - hist_reads0 ))
	hist_pool=$(sql "SELECT @@innodb_buffer_pool_size DIV 1048576")

	# ---- key forms at this history -------------------------------------
	# Three copies of processed_messages' shape holding hist_n ids each,
	# then key_n inserts in the worker's autocommit batches of 500: the
	# ids as they are now (version 7, VARCHAR(36)), as 16 bytes, and
	# random (version 4, as before version 7).
	say "keys: loading three copies of $hist_n processed ids"
	# Random keys are loaded at the fill days of random inserts leave (70 %,
	# as the email index above), the time-ordered ones full.
	key_table() { # <name> <key type> <key expression> <fill percent>
		sql "DROP TABLE IF EXISTS $1;
		     CREATE TABLE $1 (message_id $2 NOT NULL,
		         event_name VARCHAR(64) CHARACTER SET ascii NOT NULL,
		         processed_at DATETIME(6) NOT NULL, PRIMARY KEY (message_id))
		         ENGINE = InnoDB"
		fill_built "$4" bulk "INSERT INTO $1 SELECT $3, 'CustomerCreated', $hist_at FROM seq_1_to_$hist_n"
	}
	key_v4="INSERT(INSERT(INSERT(INSERT(LOWER(CONCAT(SUBSTR(MD5(CONCAT(salt, '-', seq)), 1, 12), '4', SUBSTR(MD5(CONCAT(salt, '-', seq)), 13, 3), '8', SUBSTR(MD5(CONCAT(salt, '-', seq)), 16, 15))), 21, 0, '-'), 17, 0, '-'), 13, 0, '-'), 9, 0, '-')"
	key_table _bench_key36 "VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin" "$hist_mid" 100
	key_table _bench_key16 "VARBINARY(16)" "UNHEX(REPLACE($hist_mid, '-', ''))" 100
	key_table _bench_key36r "VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin" "${key_v4//salt/\'hr\'}" 70
	sql "ANALYZE TABLE _bench_key36, _bench_key16, _bench_key36r" >/dev/null
	key_insert() { # <table> <key expression of seq, salt>: rows/s
		local i t0 new_ms e
		new_ms="$(date +%s%3N) + seq DIV 10"
		t0=$(now)
		for ((i = 0; i < key_n / 500; i++)); do
			e=${2//salt/\'k$i\'}
			echo "INSERT INTO $1 SELECT ${e//NEWMS/$new_ms + $i * 50}, 'CustomerCreated', UTC_TIMESTAMP(6) FROM seq_1_to_500;"
		done | mariadb -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" "$DB_NAME" || return 1
		awk -v n="$key_n" -v s="$(elapsed "$t0")" 'BEGIN { printf "%.0f", n / s }'
	}
	key_new=$(v7 salt "NEWMS")
	key_new=${key_new//\'salt\'/salt}
	for k in _bench_key36 _bench_key16 _bench_key36r; do
		case $k in
		_bench_key36) e=$key_new ;;
		_bench_key16) e="UNHEX(REPLACE($key_new, '-', ''))" ;;
		*) e=$key_v4 ;;
		esac
		R[keys_rate.$k]=$(key_insert "$k" "$e") || die "keys: the inserts into $k failed"
		R[keys_bytes.$k]=$(sql "SELECT ROUND((data_length + index_length) / table_rows)
		     FROM information_schema.tables WHERE table_schema = DATABASE()
		     AND table_name = '$k'")
		say "keys: $k: ${R[keys_rate.$k]} rows/s, ${R[keys_bytes.$k]} bytes/row"
	done
	sql "DROP TABLE _bench_key36, _bench_key16, _bench_key36r"
	reset
fi

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
cpus=$(nproc)
{
	printf '\n%-44s %14s %14s %7s\n' "measure" "system" "raw limit" "ratio"
	printf '%-44s %14s %14s %7s\n' "app POST /customers, 64 conn (req/s)" "$(g app_rps.empty)" "$raw_txn" "$(ratio "$(g app_rps.empty)" "$raw_txn")"
	printf '%-44s %14s\n' "  app p50 / p99 latency (ms)" "$(g app_p50.empty) / $(g app_p99.empty)"
	printf '%-44s %14s\n' "  app non-2xx answers" "$(g app_non2xx.empty)"
	printf '%-44s %14s %14s %7s\n' "relay drain of $rows rows (msg/s)" "$(g relay_rate.empty)" "$raw_pub_props" "$(ratio "$(g relay_rate.empty)" "$raw_pub_props")"
	printf '%-44s %14s %14s %7s\n' "  vs raw publish without properties" "$(g relay_rate.empty)" "$raw_pub" "$(ratio "$(g relay_rate.empty)" "$raw_pub")"
	printf '%-44s %14s %14s %7s\n' "worker drain of $rows msgs (msg/s)" "$(g worker_rate.empty)" "$raw_con" "$(ratio "$(g worker_rate.empty)" "$raw_con")"
	printf '%-44s %14s\n' "  broker CPU per message (us)" "$(g worker_mq_us.empty)"
	printf '%-44s %14s\n' "e2e at $e2e_rate/s: p50 / p99 / max (ms)" "$(g e2e_p50.empty) / $(g e2e_p99.empty) / $(g e2e_max.empty)"
	printf '%-44s %14s\n' "  e2e created / effects" "$(g e2e_ok.empty) / $(g e2e_fx.empty)"
	printf '%-44s %14s\n' "e2e one at a time: p50 / p99 / max (ms)" "$one_p50 / $one_p99 / $one_max"
	printf '%-44s %14s\n' "expired keys pruned under load (keys/s)" "$prune_rate"
	printf '%-44s %14s\n' "  app meanwhile (req/s)" "${prune_rps:-0}"
	printf '%-44s %14s\n' "RSS idle app / relay / worker (MiB)" "$(mib "$app_idle") / $(mib "$relay_idle") / $(mib "$worker_idle")"
	printf '%-44s %14s\n' "RSS peak under load app / relay / worker" "$(mib "$app_load") / $(mib "$relay_load") / $(mib "$worker_load")"
	if [ "$hist_n" -gt 0 ]; then
		printf '\nwith %s rows of history in each table (loaded in %s s)\n' "$hist_n" "$hist_load_s"
		printf '%-44s %14s %14s %7s\n' "measure" "history" "empty" "ratio"
		printf '%-44s %14s %14s %7s\n' "app POST /customers, 64 conn (req/s)" "$(g app_rps.history)" "$(g app_rps.empty)" "$(ratio "$(g app_rps.history)" "$(g app_rps.empty)")"
		printf '%-44s %14s %14s\n' "  app p50 / p99 latency (ms)" "$(g app_p50.history) / $(g app_p99.history)" "$(g app_p50.empty) / $(g app_p99.empty)"
		printf '%-44s %14s %14s %7s\n' "  beside: empty tables, same server (req/s)" "$(g app_rps.history)" "$(g app_rps.beside)" "$(ratio "$(g app_rps.history)" "$(g app_rps.beside)")"
		printf '%-44s %14s %14s\n' "  app p50 / p99 beside (ms)" "$(g app_p50.history) / $(g app_p99.history)" "$(g app_p50.beside) / $(g app_p99.beside)"
		printf '%-44s %s\n' "  rounds with history (req/s / p99 ms)" "${R[app_rounds.history]:-} (medians above)"
		printf '%-44s %s\n' "  rounds beside (req/s / p99 ms)" "${R[app_rounds.beside]:-} (medians above)"
		printf '%-44s %14s %14s\n' "  app non-2xx answers (history / beside)" "$(g app_non2xx.history)" "$(g app_non2xx.beside)"
		printf '%-44s %14s %14s %7s\n' "relay drain of $rows rows (msg/s)" "$(g relay_rate.history)" "$(g relay_rate.empty)" "$(ratio "$(g relay_rate.history)" "$(g relay_rate.empty)")"
		printf '%-44s %14s %14s %7s\n' "  raw publish with properties just before" "$(g raw_pub_near.history)" "$(g raw_pub_near.empty)" "$(ratio "$(g raw_pub_near.history)" "$(g raw_pub_near.empty)")"
		printf '%-44s %14s %14s\n' "  relay over that raw publish" "$(ratio "$(g relay_rate.history)" "$(g raw_pub_near.history)")" "$(ratio "$(g relay_rate.empty)" "$(g raw_pub_near.empty)")"
		printf '%-44s %s\n' "  rounds with history (msg/s / raw)" "${R[relay_rounds.history]:-} (median above)"
		printf '%-44s %s\n' "  rounds on empty tables (msg/s / raw)" "${R[relay_rounds.empty]:-} (median above)"
		printf '%-44s %14s %14s %7s\n' "worker drain of $rows msgs (msg/s)" "$(g worker_rate.history)" "$(g worker_rate.empty)" "$(ratio "$(g worker_rate.history)" "$(g worker_rate.empty)")"
		printf '%-44s %14s %14s\n' "  broker CPU per message (us)" "$(g worker_mq_us.history)" "$(g worker_mq_us.empty)"
		printf '%-44s %14s %14s %7s\n' "  raw consume just before (msg/s)" "$(g raw_con.history)" "$(g raw_con.empty)" "$(ratio "$(g raw_con.history)" "$(g raw_con.empty)")"
		printf '%-44s %14s %14s\n' "  worker over that raw consume" "$(ratio "$(g worker_rate.history)" "$(g raw_con.history)")" "$(ratio "$(g worker_rate.empty)" "$(g raw_con.empty)")"
		printf '%-44s %14s %14s %7s\n' "e2e at $e2e_rate/s: p50 (ms; ratio empty/history)" "$(g e2e_p50.history)" "$(g e2e_p50.empty)" "$(ratio "$(g e2e_p50.empty)" "$(g e2e_p50.history)")"
		printf '%-44s %14s %14s %7s\n' "e2e at $e2e_rate/s: p99 (ms; ratio empty/history)" "$(g e2e_p99.history)" "$(g e2e_p99.empty)" "$(ratio "$(g e2e_p99.empty)" "$(g e2e_p99.history)")"
		printf '%-44s %14s %14s\n' "  e2e created / effects" "$(g e2e_ok.history) / $(g e2e_fx.history)" "$(g e2e_ok.empty) / $(g e2e_fx.empty)"
		printf '%-44s %14s %14s %7s\n' "  p50 beside: empty tables, same server (ms)" "$(g e2e_p50.history)" "$(g e2e_p50.beside)" "$(ratio "$(g e2e_p50.beside)" "$(g e2e_p50.history)")"
		printf '%-44s %14s %14s %7s\n' "  p99 beside: empty tables, same server (ms)" "$(g e2e_p99.history)" "$(g e2e_p99.beside)" "$(ratio "$(g e2e_p99.beside)" "$(g e2e_p99.history)")"
		printf '%-44s %14s %14s\n' "  e2e created / effects beside" "$(g e2e_ok.history) / $(g e2e_fx.history)" "$(g e2e_ok.beside) / $(g e2e_fx.beside)"
		printf '%-44s %s\n' "  rounds with history (p50/p99 ms)" "${R[e2e_rounds.history]:-} (medians above)"
		printf '%-44s %s\n' "  rounds beside (p50/p99 ms)" "${R[e2e_rounds.beside]:-} (medians above)"
		printf '%-44s %s\n' "  p50 with history minus beside, by round" "${R[e2e_gaps]:-} ms (median ${R[e2e_gap]:-} ms)"
		printf '%-44s %s\n' "  rows deleted per request, by round" "history ${R[e2e_dels.history]:-}; beside ${R[e2e_dels.beside]:-} ($hist_old of each table past ${hist_keep_h} h at each history start)"
		printf '%-44s %s\n' "  the app's answer p50 (ms), by round" "history ${R[e2e_https.history]:-}; beside ${R[e2e_https.beside]:-}"
		printf '%-44s %s\n' "  row lock waits, by round" "history ${R[e2e_lockws.history]:-}; beside ${R[e2e_lockws.beside]:-}"
		printf '%-44s %14s\n' "  pages read from disk meanwhile (pool MiB)" "$hist_reads ($hist_pool)"
		printf 'tables (rows, data MiB, index MiB):\n'
		sed 's/^/  /' "$out/history-sizes.txt"
		printf '%-44s %14s %14s\n' "key form at history, inserts of 500" "rows/s" "bytes/row"
		printf '%-44s %14s %14s\n' "  version 7, VARCHAR(36) (the schema)" "$(g keys_rate._bench_key36)" "$(g keys_bytes._bench_key36)"
		printf '%-44s %14s %14s\n' "  version 7, VARBINARY(16)" "$(g keys_rate._bench_key16)" "$(g keys_bytes._bench_key16)"
		printf '%-44s %14s %14s\n' "  version 4 (random), VARCHAR(36)" "$(g keys_rate._bench_key36r)" "$(g keys_bytes._bench_key36r)"
	fi
	bl_table
	printf '(%s cores; servers and load on this machine; raw limits measured in this run)\n' "$cpus"
} | tee "$out/table.txt"

# rounds_json <key>: R[<key>] ("a/b ...": p50/p99, or msg/s / raw) as
# [[a, b], ...].
rounds_json() {
	local x js="" sep=""
	for x in ${R[$1]:-}; do
		js+="$sep[${x%/*}, ${x#*/}]"
		sep=", "
	done
	printf '[%s]' "$js"
}
hist_json=null
if [ "$hist_n" -gt 0 ]; then
	hist_json="{ \"rows\": $hist_n, \"load_seconds\": $hist_load_s, \"buffer_pool_mib\": $hist_pool, \"pages_read\": $hist_reads,
    \"app_req_per_s\": $(g app_rps.history), \"app_ratio\": $(ratio "$(g app_rps.history)" "$(g app_rps.empty)"),
    \"app_req_per_s_beside\": $(g app_rps.beside), \"app_ratio_beside\": $(ratio "$(g app_rps.history)" "$(g app_rps.beside)"),
    \"app_req_per_s_p99_ms_by_round\": $(rounds_json app_rounds.history), \"app_req_per_s_p99_ms_by_round_beside\": $(rounds_json app_rounds.beside),
    \"relay_msg_per_s\": $(g relay_rate.history), \"relay_ratio\": $(ratio "$(g relay_rate.history)" "$(g relay_rate.empty)"),
    \"raw_publish_props_per_s\": $(g raw_pub_near.history), \"raw_publish_props_per_s_empty\": $(g raw_pub_near.empty), \"relay_over_raw_publish\": $(ratio "$(g relay_rate.history)" "$(g raw_pub_near.history)"), \"relay_over_raw_publish_empty\": $(ratio "$(g relay_rate.empty)" "$(g raw_pub_near.empty)"),
    \"relay_msg_per_s_raw_by_round\": $(rounds_json relay_rounds.history), \"relay_msg_per_s_raw_by_round_empty\": $(rounds_json relay_rounds.empty),
    \"worker_msg_per_s\": $(g worker_rate.history), \"worker_ratio\": $(ratio "$(g worker_rate.history)" "$(g worker_rate.empty)"),
    \"worker_broker_cpu_us_per_msg\": $(g worker_mq_us.history), \"raw_consume_per_s\": $(g raw_con.history), \"worker_over_raw_consume\": $(ratio "$(g worker_rate.history)" "$(g raw_con.history)"),
    \"e2e_p50_ms\": $(g e2e_p50.history), \"e2e_p99_ms\": $(g e2e_p99.history), \"e2e_p50_ratio\": $(ratio "$(g e2e_p50.empty)" "$(g e2e_p50.history)"), \"e2e_p99_ratio\": $(ratio "$(g e2e_p99.empty)" "$(g e2e_p99.history)"),
    \"latency_file_round\": $(g e2e_round.history), \"e2e_p50_p99_by_round\": $(rounds_json e2e_rounds.history),
    \"p50_gap_ms_by_round\": [$(echo "${R[e2e_gaps]:-}" | sed 's/ /, /g')], \"p50_gap_ms_median\": ${R[e2e_gap]:-null},
    \"aged_rows_at_each_start\": $hist_old, \"aged_past_hours\": $hist_keep_h, \"deletes_per_request_by_round\": [$(echo "${R[e2e_dels.history]:-}" | sed 's/ /, /g')],
    \"http_p50_ms_by_round\": [$(echo "${R[e2e_https.history]:-}" | sed 's/ /, /g')], \"row_lock_waits_by_round\": [$(echo "${R[e2e_lockws.history]:-}" | sed 's/ /, /g')],
    \"beside\": { \"e2e_p50_ms\": $(g e2e_p50.beside), \"e2e_p99_ms\": $(g e2e_p99.beside), \"e2e_p50_ratio\": $(ratio "$(g e2e_p50.beside)" "$(g e2e_p50.history)"), \"e2e_p99_ratio\": $(ratio "$(g e2e_p99.beside)" "$(g e2e_p99.history)"),
      \"latency_file_round\": $(g e2e_round.beside), \"e2e_p50_p99_by_round\": $(rounds_json e2e_rounds.beside),
      \"http_p50_ms_by_round\": [$(echo "${R[e2e_https.beside]:-}" | sed 's/ /, /g')], \"row_lock_waits_by_round\": [$(echo "${R[e2e_lockws.beside]:-}" | sed 's/ /, /g')] },
    \"keys\": { \"v7_varchar36_rows_per_s\": $(g keys_rate._bench_key36), \"v7_varbinary16_rows_per_s\": $(g keys_rate._bench_key16), \"v4_varchar36_rows_per_s\": $(g keys_rate._bench_key36r),
      \"v7_varchar36_bytes_per_row\": $(g keys_bytes._bench_key36), \"v7_varbinary16_bytes_per_row\": $(g keys_bytes._bench_key16), \"v4_varchar36_bytes_per_row\": $(g keys_bytes._bench_key36r) } }"
fi
cat >"$out/result.json" <<JSON
{
  "cores": $cpus,
  "raw": { "txn_per_s_64conn": ${raw_txn:-0}, "publish_per_s_1000_inflight": ${raw_pub:-0}, "publish_props_per_s_1000_inflight": ${raw_pub_props:-0}, "consume_per_s_prefetch_500": ${raw_con:-0}, "consume_prefetch": $raw_prefetch, "consume_ack_every": $raw_ack_every },
  "app": { "req_per_s_64conn": $(g app_rps.empty), "p50_ms": $(g app_p50.empty), "p99_ms": $(g app_p99.empty), "non_2xx": $(g app_non2xx.empty), "ratio": $(ratio "$(g app_rps.empty)" "$raw_txn") },
  "relay": { "rows": $rows, "seconds": $(g relay_s.empty), "msg_per_s": $(g relay_rate.empty), "ratio": $(ratio "$(g relay_rate.empty)" "$raw_pub_props"), "ratio_vs_bare": $(ratio "$(g relay_rate.empty)" "$raw_pub") },
  "worker": { "messages": $rows, "seconds": $(g worker_s.empty), "msg_per_s": $(g worker_rate.empty), "ratio": $(ratio "$(g worker_rate.empty)" "$raw_con"), "broker_cpu_us_per_msg": $(g worker_mq_us.empty) },
  "e2e": { "rate": $e2e_rate, "seconds": $e2e_secs, "created": $(g e2e_ok.empty), "effects": $(g e2e_fx.empty), "p50_ms": $(g e2e_p50.empty), "p99_ms": $(g e2e_p99.empty), "max_ms": $(g e2e_max.empty) },
  "e2e_single": { "rate": 10, "seconds": $single_secs, "p50_ms": ${one_p50:-0}, "p99_ms": ${one_p99:-0}, "max_ms": ${one_max:-0} },
  "pruning": { "keys": $prune_n, "seconds": $prune_s, "keys_per_s": $prune_rate, "app_req_per_s": ${prune_rps:-0} },
  "rss_kib": { "app_idle": $app_idle, "relay_idle": $relay_idle, "worker_idle": $worker_idle, "app_peak": $app_load, "relay_peak": $relay_load, "worker_peak": $worker_load },
  "history": $hist_json,
  "binlog": $(bl_json)
}
JSON
say "result: $out/result.json"

# The charts of this run, beside result.json (`make bench-charts` draws
# them again from this folder): one that cannot be drawn is one warning
# here, never the end of the numbers above.
if bash tests/load/bench_charts.sh "$out" >>"$out/charts.log" 2>&1; then
	say "charts: $(cd "$out" && echo ./*.svg)"
else
	warn "charts: $(sed -nE 's/^bench(-charts)?: warning: //p' "$out/charts.log" |
		head -n 1) (all: $out/charts.log)"
fi
