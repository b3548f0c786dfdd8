#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions run through wait_for() look unreachable
# tests/load/chaos.sh - the chaos run (README, "Chaos run"; issue 6).
#
#   make chaos                       release build, 20,000 POSTs at 300/s
#   CHAOS_BIN=<bin folder> bash tests/load/chaos.sh      (tests/run.sh: san)
#
# Against the test servers of scripts/ports.env (already started):
#  1. empties the tables and the queues, applies the migrations;
#  2. runs app, relay and worker, each as its own database/RabbitMQ user
#     (scripts/roles.env), each under a small supervisor of this script
#     that restarts it when it exits (docker compose `restart: on-failure`)
#     and records why it exited: killed by the injector, or on its own
#     (an unexpected exit, which fails the run, whatever its status);
#  3. runs outbox-chaos-load (N POSTs at a steady rate, open loop, on
#     kept-alive connections that live across the app's restarts); the
#     id of every 201 goes to a file;
#  4. meanwhile a fault injector, at random moments, does one of:
#     kill -9 app | relay | worker, SIGTERM to the app (half of the app's
#     faults: it must exit 0 within APP_SHUTDOWN_TIMEOUT + 5 s under
#     that load, then the supervisor starts it again), RabbitMQ stop+start or kill -9+start,
#     MariaDB kill -9+start, and "db-held": MariaDB's redo log held back
#     for 0.2-1 s (tests/fsync_hold.c, preloaded into the server, which is
#     restarted with it at the start of the run), then kill -9+start: every
#     transaction committed in that window was visible to the relay and
#     the app, and is gone after recovery (the phantom-events case); the
#     database refusing writes for a while (SET GLOBAL read_only), a
#     broker disk alarm (it blocks publishing) for a while, the relay
#     frozen (SIGSTOP, then SIGCONT), and a lost COMMIT reply (the daemons
#     reach MariaDB through outbox-sqlproxy, which forwards the next
#     COMMIT and then cuts that connection).  The
#     schedule (kinds, gaps, downtimes) comes from a seed, printed;
#     CHAOS_SEED=<n> replays it.  The first faults are one of each kind, in
#     a random order; the others are random; CHAOS_DB_FAULTS=<n> makes at
#     least n of them database kills (db and db-held, alternately).
#  5. after the load and the faults: the app must answer /readyz and take
#     a short post-fault load (every POST a 201: everything came back by
#     itself); then the system must settle (no unpublished outbox row,
#     as many welcome emails as customers, queue outbox empty) within
#     CHAOS_SETTLE_S; then outbox-audit (audit user, AUDIT_GRACE_S=0) and
#     an exact check of every 201: its customer exists, with exactly one
#     outbox row and exactly one welcome email, from that outbox message;
#  6. SIGTERM to every daemon: each must exit 0 (with the san build, a
#     leak makes it exit non-zero); no daemon log may hold a sanitizer
#     report;
#  7. the phantom-events crash test in a long form: CHAOS_HOLD_ROUNDS
#     kills of a MariaDB of its own, each while a commit that the relay
#     can see is held back (tests/it_durability.c, case "phantom events");
#     no event may be published, nor effect applied, for any of them.
#
# CHAOS_RELAY_MODE=binlog (make chaos RELAY_MODE=binlog; README, "Binlog
# mode"): the same run with the relay reading the binary log.
#  - The test MariaDB is restarted with the binary log (OUTBOX_DB_BINLOG=1,
#    exported, so every db-start of the run has it) and, at the end (or on
#    Ctrl-C), restarted without it, as make test's poll-mode phantom test
#    needs it; the position table is emptied with the others.
#  - Two relays, "relay" and "relay2", in binlog mode on the reader's login
#    (RELAY_LEADER_TIMEOUT_S=5, RELAY_CONFIRM_TIMEOUT_MS=3500, so that a
#    takeover fits in the run): one leads, the other stands by; they
#    reach MariaDB directly, not through the proxy (see there).  The
#    relay faults hit the leader (found from the relays' logs): kill -9
#    (the standby takes over within a second), and SIGSTOP, half of them
#    longer than the leader timeout (6-8.8 s: the server ends the frozen
#    leader's session, the standby takes over, and the old leader, woken
#    up, must stand by without publishing).
#  - db-held holds the binary log's fsync (OUTBOX_HOLD_ONLY=binlog): the
#    commits of that window are written to the binary log, not synced, not
#    visible; after the kill -9 the binary log is cut back to its last
#    synced size (what a power loss leaves: the shim records it), so that
#    recovery rolls them back.  Nothing may be published for them.
#  - Settled means every outbox row has its processed id (the worker
#    handled it), as many welcome emails as customers, the queue empty:
#    published_at is not written in this mode.  outbox-audit does not know
#    the mode yet: its "unpublished longer than the grace" check (which
#    reads published_at) is left out of the verdict, every other one holds.
#  - Step 7 runs the binlog suite's crash test (tests/it_binlog.c, case
#    "crash"): CHAOS_HOLD_ROUNDS kills of a binlog MariaDB of its own with
#    a commit held before its sync, the relay in binlog mode running.
# The report counts the duplicates the worker absorbed and every delivery;
# the run fails when the deliveries pass the bound: the rows, plus for
# each fault one window of copies (the relay's rows in flight,
# RELAY_INFLIGHT_BATCHES x RELAY_BATCH_SIZE, and the worker's unacked
# prefetch, WORKER_PREFETCH): what a fault can make be delivered again.
# Prints a report, then "chaos: 1 passed, 0 failed" (or 0, 1) for
# tests/run.sh; exit status 0 only if everything held.
#
# Environment (defaults): CHAOS_RELAY_MODE (poll, or binlog),
# CHAOS_BIN (<BUILD_ROOT>/release/bin),
# CHAOS_REQUESTS (2000), CHAOS_RATE (200), CHAOS_FAULTS (load seconds / 5,
# at least 5, at most 60), CHAOS_GAP_MIN_S / CHAOS_GAP_MAX_S (2 / 6: wait
# before each fault), CHAOS_SEED (random), CHAOS_SETTLE_S (180),
# CHAOS_LOGS (<BUILD_ROOT>/chaos-logs), CHAOS_APP_PORT (a free port),
# CHAOS_AUDIT_BIN (CHAOS_BIN/outbox-audit), CHAOS_DB_FAULTS (0),
# CHAOS_HOLD_ROUNDS (0: step 7 left out), CHAOS_ITEST (CHAOS_BIN/outbox-itest),
# CHAOS_HOLD_SO (CHAOS_BIN/../lib/outbox-fsync-hold.so; without it, no
# db-held faults), CHAOS_PROXY (CHAOS_BIN/outbox-sqlproxy; without it,
# no lost COMMITs), CHAOS_PROXY_PORT (a free port),
# CHAOS_RELAY_METRICS_PORT and CHAOS_WORKER_METRICS_PORT (0: off; the
# second relay's is 10 above), OUTBOX_TEST_* (the test servers) and
# OUTBOX_HOLD_DB_PORT, OUTBOX_BINLOG_HOLD_DB_PORT (step 7's MariaDB):
# scripts/ports.env.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
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
BIN=${CHAOS_BIN:-$build/release/bin}
LOGS=${CHAOS_LOGS:-$build/chaos-logs}
REQUESTS=${CHAOS_REQUESTS:-2000}
RATE=${CHAOS_RATE:-200}
GAP_MIN=${CHAOS_GAP_MIN_S:-2}
GAP_MAX=${CHAOS_GAP_MAX_S:-6}
SETTLE_S=${CHAOS_SETTLE_S:-180}
AUDIT_BIN=${CHAOS_AUDIT_BIN:-$BIN/outbox-audit}
SEED=${CHAOS_SEED:-$(( $(od -An -N4 -tu4 /dev/urandom | tr -d ' ') % 1000000000 ))}

