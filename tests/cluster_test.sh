#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions run through wait_for() look unreachable
# tests/cluster_test.sh - a broker failover for real (issue 17), in
# make test (tests/run.sh) with the ASan+UBSan daemons.
#
# Against the test set's 3-node RabbitMQ cluster (OUTBOX_MQ_NODES=3
# scripts/infra.sh start; scripts/ports.env OUTBOX_CLUSTER_MQ_*) with
# quorum queues and the test MariaDB:
#  1. docker-compose.yml's profile "cluster": RabbitMQ pinned to a minor
#     version, three nodes in rabbitmq-cluster.conf, `docker-compose
#     config -q` with scripts/compose-cluster.env (when installed);
#  2. a fresh cluster's start (its data removed): with node 3's AMQP port
#     held by a listener it fails, and leaves no node and no epmd running;
#     then it starts, nodes 2 and 3 joining node 1 one after another
#     (scripts/infra.sh's log);
#  3. the cluster up (3 nodes running), the tables emptied, the queues
#     outbox and outbox.dlq deleted (the daemons declare them again, of
#     type quorum), then app, 2 relays and 2 workers, each as its own
#     login, given every node (RABBITMQ_HOSTS), none restarted by anyone;
#  4. CLUSTER_REQUESTS POSTs (2000) at CLUSTER_RATE (100/s) through
#     outbox-chaos-load, the id of every 201 kept; once a third of them
#     are handled, kill -9 of the node that leads the queue outbox
#     (rabbitmqctl list_queues leader);
#  5. then: the system settles (no unpublished row, a welcome email per
#     customer, queue outbox empty) within CLUSTER_SETTLE_S (60 s); every
#     201 handled exactly once in effect (tests/load/exact_check.sh);
#     outbox.dlq empty (no healthy message dead-lettered); every daemon
#     still running, connected (outbox_*_broker_connected_info) to a
#     surviving node, never to the killed one after the kill; the killed
#     node back in the cluster (mq-start N); each daemon exits 0 on
#     SIGTERM, no sanitizer report in its log;
#  6. two of three nodes down (kill -9 of nodes 2 and 3): the queue has no
#     majority, CLUSTER_MINORITY_POSTS (50) POSTs, and for
#     CLUSTER_MINORITY_S (10 s) no outbox row may be marked published (no
#     confirm came); nodes back: everything delivered, every 201 once,
#     nothing dead-lettered (CLUSTER_MINORITY_POSTS=0 leaves it out);
#  7. CLUSTER_ROLLING_POSTS > 0 (make chaos-cluster: 12,000): each node
#     stopped and started in turn under that load; the same checks.
# Reports the longest time without progress (no welcome handled) after
# the kill and the duplicates the workers absorbed.  Prints "cluster: N
# passed, N failed" (tests/run.sh).  Stops the cluster at the end unless
# it was running before (CLUSTER_KEEP=1 keeps it; either way its data is
# new: step 2 removes it).
#
# Environment: CLUSTER_BIN (OUTBOX_BIN, else <BUILD_ROOT>/san/bin),
# CLUSTER_REQUESTS, CLUSTER_RATE, CLUSTER_SETTLE_S, OUTBOX_TEST_LOGS.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
use_test_servers
export OUTBOX_MQ_NODES=3
unset RABBITMQ_QUEUE_TYPE RABBITMQ_HOSTS
# shellcheck source=scripts/env.sh
. scripts/env.sh
# shellcheck source=scripts/roles.env
. scripts/roles.env
TEST_NAME=cluster
LIB_NAME=cluster
# shellcheck source=tests/check.sh
. tests/check.sh
build=${BUILD_ROOT:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
BIN=${CLUSTER_BIN:-${OUTBOX_BIN:-$build/san/bin}}
LOGS=${OUTBOX_TEST_LOGS:-$build/test-logs}/cluster
REQUESTS=${CLUSTER_REQUESTS:-2000}
RATE=${CLUSTER_RATE:-100}
SETTLE_S=${CLUSTER_SETTLE_S:-60}
rm -rf "$LOGS"
mkdir -p "$LOGS"
need_tools curl docker-compose

infra() { bash scripts/infra.sh "$@" >>"$LOGS/infra.log" 2>&1; }
mqctl() { bash scripts/infra.sh mq-ctl -q "$@" 2>>"$LOGS/infra.log"; }
# shellcheck disable=SC2153 # DB_NAME: from .local.env (scripts/env.sh)
sql() { bash scripts/infra.sh db-sql -N -B -D "$DB_NAME" "$@"; }
# shellcheck source=tests/load/exact_check.sh
. tests/load/exact_check.sh

# ---- 1. the compose profile ------------------------------------------
compose=docker-compose.yml
profile_images=$(sed -n '/^x-rabbitmq-node:/,/^[a-z]/s/^  image: *//p' "$compose")
check "compose: the cluster's RabbitMQ pinned to a minor version (image $profile_images)" \
	grep -qE '^rabbitmq:3\.[0-9]+-management$' <<<"$profile_images"
check "compose: the single node on the same image" \
	grep -qxF "    image: $profile_images" "$compose"
check "compose: three nodes by classic config peer discovery" \
	test "$(grep -c '^cluster_formation\.classic_config\.nodes\.[0-9] = rabbit@rabbitmq[0-9]$' scripts/rabbitmq-cluster.conf)" = 3
compose_hosts() {
	docker-compose --env-file scripts/compose-cluster.env -f "$compose" config 2>/dev/null |
		grep -c 'RABBITMQ_HOSTS: rabbitmq1:5672,rabbitmq2:5672,rabbitmq3:5672'
}
check "compose: docker-compose config -q with the cluster profile" \
	docker-compose -f "$compose" --profile cluster config -q
check "compose: with scripts/compose-cluster.env, relay and worker get the three nodes" \
	test "$(compose_hosts)" = 2
# The Erlang flags of scripts/infra.sh's brokers, on the single node and
# the cluster's three alike.
mq_vheap=$(sed -n 's/^MQ_MIN_BIN_VHEAP=\([0-9]*\).*/\1/p' scripts/infra.sh)
compose_erl() {
	docker-compose -f "$compose" --profile cluster config 2>/dev/null |
		grep -c "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: +hmbs $mq_vheap\$"
}
check "compose: every broker gets infra.sh's +hmbs ${mq_vheap:-(not found)}" \
	test "$(compose_erl)" = 4

# ---- 2. a fresh cluster's start ----------------------------------------
# From empty data (the cluster the rest of the test uses): nodes 2 and 3
# join node 1 one after another (joining it at once, both could fail to
# merge mnesia's schema: a CI run); and a start that fails stops the nodes
# it started and their epmd (a failed CI run left them running, and the
# next run's start found their ports taken).
running_nodes() { bash scripts/infra.sh status 2>/dev/null | grep -c '^infra: rabbitmq: running'; }
cluster_was_up=0
[ "$(running_nodes)" = 3 ] && cluster_was_up=1
cluster_dir=$OUTBOX_VAR/rabbitmq-cluster
infra mq-stop
rm -rf "$cluster_dir"
read -ra mq_ports <<<"$OUTBOX_MQ_PORTS"
"$BIN/outbox-sqlproxy" "${mq_ports[2]}" 1 >"$LOGS/holder.log" 2>&1 &
holder=$!
check "node 3's AMQP port ${mq_ports[2]} held by a listener" \
	wait_for 10 grep -q listening "$LOGS/holder.log"
fails() { ! "$@"; }
check "a fresh cluster's start fails while node 3's port is held" fails infra mq-start
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
check "the failed start left no node running (running: $(running_nodes))" test "$(running_nodes)" = 0
epmd_open() { (exec 3<>"/dev/tcp/127.0.0.1/$OUTBOX_MQ_EPMD_PORT") 2>/dev/null; }
check "nor their epmd (127.0.0.1:$OUTBOX_MQ_EPMD_PORT)" fails epmd_open
infra mq-stop # (what such a start left, before its data goes)
rm -rf "$cluster_dir"
log_at=$(wc -c <"$LOGS/infra.log")
# joined_in_turn: every "N joins 1" of this start followed by its "N
# joined 1" before the next node's, and as many as the nodes after node 1.
joined_in_turn() {
	tail -c +"$((log_at + 1))" "$LOGS/infra.log" | awk -v want=$((OUTBOX_MQ_NODES - 1)) '
		/^infra: rabbitmq: [^ ]+ joins / { if (open != "") bad = 1; open = $3 }
		/^infra: rabbitmq: [^ ]+ joined / { if ($3 != open) bad = 1; else { open = ""; n++ } }
		END { exit !(bad == 0 && open == "" && n == want) }'
}

# ---- 3. the cluster, the daemons ---------------------------------------
t0=$(now_us)
if ! infra start; then
	check "the cluster and MariaDB start (log $LOGS/infra.log)" false
	tail -n 20 "$LOGS/infra.log"
	finish
fi
echo "cluster: servers up in $(secs "$t0") s (RABBITMQ_HOSTS=$RABBITMQ_HOSTS)"
check "nodes 2 and 3 joined node 1 one after another ($(grep -c ' join' "$LOGS/infra.log") join lines in $LOGS/infra.log)" joined_in_turn
for b in outbox-app outbox-relay outbox-worker outbox-migrate outbox-chaos-load; do
	[ -x "$BIN/$b" ] || { check "$BIN/$b is built" false; finish; }
done
"$BIN/outbox-migrate" >"$LOGS/migrate.log" 2>&1 || { check "migrations" false; finish; }
sql -e "DELETE FROM idempotency_keys; DELETE FROM welcome_emails;
	DELETE FROM processed_messages; DELETE FROM outbox; DELETE FROM customers;" ||
	{ check "tables emptied" false; finish; }
for q in outbox outbox.dlq; do mqctl delete_queue "$q" >/dev/null 2>&1 || true; done

APP_PORT=$(free_port)
declare -A pid=() port=()
# start NAME KIND VAR=VALUE...: the daemon as its own login, its log
# $LOGS/NAME.log.
start() {
	local name=$1 kind=$2 u=${2^^}
	shift 2
	local db_user="OUTBOX_${u}_DB_USER" db_pass="OUTBOX_${u}_DB_PASS"
	local mq_user="OUTBOX_${u}_MQ_USER" mq_pass="OUTBOX_${u}_MQ_PASS"
	env DB_USER="${!db_user}" DB_PASS="${!db_pass}" \
		RABBITMQ_USER="${!mq_user:-}" RABBITMQ_PASS="${!mq_pass:-}" "$@" \
		"$BIN/outbox-$kind" >"$LOGS/$name.log" 2>&1 &
	pid[$name]=$!
}
start app app APP_PORT="$APP_PORT" APP_BIND=127.0.0.1 APP_METRICS_PORT=0
for d in relay-1 relay-2 worker-1 worker-2; do
	port[$d]=$(free_port "$APP_PORT" "${port[@]}")
	v=RELAY_METRICS_PORT
	[ "${d%-*}" = relay ] || v=WORKER_METRICS_PORT
	start "$d" "${d%-*}" "$v=${port[$d]}"
done
daemons=(relay-1 relay-2 worker-1 worker-2)
stop_all() {
	local d
	for d in "${!pid[@]}"; do kill -TERM "${pid[$d]}" 2>/dev/null; done
	[ -z "${load_pid:-}" ] || kill "$load_pid" 2>/dev/null
	[ -z "${sampler_pid:-}" ] || kill "$sampler_pid" 2>/dev/null
	if [ "$cluster_was_up" = 0 ] && [ "${CLUSTER_KEEP:-0}" != 1 ]; then
		bash scripts/infra.sh mq-stop >>"$LOGS/infra.log" 2>&1
	fi
}
trap 'stop_all; exit 1' INT TERM
ready() { curl -sf -m 2 -o /dev/null "http://127.0.0.1:$1/readyz"; }
all_ready() {
	local d
	ready "$APP_PORT" || return 1
	for d in "${daemons[@]}"; do ready "${port[$d]}" || return 1; done
}
check "app, 2 relays and 2 workers ready within 60 s" wait_for 60 all_ready
all_ready || { stop_all; finish; }
qtype=$(mqctl list_queues name type --no-table-headers | awk '$1 == "outbox" { print $2 }')
check "the queue outbox is a quorum queue (got ${qtype:-none})" test "$qtype" = quorum

# metric D NAME: NAME's value (summed over its labels) on daemon D.
metric() {
	curl -sf -m 2 "http://127.0.0.1:${port[$1]}/metrics" |
		awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2; f = 1 } END { if (f) printf "%d\n", s }'
}
# broker D: the host:port daemon D is connected to (none: "").
broker() {
	curl -sf -m 2 "http://127.0.0.1:${port[$1]}/metrics" |
		awk '/^outbox_(relay|worker)_broker_connected_info\{/ && $2 == 1 {
			if (match($1, /host="[^"]*"/)) print substr($1, RSTART + 6, RLENGTH - 7) }' | head -n 1
}
handled() { echo $(( $(metric worker-1 outbox_worker_messages_handled_total || echo 0) +
	$(metric worker-2 outbox_worker_messages_handled_total || echo 0) )); }

# ---- 4. the load, the kill ---------------------------------------------
IDS=$LOGS/ids
: >"$IDS"
# The sampler: "<ms> <handled>" every 0.1 s, for the time without progress.
( while :; do echo "$(now_ms) $(handled)"; sleep 0.1; done ) >"$LOGS/progress" 2>/dev/null &
sampler_pid=$!
"$BIN/outbox-chaos-load" "$APP_PORT" "$REQUESTS" "$RATE" "cluster-$$" "$IDS" \
	>"$LOGS/load.json" 2>"$LOGS/load.err" &
load_pid=$!
third() { [ "$(handled)" -ge $((REQUESTS / 3)) ]; }
check "a third of the POSTs handled within 60 s" wait_for 60 third
leader=$(mqctl list_queues name leader --no-table-headers | awk '$1 == "outbox" { print $2 }')
leader_port=$(sed -n 's/^outbox-\([0-9]*\)@localhost$/\1/p' <<<"$leader")
leader_n=0 n=0 others=
for p in $OUTBOX_MQ_PORTS; do
	n=$((n + 1))
	if [ "$p" = "$leader_port" ]; then leader_n=$n; else others+="${others:+|}$p"; fi
done
check "the leader of outbox found (${leader:-none}: node $leader_n)" test "$leader_n" -gt 0
declare -A before=()
on_leader=()
for d in "${daemons[@]}"; do
	before[$d]=$(broker "$d")
	[ -z "$leader_port" ] || [ "${before[$d]##*:}" != "$leader_port" ] || on_leader+=("$d")
done
echo "cluster: before the kill: $(for d in "${daemons[@]}"; do printf '%s on %s; ' "$d" "${before[$d]:-?}"; done)"
t_kill=$(now_ms)
if [ "$leader_n" -gt 0 ]; then
	check "kill -9 of node $leader_n ($leader), $(( (t_kill - t0 / 1000) / 1000 )) s in; daemons on it: ${on_leader[*]:-none}" \
		infra mq-kill "$leader_n"
fi
# moved: every daemon connected, none to the killed node.
moved() {
	local d b
	for d in "${daemons[@]}"; do
		b=$(broker "$d")
		[ -n "$b" ] && [ -n "$leader_port" ] && [ "${b##*:}" != "$leader_port" ] || return 1
	done
}
check "every daemon connected to a surviving node within 30 s" wait_for 30 moved
echo "cluster: after the kill: $(for d in "${daemons[@]}"; do printf '%s on %s; ' "$d" "$(broker "$d")"; done)"
for d in "${on_leader[@]}"; do
	check "$d says in its log that it moved to another node" \
		grep -qE "127\.0\.0\.1:($others)" "$LOGS/$d.log"
done
wait "$load_pid"
load_rc=$?
load_pid=
check "outbox-chaos-load ended well (exit $load_rc; $(cat "$LOGS/load.json" 2>/dev/null))" test "$load_rc" = 0

# ---- 5. settled, exact, no DLQ -----------------------------------------
queue_n() { mqctl list_queues name messages --no-table-headers | awk -v q="$1" '$1 == q { print $2 }'; }
settled() {
	local r unpub ncust nwel
	r=$(sql -e "SELECT (SELECT COUNT(*) FROM outbox WHERE published_at IS NULL),
		(SELECT COUNT(*) FROM customers), (SELECT COUNT(*) FROM welcome_emails)" 2>/dev/null) || return 1
	read -r unpub ncust nwel <<<"$r"
	[ "$unpub" = 0 ] && [ "$ncust" = "$nwel" ] && [ "$(queue_n outbox)" = 0 ]
}
check "settled within ${SETTLE_S} s (no unpublished row, a welcome email per customer, queue empty)" \
	wait_for "$SETTLE_S" settled
t_settled=$(now_ms)
kill "$sampler_pid" 2>/dev/null
wait "$sampler_pid" 2>/dev/null
sampler_pid=
fail=()
exact_check "$IDS" "$LOGS"
check "every 201 handled exactly once in effect ($acked 201s: lost customers $c_lost_cust, lost effects $c_lost_eff, doubled $c_doubled; ${fail[*]:-})" \
	test "${#fail[@]}" = 0 -a "$acked" -gt 0
dlq=$(queue_n outbox.dlq)
check "no message dead-lettered (outbox.dlq: ${dlq:-?})" test "${dlq:-?}" = 0
# The longest gap between two increases of the handled count, from the
# kill to the settling (or to the end of the sampling: no progress at all
# counts to there).
stall=$(awk -v a="$t_kill" -v b="$t_settled" '
	$1 >= a && $1 <= b && $2 != "" {
		if (last == "" ) { last = $1; v = $2; next }
		if ($2 > v) { if ($1 - last > m) m = $1 - last; last = $1; v = $2 }
		end = $1
	} END { if (end - last > m) m = end - last; printf "%d\n", m }' "$LOGS/progress")
dups=$(( $(metric worker-1 outbox_worker_messages_duplicate_total || echo 0) +
	$(metric worker-2 outbox_worker_messages_duplicate_total || echo 0) ))
published=$(( $(metric relay-1 outbox_relay_messages_published_total || echo 0) +
	$(metric relay-2 outbox_relay_messages_published_total || echo 0) ))
echo "cluster: $acked 201s; published $published (2 relays); longest time without progress after the kill: $stall ms; duplicates absorbed by the workers: $dups"
alive() { local d; for d in "${!pid[@]}"; do kill -0 "${pid[$d]}" 2>/dev/null || return 1; done; }
check "no daemon exited during the failover" alive

# ---- the killed node back ------------------------------------------------
if [ "$leader_n" -gt 0 ]; then
	check "node $leader_n starts again and is in the cluster" infra mq-start "$leader_n"
	running=$(mqctl cluster_status --formatter json | grep -o '"running_nodes":\[[^]]*\]' | grep -o '@' | wc -l)
	check "3 nodes running again (got $running)" test "$running" = 3
fi

# after WHEN: the checks after a fault: settled, every 201 once, nothing
# dead-lettered, no daemon exited.
after() {
	check "everything delivered within ${SETTLE_S} s after $1" wait_for "$SETTLE_S" settled
	fail=()
	exact_check "$IDS" "$LOGS"
	check "every 201 handled exactly once in effect after $1 ($acked 201s; ${fail[*]:-})" \
		test "${#fail[@]}" = 0
	dlq=$(queue_n outbox.dlq)
	check "nothing dead-lettered after $1 (outbox.dlq: ${dlq:-?})" test "${dlq:-?}" = 0
	check "no daemon exited by $1" alive
}

# ---- 6. two of three nodes down ------------------------------------------
# The queue loses its majority: nothing published is confirmed, so the
# relay marks nothing published (nothing is lost); nodes back: all of it
# delivered.  Node 1 stays (the daemons on the others move to it).
minority() {
	local k=$MINORITY_POSTS r
	infra mq-kill 2 3 || return 1
	"$BIN/outbox-chaos-load" "$APP_PORT" "$k" 50 "cluster-$$-minority" "$IDS" \
		>"$LOGS/load-minority.json" 2>"$LOGS/load-minority.err" ||
		{ echo "cluster: minority load: $(cat "$LOGS/load-minority.json")"; return 1; }
	# The rows of these POSTs (their customers' emails): none published.
	grew() {
		r=$(sql -e "SELECT COUNT(*) FROM outbox o JOIN customers c
			ON c.id = CAST(JSON_VALUE(o.payload, '\$.id') AS CHAR(36) CHARACTER SET ascii) COLLATE ascii_bin
			WHERE c.email LIKE 'cluster-$$-minority-%' AND o.published_at IS NOT NULL") &&
			[ "$r" -gt 0 ]
	}
	# An observation window, not a wait for something to happen: during
	# it, no row may be marked published.
	if wait_for "$MINORITY_S" grew; then
		echo "cluster: $r rows marked published without a majority"
		return 1
	fi
	echo "cluster: ${MINORITY_S} s with 2 of 3 nodes down: $k POSTs, no row marked published"
}
MINORITY_POSTS=${CLUSTER_MINORITY_POSTS:-50}
MINORITY_S=${CLUSTER_MINORITY_S:-10}
if [ "$MINORITY_POSTS" -gt 0 ] && alive && settled; then
	t_min=$(now_us)
	check "2 of 3 nodes down (kill -9 of nodes 2 and 3): $MINORITY_POSTS POSTs, none marked published for ${MINORITY_S} s" minority
	check "nodes 2 and 3 start again" infra mq-start 2 3
	after "the majority is back"
	echo "cluster: the majority part took $(secs "$t_min") s"
fi

# ---- 7. a rolling restart under load (make chaos-cluster) ------------------
# Each node stopped and started again in turn while POSTs flow: a
# majority always up, so nothing may be lost.
ROLLING_POSTS=${CLUSTER_ROLLING_POSTS:-0}
rolling() {
	local n lp rc=0
	"$BIN/outbox-chaos-load" "$APP_PORT" "$ROLLING_POSTS" "$RATE" "cluster-$$-rolling" "$IDS" \
		>"$LOGS/load-rolling.json" 2>"$LOGS/load-rolling.err" &
	lp=$!
	for n in $(seq 1 "$OUTBOX_MQ_NODES"); do
		{ infra mq-stop "$n" && infra mq-start "$n"; } || { rc=1; break; }
		echo "cluster: rolling restart: node $n restarted ($(secs "$t_roll") s in)"
	done
	wait "$lp" || rc=1
	return "$rc"
}
if [ "$ROLLING_POSTS" -gt 0 ] && alive && settled; then
	t_roll=$(now_us)
	check "rolling restart of the $OUTBOX_MQ_NODES nodes under $ROLLING_POSTS POSTs at $RATE/s" rolling
	after "the rolling restart"
fi

# ---- stop ---------------------------------------------------------------
for d in "${!pid[@]}"; do kill -TERM "${pid[$d]}" 2>/dev/null; done
for d in "${!pid[@]}"; do
	rc=0
	wait "${pid[$d]}" || rc=$?
	check "$d exits 0 on SIGTERM (got $rc; log $LOGS/$d.log)" test "$rc" = 0
done
pid=()
reports=$(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$LOGS"/*.log 2>/dev/null || true)
check "no sanitizer report in the daemons' logs${reports:+ ($reports)}" test -z "$reports"
stop_all
finish