LIB_NAME=chaos
on_die() { echo "chaos: 0 passed, 1 failed"; }
isnum() { [[ $1 =~ ^[0-9]+$ ]]; }
DB_FAULTS=${CHAOS_DB_FAULTS:-0}
HOLD_ROUNDS=${CHAOS_HOLD_ROUNDS:-0}
ITEST=${CHAOS_ITEST:-$BIN/outbox-itest}
HOLD_SO=${CHAOS_HOLD_SO:-$BIN/../lib/outbox-fsync-hold.so}
PROXY=${CHAOS_PROXY:-$BIN/outbox-sqlproxy}
MODE=${CHAOS_RELAY_MODE:-poll}
case $MODE in
poll) RELAYS=(relay) ;;
binlog) RELAYS=(relay relay2) ;;
*) die "CHAOS_RELAY_MODE=$MODE: poll or binlog" ;;
esac
DAEMONS=(app "${RELAYS[@]}" worker)
RELAY_METRICS=${CHAOS_RELAY_METRICS_PORT:-0}
WORKER_METRICS=${CHAOS_WORKER_METRICS_PORT:-0}
# The chaos relay's and worker's windows (their settings below): what one
# fault can make be delivered again.
RELAY_INFLIGHT=4 RELAY_BATCH=200 WORKER_PREFETCH=500
for v in REQUESTS RATE GAP_MIN GAP_MAX SETTLE_S SEED DB_FAULTS HOLD_ROUNDS \
	RELAY_METRICS WORKER_METRICS; do
	isnum "${!v}" || die "CHAOS_$v=${!v}: not a whole number"
done
{ [ "$RATE" -ge 1 ] && [ "$REQUESTS" -ge 1 ]; } || die "CHAOS_REQUESTS and CHAOS_RATE must be >= 1"
[ "$GAP_MAX" -ge "$GAP_MIN" ] || die "CHAOS_GAP_MAX_S < CHAOS_GAP_MIN_S"
LOAD_S=$(( (REQUESTS + RATE - 1) / RATE ))
FAULTS=${CHAOS_FAULTS:-$(( LOAD_S / 5 < 5 ? 5 : (LOAD_S / 5 > 60 ? 60 : LOAD_S / 5) ))}
{ isnum "$FAULTS" && [ "$FAULTS" -le 200 ]; } || die "CHAOS_FAULTS=$FAULTS: 0..200"
[ "$DB_FAULTS" -le "$FAULTS" ] || die "CHAOS_DB_FAULTS=$DB_FAULTS is more than CHAOS_FAULTS=$FAULTS"

for b in outbox-app outbox-relay outbox-worker outbox-migrate outbox-audit outbox-chaos-load; do
	[ -x "$BIN/$b" ] || die "$BIN/$b is not built (make build chaos-load, or make build-san)"
done
[ "$HOLD_ROUNDS" = 0 ] || [ -x "$ITEST" ] || die "$ITEST is not built (CHAOS_HOLD_ROUNDS needs it)"
bash scripts/infra.sh status >/dev/null 2>&1 ||
	die "the test servers are not running (OUTBOX_SERVERS=test bash scripts/infra.sh start)"

# wait_until_ms T: returns at T (ms since the epoch), polling.
wait_until_ms() { while [ "$(now_ms)" -lt "$1" ]; do sleep 0.1; done; }
sql() { bash scripts/infra.sh db-sql -N -B -D "$DB_NAME" "$@"; }
# exact_check IDS LOGS: every 201 checked (tests/load/exact_check.sh).
# shellcheck source=tests/load/exact_check.sh
. tests/load/exact_check.sh

# ------------------------------------------------------------ the schedule
# Everything random is drawn here, from the seed, before anything starts.
RANDOM=$SEED
all_kinds=(app relay worker db mq db-ro mq-alarm relay-stop)
[ -f "$HOLD_SO" ] && all_kinds+=(db-held)
[ -x "$PROXY" ] && all_kinds+=(lost-commit)
kinds_req=("${all_kinds[@]}")
# one of each kind first, shuffled (Fisher-Yates)
for ((i = ${#kinds_req[@]} - 1; i > 0; i--)); do
	j=$((RANDOM % (i + 1)))
	t=${kinds_req[i]} kinds_req[i]=${kinds_req[j]} kinds_req[j]=$t
done
kinds=()
n_db=0
for ((i = 0; i < FAULTS; i++)); do
	if [ "$i" -lt ${#kinds_req[@]} ]; then k=${kinds_req[i]}; else k=${all_kinds[RANDOM % ${#all_kinds[@]}]}; fi
	case $k in db|db-held) n_db=$((n_db + 1)) ;; esac
	kinds+=("$k")
done
# At least DB_FAULTS database kills: turn random other faults (after the
# first of each kind) into db / db-held, alternately.
i=${#kinds_req[@]}
while [ "$n_db" -lt "$DB_FAULTS" ] && [ "$i" -lt "$FAULTS" ]; do
	case ${kinds[i]} in
	db|db-held) ;;
	*) if [ -f "$HOLD_SO" ] && ((n_db % 2)); then kinds[i]=db-held; else kinds[i]=db; fi
	   n_db=$((n_db + 1)) ;;
	esac
	i=$((i + 1))
done
sched=()
for k in "${kinds[@]}"; do
	# RabbitMQ: a clean stop or a kill -9, then start.
	[ "$k" = mq ] && { if ((RANDOM % 2)); then k=mq-stop; else k=mq-kill; fi; }
	# The app: a kill -9 or an orderly stop (SIGTERM).
	[ "$k" = app ] && { if ((RANDOM % 2)); then k=app-term; fi; }
	gap=$(( GAP_MIN * 1000 + (RANDOM * 32768 + RANDOM) % ((GAP_MAX - GAP_MIN) * 1000 + 1) ))
	down=$(( 200 + RANDOM % 2800 ))  # server downtime, ms (db, mq)
	# binlog mode: half the leader's freezes outlast its lock (5 s)
	[ "$MODE:$k" = binlog:relay-stop ] && ((down % 2)) && down=$(( down + 5800 ))
	# db-held: how long the log is held before the kill, 200-1000 ms
	[ "$k" = db-held ] && down=$(( 200 + RANDOM % 801 ))
	sched+=("$k:$gap:$down")
done

RUN_ID="chaos-$SEED-$$-$(date +%s)"
rm -rf "$LOGS"
mkdir -p "$LOGS" || die "cannot create $LOGS"
ST=$LOGS/state
mkdir -p "$ST"
IDS=$LOGS/acked-ids.txt
: >"$IDS"
say "seed $SEED (replay: CHAOS_SEED=$SEED), relay mode $MODE, $REQUESTS requests at $RATE/s (~${LOAD_S} s), $FAULTS faults, gaps ${GAP_MIN}-${GAP_MAX} s"
say "bin $BIN, logs $LOGS"
say "schedule: ${sched[*]}"

# ------------------------------------------------------------ reset
# The database runs with the hold shim for the db-held faults (inert while
# the hold file is absent); every db-start of this run inherits it.
HOLD_FILE=$ST/hold
restarted_with_hold=0
if [ -f "$HOLD_SO" ]; then
	# Persistent statistics are written by a background transaction that
	# holds the table's dictionary entry while it commits: with the log
	# held, it would stop every statement on the table, the relay's too.
	export OUTBOX_DB_PRELOAD=$HOLD_SO OUTBOX_HOLD_FILE=$HOLD_FILE \
		OUTBOX_DB_ARGS=--innodb-stats-persistent=OFF
	# binlog mode: the binary log's syncs are held, not the redo log.
	[ "$MODE" = binlog ] && export OUTBOX_HOLD_ONLY=binlog
	restarted_with_hold=1
fi
[ "$MODE" = binlog ] && { export OUTBOX_DB_BINLOG=1; restarted_with_hold=1; }
# The server as it was before the run: without the shim, without the
# binary log (make test's poll-mode phantom test needs it so).
db_as_before() {
	[ "$restarted_with_hold" = 1 ] || return 0
	env -u OUTBOX_DB_PRELOAD -u OUTBOX_HOLD_FILE -u OUTBOX_DB_ARGS \
		-u OUTBOX_HOLD_ONLY -u OUTBOX_DB_BINLOG \
		bash -c 'bash scripts/infra.sh db-stop && bash scripts/infra.sh db-start' \
		>>"$LOGS/infra.log" 2>&1
}
if [ "$restarted_with_hold" = 1 ]; then
	{ bash scripts/infra.sh db-stop && bash scripts/infra.sh db-start; } >>"$LOGS/infra.log" 2>&1 ||
		die "cannot restart MariaDB with ${OUTBOX_DB_PRELOAD:-} ${OUTBOX_DB_BINLOG:+the binary log} (see $LOGS/infra.log)"
fi
"$BIN/outbox-migrate" >"$LOGS/migrate.log" 2>&1 || { cat "$LOGS/migrate.log"; die "migrations failed"; }
pos_reset=
[ "$MODE" = binlog ] && pos_reset="DELETE FROM outbox_relay_position;"
sql -e "DELETE FROM idempotency_keys; DELETE FROM welcome_emails;
	DELETE FROM processed_messages; DELETE FROM outbox; DELETE FROM customers;
	$pos_reset" || die "cannot empty the tables"
for q in outbox outbox.dlq; do
	bash scripts/infra.sh mq-ctl -q purge_queue "$q" >/dev/null 2>&1 || true
done

# ------------------------------------------------------------ the daemons
APP_PORT=${CHAOS_APP_PORT:-$(free_port)}
declare -A creds=(
	[app]="DB_USER=$OUTBOX_APP_DB_USER DB_PASS=$OUTBOX_APP_DB_PASS APP_PORT=$APP_PORT APP_BIND=127.0.0.1 APP_METRICS_PORT=0"
	[relay]="DB_USER=$OUTBOX_RELAY_DB_USER DB_PASS=$OUTBOX_RELAY_DB_PASS RABBITMQ_USER=$OUTBOX_RELAY_MQ_USER RABBITMQ_PASS=$OUTBOX_RELAY_MQ_PASS RELAY_LOG_IDS=200 RELAY_BATCH_SIZE=$RELAY_BATCH RELAY_INFLIGHT_BATCHES=$RELAY_INFLIGHT RELAY_MODE=$MODE RELAY_METRICS_PORT=$RELAY_METRICS"
	[worker]="DB_USER=$OUTBOX_WORKER_DB_USER DB_PASS=$OUTBOX_WORKER_DB_PASS RABBITMQ_USER=$OUTBOX_WORKER_MQ_USER RABBITMQ_PASS=$OUTBOX_WORKER_MQ_PASS WORKER_PREFETCH=$WORKER_PREFETCH WORKER_METRICS_PORT=$WORKER_METRICS"
)
if [ "$MODE" = binlog ]; then
	creds[relay]+=" RELAY_BINLOG_USER=$OUTBOX_BINLOG_DB_USER RELAY_BINLOG_PASSWORD=$OUTBOX_BINLOG_DB_PASS RELAY_LEADER_TIMEOUT_S=5 RELAY_CONFIRM_TIMEOUT_MS=3500"
	creds[relay2]=${creds[relay]/RELAY_METRICS_PORT=$RELAY_METRICS/RELAY_METRICS_PORT=$((RELAY_METRICS ? RELAY_METRICS + 10 : 0))}
fi
# The lost COMMIT replies: every daemon reaches MariaDB through the proxy
# (each SIGUSR1 arms one cut).
proxy_pid=
if [ -x "$PROXY" ]; then
	PROXY_PORT=${CHAOS_PROXY_PORT:-$(free_port)}
	"$PROXY" "$PROXY_PORT" "$DB_PORT" >"$LOGS/sqlproxy.log" 2>&1 &
	proxy_pid=$!
	proxy_up() { grep -q '^listening' "$LOGS/sqlproxy.log"; }
	wait_for 10 proxy_up || die "outbox-sqlproxy did not start (see $LOGS/sqlproxy.log)"
	# binlog mode: the relays reach MariaDB directly. The proxy (one
	# thread, blocking writes) would stall every connection while a relay
	# does not read its binary log stream (frozen, or waiting for the
	# broker); and the relay commits nothing with a COMMIT statement there
	# (its position is one autocommit upsert), so no cut is lost.
	for d in app "${RELAYS[@]}" worker; do
		[ "$MODE:${d%2}" = binlog:relay ] || creds[$d]+=" DB_PORT=$PROXY_PORT"
	done
fi
# supervise NAME: runs the daemon again each time it exits, until
# $ST/stop exists.  $ST/NAME.pid holds the live pid, NAME.log its log;
# NAME.events one line per start and exit: "start PID",
# "<killed|termed|unexpected|stopped> PID RC".  relay2 is a second
# outbox-relay.
supervise() {
	local d=$1 n=0 pid rc why
	while [ ! -e "$ST/stop" ]; do
		n=$((n + 1))
		echo "$LOGS/$d.$n.log" >"$ST/$d.log"
		# shellcheck disable=SC2086 # creds are NAME=value words
		env ${creds[$d]} "$BIN/outbox-${d%2}" >"$LOGS/$d.$n.log" 2>&1 &
		pid=$!
		echo "$pid" >"$ST/$d.pid.new" && mv "$ST/$d.pid.new" "$ST/$d.pid"
		echo "start $pid" >>"$ST/$d.events"
		wait "$pid"
		rc=$?
		if [ -e "$ST/killed.$pid" ]; then why=killed
		elif [ -e "$ST/termed.$pid" ]; then why=termed
		elif [ -e "$ST/stop" ]; then why=stopped
		else why=unexpected
		fi
		echo "$why $pid $rc" >>"$ST/$d.events"
		[ "$why" = stopped ] && break
		# restart: on-failure, after a short back-off
		[ -e "$ST/stop" ] || wait_until_ms $(( $(now_ms) + 200 ))
	done
}
declare -A sup=()
for d in "${DAEMONS[@]}"; do
	# its stderr: bash's "Killed" notices of the daemons
	supervise "$d" 2>>"$ST/$d.supervisor.err" &
	sup[$d]=$!
done
cleanup() {
	rm -f "$HOLD_FILE"
	touch "$ST/stop" 2>/dev/null
	for d in "${DAEMONS[@]}"; do
		[ -s "$ST/$d.pid" ] && kill -TERM "$(cat "$ST/$d.pid")" 2>/dev/null
	done
	[ -n "${load_pid:-}" ] && kill "$load_pid" 2>/dev/null
	[ -n "${inj_pid:-}" ] && kill "$inj_pid" 2>/dev/null
	# Whatever the injector was doing: writes and publishing allowed.
	sql -e "SET GLOBAL read_only = 0" >/dev/null 2>&1
	bash scripts/infra.sh mq-ctl -q set_disk_free_limit 50MB >/dev/null 2>&1
	for d in "${RELAYS[@]}"; do
		[ -s "$ST/$d.pid" ] && kill -CONT "$(cat "$ST/$d.pid")" 2>/dev/null
	done
}
trap 'cleanup; db_as_before; exit 1' INT TERM
app_ready() { curl -fs -m 2 -o /dev/null "http://127.0.0.1:$APP_PORT/readyz"; }
wait_for 30 app_ready || { cleanup; die "the app is not ready on port $APP_PORT within 30 s (log: $LOGS/app.1.log)"; }
say "daemons up: app $(cat "$ST/app.pid") (port $APP_PORT), $(for d in "${RELAYS[@]}"; do printf '%s %s, ' "$d" "$(cat "$ST/$d.pid")"; done)worker $(cat "$ST/worker.pid")"

# ------------------------------------------------------------ injector
# kill9 NAME: kill -9 the live daemon, marked as an injected kill first.
kill9() {
	local d=$1 pid end=$(( $(now_ms) + 10000 ))
	while :; do
		pid=$(cat "$ST/$d.pid" 2>/dev/null)
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			touch "$ST/killed.$pid"
			kill -9 "$pid" 2>/dev/null && return 0
		fi
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.1  # between two incarnations: wait for the next one
	done
}
# term NAME: SIGTERM to the live daemon, marked first; returns 1 unless
# it is gone within APP_SHUTDOWN_TIMEOUT (10 s) + 5 s (its exit status is
# checked from its events at the end).
term() {
	local d=$1 pid end
	pid=$(cat "$ST/$d.pid" 2>/dev/null)
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	touch "$ST/termed.$pid"
	kill -TERM "$pid" 2>/dev/null || return 1
	end=$(( $(now_ms) + 15000 ))
	while kill -0 "$pid" 2>/dev/null; do
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.1
	done
}
# leader: the relay that leads (binlog mode: the one whose live log says
# "leading" last, of its leader lines; else the first).  Poll mode: relay.
leader() {
	local d last
	if [ "$MODE" = binlog ]; then
		for d in "${RELAYS[@]}"; do
			last=$(grep -hoE 'binlog mode: (leading|standby)|lost the leader lock' \
				"$(cat "$ST/$d.log" 2>/dev/null)" 2>/dev/null | tail -n 1)
			[ "$last" = "binlog mode: leading" ] && { echo "$d"; return 0; }
		done
	fi
	echo "${RELAYS[0]}"
}
# binlog_cut: after the kill -9 of a db-held fault (binlog mode), the
# binary log cut back to its last synced size (the shim's record, as a
# power loss leaves it): recovery rolls back the commits of the window.
binlog_cut() {
	local size path now
	[ -e "$HOLD_FILE.synced" ] || { echo "binlog_cut: no sync was held, nothing to cut"; return 0; }
	read -r size path <"$HOLD_FILE.synced" || return 1
	now=$(stat -c %s "$path") || return 1
	[ "$now" -ge "$size" ] || { echo "binlog_cut: $path is $now bytes, below its synced $size"; return 1; }
	truncate -s "$size" "$path" || return 1
	echo "binlog_cut: $path cut from $now to $size bytes"
	echo "$(( now - size ))" >>"$ST/binlog-cut"
}
inject() {
	local f k gap down t rc pid d
	for f in "${sched[@]}"; do
		IFS=: read -r k gap down <<<"$f"
		wait_until_ms $(( $(now_ms) + gap ))
		t=$(now_ms)
		rc=0
		case $k in
		app|worker) kill9 "$k" || rc=1 ;;
		relay) d=$(leader); echo "$d" >>"$ST/relay-faults"; kill9 "$d" || rc=1 ;;
		app-term) term app || rc=1 ;;
		db) bash scripts/infra.sh db-kill >>"$LOGS/infra.log" 2>&1 || rc=1
		    wait_until_ms $(( $(now_ms) + down ))
		    bash scripts/infra.sh db-start >>"$LOGS/infra.log" 2>&1 || rc=1 ;;
		db-held)
		    # Commits in this window are visible, never on disk.
		    : >"$HOLD_FILE" || rc=1
		    wait_until_ms $(( $(now_ms) + down ))
		    bash scripts/infra.sh db-kill >>"$LOGS/infra.log" 2>&1 || rc=1
		    [ "$MODE" = binlog ] && { binlog_cut >>"$LOGS/infra.log" 2>&1 || rc=1; }
		    rm -f "$HOLD_FILE" "$HOLD_FILE.synced"
		    wait_until_ms $(( $(now_ms) + 200 ))
		    bash scripts/infra.sh db-start >>"$LOGS/infra.log" 2>&1 || rc=1 ;;
		mq-stop|mq-kill)
		    bash scripts/infra.sh "$k" >>"$LOGS/infra.log" 2>&1 || rc=1
		    wait_until_ms $(( $(now_ms) + down ))
		    bash scripts/infra.sh mq-start >>"$LOGS/infra.log" 2>&1 || rc=1 ;;
		db-ro)
		    # Reads work, every write of the daemons' users is refused.
		    sql -e "SET GLOBAL read_only = 1" >>"$LOGS/infra.log" 2>&1 || rc=1
		    wait_until_ms $(( $(now_ms) + down ))
		    sql -e "SET GLOBAL read_only = 0" >>"$LOGS/infra.log" 2>&1 || rc=1 ;;
		mq-alarm)
		    # Far above the free space: the broker blocks publishing.
		    bash scripts/infra.sh mq-ctl set_disk_free_limit 1000000GB >>"$LOGS/infra.log" 2>&1 || rc=1
		    wait_until_ms $(( $(now_ms) + down ))
		    bash scripts/infra.sh mq-ctl set_disk_free_limit 50MB >>"$LOGS/infra.log" 2>&1 || rc=1 ;;
		relay-stop)
		    d=$(leader); echo "$d" >>"$ST/relay-faults"
		    pid=$(cat "$ST/$d.pid" 2>/dev/null)
		    kill -STOP "$pid" 2>/dev/null || rc=1
		    wait_until_ms $(( $(now_ms) + down ))
		    kill -CONT "$pid" 2>/dev/null || rc=1 ;;
		lost-commit)
		    # The next COMMIT within the window loses its reply; none
		    # came: disarmed (a cut must not wait for a later phase).
		    kill -USR1 "$proxy_pid" 2>/dev/null || rc=1
		    wait_until_ms $(( $(now_ms) + down ))
		    kill -USR2 "$proxy_pid" 2>/dev/null || rc=1 ;;
		esac
		echo "$k $rc $(( $(now_ms) - t ))" >>"$ST/faults"
		printf 'chaos: fault %-7s %s (%d ms)\n' "$k" \
		    "$([ "$rc" = 0 ] && echo 'done' || echo FAILED)" $(( $(now_ms) - t ))
	done
}

t_start=$(now_ms)
"$BIN/outbox-chaos-load" "$APP_PORT" "$REQUESTS" "$RATE" "$RUN_ID" "$IDS" \
	>"$LOGS/load.json" 2>"$LOGS/load.err" &
load_pid=$!
inject 2>>"$ST/injector.err" &
inj_pid=$!
wait "$load_pid"
load_rc=$?
t_load=$(now_ms)
say "load done in $(( (t_load - t_start) / 1000 )) s (exit $load_rc): $(cat "$LOGS/load.json")"
wait "$inj_pid"
t_faults=$(now_ms)
inj_pid=
say "faults done $(( (t_faults - t_start) / 1000 )) s after the start"

fail=()
# Servers back (a failed start in the injector would leave one down).
bash scripts/infra.sh status >/dev/null 2>&1 || {
	fail+=("a server is down after the faults")
	bash scripts/infra.sh start >>"$LOGS/infra.log" 2>&1
}

# ------------------------------------------------------------ recovery
post_ok=0 post_json=
if wait_for 60 app_ready; then
	post_json=$("$BIN/outbox-chaos-load" "$APP_PORT" 50 50 "$RUN_ID-post" \
		"$IDS" 60 2>>"$LOGS/load.err")
	post_ok=$(sed -nE 's/.*"created_201": ([0-9]+).*/\1/p' <<<"$post_json")
	[ "${post_ok:-0}" = 50 ] || fail+=("post-fault load: ${post_ok:-0} of 50 POSTs got a 201: $post_json")
else
	fail+=("the app did not become ready within 60 s after the faults")
fi

# unpub: rows not published (poll mode: published_at NULL; binlog mode,
# where published_at is not written: rows without their processed id).
if [ "$MODE" = binlog ]; then
	unpub_sql="SELECT COUNT(*) FROM outbox o LEFT JOIN processed_messages p
		ON p.message_id = o.message_id WHERE p.message_id IS NULL"
else
	unpub_sql="SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"
fi
settled_db() {
	local r
	r=$(sql -e "SELECT ($unpub_sql),
		(SELECT COUNT(*) FROM customers), (SELECT COUNT(*) FROM welcome_emails)" 2>/dev/null) || return 1
	read -r unpub ncust nwel <<<"$r"
	[ "$unpub" = 0 ] && [ "$ncust" = "$nwel" ]
}
queue_empty() {
	local n
	n=$(bash scripts/infra.sh mq-ctl -q list_queues name messages --no-table-headers 2>/dev/null |
		awk '$1 == "outbox" { print $2 }')
	[ "$n" = 0 ]
}
settled() { settled_db && queue_empty; }
unpub='?' ncust='?' nwel='?'
if wait_for "$SETTLE_S" settled; then
	t_settled=$(now_ms)
	settle_ms=$(( t_settled - t_faults ))
	say "settled $(( settle_ms / 1000 )).$(( settle_ms % 1000 / 100 )) s after the last fault"
else
	settle_ms=-1
	fail+=("not settled within ${SETTLE_S} s: unpublished $unpub, customers $ncust, welcome emails $nwel")
fi

# ------------------------------------------------------------ audit
AUDIT_GRACE_S=0 DB_USER=$OUTBOX_AUDIT_DB_USER DB_PASS=$OUTBOX_AUDIT_DB_PASS \
	RABBITMQ_USER=$OUTBOX_AUDIT_MQ_USER RABBITMQ_PASS=$OUTBOX_AUDIT_MQ_PASS \
	"$AUDIT_BIN" >"$LOGS/audit.txt" 2>&1
audit_rc=$?
audit_note=
if [ "$MODE" = binlog ] && [ "$audit_rc" = 1 ] &&
	! grep FAIL "$LOGS/audit.txt" | grep -v '^result' | grep -qv 'unpublished longer than the grace'; then
	# outbox-audit reads published_at, which binlog mode leaves NULL:
	# only that check failed; settled and the exact check cover it.
	audit_rc=0 audit_note=" (binlog mode: its check of published_at left out)"
fi
[ "$audit_rc" = 0 ] || fail+=("outbox-audit exit $audit_rc: $(grep -E 'WARN|FAIL|result' "$LOGS/audit.txt" | tail -n 2 | tr '\n' ' ')(see $LOGS/audit.txt)")

# ------------------------------------------------------------ exact check
exact_check "$IDS" "$LOGS"

# ------------------------------------------------------------ stop, verify
touch "$ST/stop"
for d in "${DAEMONS[@]}"; do
	kill -TERM "$(cat "$ST/$d.pid")" 2>/dev/null
done
sup_done() { local d; for d in "${DAEMONS[@]}"; do kill -0 "${sup[$d]}" 2>/dev/null && return 1; done; return 0; }
if ! wait_for 30 sup_done; then
	fail+=("a daemon did not stop within 30 s of SIGTERM")
	for d in "${DAEMONS[@]}"; do kill -9 "$(cat "$ST/$d.pid")" 2>/dev/null; done
	wait_for 10 sup_done
fi
[ -z "$proxy_pid" ] || { kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null; }
declare -A n_start=() n_killed=() n_termed=() n_unexp=() first_pid=() last_pid=()
for d in "${DAEMONS[@]}"; do
	n_start[$d]=$(grep -c '^start ' "$ST/$d.events")
	n_killed[$d]=$(grep -c '^killed ' "$ST/$d.events")
	n_termed[$d]=$(grep -c '^termed ' "$ST/$d.events")
	n_unexp[$d]=$(grep -c '^unexpected ' "$ST/$d.events")
	first_pid[$d]=$(awk '$1 == "start" { print $2; exit }' "$ST/$d.events")
	last_pid[$d]=$(awk '$1 == "start" { p = $2 } END { print p }' "$ST/$d.events")
	if grep -q '^termed [0-9]* [1-9]' "$ST/$d.events"; then
		fail+=("$d: exit status not 0 on an injected SIGTERM: $(grep '^termed [0-9]* [1-9]' "$ST/$d.events" | awk '{ printf "pid %s status %s; ", $2, $3 }')")
	fi
	if [ "${n_unexp[$d]}" != 0 ]; then
		fail+=("$d exited without being killed: $(grep '^unexpected ' "$ST/$d.events" | awk '{ printf "pid %s status %s; ", $2, $3 }')")
	fi
	stop_line=$(grep '^stopped ' "$ST/$d.events" | tail -n 1)
	if [ -z "$stop_line" ]; then
		fail+=("$d: no clean stop recorded")
	elif [ "$(awk '{ print $3 }' <<<"$stop_line")" != 0 ]; then
		fail+=("$d: exit status $(awk '{ print $3 }' <<<"$stop_line") on SIGTERM (expected 0)")
	fi
done
db_as_before || fail+=("cannot restart MariaDB without the hold shim and the binary log (see $LOGS/infra.log)")
if grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' "$LOGS"/*.log >"$ST/san" 2>/dev/null; then
	fail+=("sanitizer reports in: $(tr '\n' ' ' <"$ST/san")")
fi
[ "$load_rc" = 0 ] || fail+=("outbox-chaos-load exit $load_rc (see $LOGS/load.err)")
# A fault is an outage (503: retry), never an internal error.
n500=$(sed -nE 's/.*"statuses": \{[^}]*"500": ([0-9]+).*/\1/p' "$LOGS/load.json")
[ -z "$n500" ] || fail+=("$n500 requests answered 500 (internal error) during the faults (see $LOGS/app.*.log)")
n_faults=$(wc -l 2>/dev/null <"$ST/faults" || echo 0)
[ "$n_faults" = "$FAULTS" ] || fail+=("$n_faults faults injected of $FAULTS planned")
if grep -q ' 1 ' "$ST/faults" 2>/dev/null; then
	fail+=("fault injection failed: $(awk '$2 == 1 { printf "%s ", $1 }' "$ST/faults")(see $LOGS/infra.log)")
fi

# ------------------------------------------------------------ phantom rounds
hold_line="not run (CHAOS_HOLD_ROUNDS=0)"
# binlog mode: the binlog suite's crash test, on a binlog MariaDB of its own.
hold_suite=durability hold_case="phantom events"
[ "$MODE" = binlog ] && hold_suite=binlog hold_case=crash
if [ "$HOLD_ROUNDS" -gt 0 ]; then
	mkdir -p "$LOGS/durability"
	OUTBOX_ROOT=$root OUTBOX_BIN=$BIN OUTBOX_TEST_LOGS=$LOGS/durability \
		OUTBOX_HOLD_ROUNDS=$HOLD_ROUNDS CK_RUN_SUITE=$hold_suite \
		CK_RUN_CASE=$hold_case "$ITEST" >"$LOGS/durability.txt" 2>&1
	hold_rc=$?
	if [ "$hold_rc" = 0 ] && grep -q '^integration: 1 passed, 0 failed' "$LOGS/durability.txt"; then
		hold_line="$HOLD_ROUNDS database crashes with a commit held back ($hold_suite suite, case $hold_case): no event published, no effect applied for them"
	else
		hold_line="FAILED (exit $hold_rc; see $LOGS/durability.txt)"
		fail+=("phantom-events rounds: $(grep -E ':F:|:E:' "$LOGS/durability.txt" | head -n 1)")
	fi
fi

# ------------------------------------------------------------ figures
dups=$(cat "$LOGS"/worker.*.log | grep -c 'Duplicate message')
dups_proc=$(cat "$LOGS"/worker.*.log | grep 'Duplicate message' | grep -c 'already processed')
dups_batch=$(cat "$LOGS"/worker.*.log | grep 'Duplicate message' | grep -c 'repeated in the batch')
handled=$(cat "$LOGS"/worker.*.log | grep -c 'Handling \[')
dead=$(cat "$LOGS"/worker.*.log | grep -c 'dead-lettered message ')
# Every delivery the worker took: handled, duplicate or dead-lettered.
deliveries=$((handled + dups + dead))
window=$((RELAY_INFLIGHT * RELAY_BATCH + WORKER_PREFETCH))
bound=$((t_outbox + n_faults * window))
[ "$deliveries" -le "$bound" ] ||
	fail+=("$deliveries deliveries for $t_outbox rows: over the bound of $bound (rows + $n_faults faults x $window)")
cuts=$(grep -c '^cut after COMMIT' "$LOGS/sqlproxy.log" 2>/dev/null || true)
# Ids published twice, as the relay's logs show them: batches of 200 rows
# with RELAY_LOG_IDS=200 list every id of a batch.
uuid_re='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
cat "$LOGS"/relay*.log | grep 'Published messages: ' |
	sed -E 's/^.*Published messages: \[//; s/[^ ]*\.\.\..*$//; s/\].*$//' |
	grep -oE "$uuid_re" | sort >"$ST/published"
published_seen=$(wc -l <"$ST/published")
republished=$(uniq -d "$ST/published" | wc -l)
fault_counts=$(awk '{ n[$1]++ } END { for (k in n) printf "%s %d, ", k, n[k] }' "$ST/faults" 2>/dev/null | sed 's/, $//')
# binlog mode: the leader's changes, from the relays' logs.
leads=$(cat "$LOGS"/relay*.log | grep -c 'binlog mode: leading')
lost_lock=$(cat "$LOGS"/relay*.log | grep -c 'lost the leader lock')
cut_n=$(wc -l 2>/dev/null <"$ST/binlog-cut" || echo 0)
cut_bytes=$(awk '{ n += $1 } END { print n + 0 }' "$ST/binlog-cut" 2>/dev/null || echo 0)
jget() { sed -nE "s/.*\"$1\": ([0-9]+).*/\1/p" "$LOGS/load.json"; }

echo
echo "================ chaos report (seed $SEED) ================"
echo "load:            $(jget sent) requests sent at $RATE/s, $(jget created_201) x 201, other statuses $(sed -nE 's/.*"statuses": (\{[^}]*\}).*/\1/p' "$LOGS/load.json"), connection errors $(jget connection_errors), timeouts $(jget timeouts), other errors $(jget other_errors)"
echo "post-fault load: ${post_ok:-0}/50 x 201"
echo "faults:          $n_faults injected ($fault_counts)"
for d in "${DAEMONS[@]}"; do
	printf 'daemon %-7s  %d injected kills, %d injected SIGTERMs, %d restarts by the supervisor, %d unexpected exits; pid %s -> %s\n' \
		"$d" "${n_killed[$d]}" "${n_termed[$d]}" $(( n_start[$d] - 1 )) "${n_unexp[$d]}" "${first_pid[$d]}" "${last_pid[$d]}"
done
echo "acknowledged:    $acked 201s checked: lost customers $c_lost_cust, lost effects $c_lost_eff, doubled effects $c_doubled, outbox rows != 1: $c_outbox_not1, effects not from their message: $c_bad_link"
echo "totals:          customers $t_cust, outbox $t_outbox, processed $t_proc, welcome emails $t_wel"
echo "duplicates:      $dups delivered and absorbed by the worker ($dups_proc already processed, $dups_batch repeated in a batch); $republished ids published twice by the relay (in its logs, which show $published_seen publishes); $handled effects logged"
echo "deliveries:      $deliveries for $t_outbox rows ($(awk -v d="$deliveries" -v r="$t_outbox" 'BEGIN { printf "%.3f", r ? d / r : 0 }') per row; bound $bound = rows + $n_faults faults x $window in flight); ${cuts:-0} COMMIT replies cut"
if [ "$settle_ms" -ge 0 ]; then
	echo "settle:          $(( settle_ms / 1000 )).$(( settle_ms % 1000 / 100 )) s after the last fault ($(( (t_faults - t_load) / 1000 )) s of faults after the load)"
else
	echo "settle:          NOT settled within ${SETTLE_S} s"
fi
if [ "$MODE" = binlog ]; then
	echo "binlog mode:     ${#RELAYS[@]} relays; $leads times a relay took the lead ($((leads > 0 ? leads - 1 : 0)) after the first), $lost_lock times a leader found its lock lost; relay faults hit: $(sort "$ST/relay-faults" 2>/dev/null | uniq -c | awk '{ printf "%s %d, ", $2, $1 }' | sed 's/, $//'); binary log cut back after $cut_n db-held kills ($cut_bytes bytes of unsynced commits dropped)"
fi
echo "phantom events:  $hold_line"
echo "audit:           exit $audit_rc$audit_note, $(grep '^result' "$LOGS/audit.txt") ($AUDIT_BIN, $LOGS/audit.txt)"
echo "total time:      $(( ($(now_ms) - t_start) / 1000 )) s; logs in $LOGS"
if [ ${#fail[@]} -eq 0 ]; then
	echo "RESULT: PASS: zero lost, zero doubled; every daemon came back by itself"
	echo "chaos: 1 passed, 0 failed"
	exit 0
fi
for f in "${fail[@]}"; do echo "FAIL: $f"; done
echo "RESULT: FAIL (replay: CHAOS_SEED=$SEED)"
echo "chaos: 0 passed, 1 failed"
exit 1
