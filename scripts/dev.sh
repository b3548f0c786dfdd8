#!/usr/bin/env bash
# scripts/dev.sh - runs the daemons in the foreground against the private
# servers, each output line prefixed with its container-style name as
# `docker compose up` does ("outbox-demo-relay  | ...").
#
# Stopping: Ctrl-C (SIGINT), SIGTERM or SIGHUP prints one "dev: stopping"
# line, sends SIGTERM to each daemon, waits for each (DEV_STOP_TIMEOUT,
# 30 s, then kill -9, said loudly), prints "dev: <daemon> stopped (exit N)"
# after the daemon's last line, and exits 0 (make, which got the Ctrl-C
# too, then ends with 130).
#
# The daemons run in a session of their own (setsid), out of the
# terminal's process group: a Ctrl-C reaches make and this script, never
# the daemons directly.  (They used to get it too and race this script's
# own handling: a daemon that had already stopped was reported as a
# crash.)  So a daemon that ends was either stopped here or died on its
# own; the latter is reported loudly ("dev: *** relay EXITED (killed by
# SIGKILL) ***"), the others are stopped, and the exit status is 1.
#
# `make dev` runs it after installing, starting the servers, migrating and
# building.  Daemons whose binary is not built are skipped.
#
# DEV_RELAYS=N, DEV_WORKERS=M (make dev RELAYS=N WORKERS=M; 1 to 9, 1 by
# default): N relays and M workers.  The first of each is "relay" and
# "worker" as always; the others are "relay-2", "worker-2" ..., each with
# its metrics port 10 above the previous one's (RELAY_METRICS_PORT 9465:
# 9475, 9485; WORKER_METRICS_PORT 9466: 9476, ...).  SKIP LOCKED keeps the
# relays apart; the workers compete on the queue.
#
# DEV_RELAY_MODE=binlog (make dev RELAY_MODE=binlog; README, "Binlog
# mode"): the relays read the binary log (RELAY_MODE=binlog, the reader's
# login of scripts/roles.env); one leads, the others stand by.  make dev
# has started the dev MariaDB with the binary log (make infras with
# OUTBOX_DB_BINLOG=1 restarts one running without it); this script refuses
# a server without it, saying so, rather than let the relays refuse.
#
# With OUTBOX_MQ_NODES=3 (make dev against scripts/infra.sh's cluster),
# env.sh gives the daemons every node (RABBITMQ_HOSTS) and quorum queues.
#
# DEV_MONITOR=1 (make dev MONITOR=1): a private Prometheus runs beside
# them, as one more of them ("outbox-demo-prometheus | ...", stopped
# and reported the same way): Debian's /usr/bin/prometheus with a copy
# of monitoring/prometheus.yml and alerts.yml for these daemons' metrics
# ports (scripts/prometheus.sh), on 127.0.0.1:$OUTBOX_DEV_PROM_PORT
# (scripts/ports.env), data under $OUTBOX_VAR/prometheus.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/env.sh
. scripts/env.sh
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
build=${BUILD_ROOT:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
bin="$build/release/bin"
stop_timeout=${DEV_STOP_TIMEOUT:-30}

LIB_NAME=dev LIB_SAY_STDERR=1

# Each daemon runs as its own database and RabbitMQ user (least privilege;
# scripts/roles.env, created by scripts/infra.sh).
# shellcheck source=scripts/roles.env
. scripts/roles.env
declare -A creds=(
	[app]="DB_USER=$OUTBOX_APP_DB_USER DB_PASS=$OUTBOX_APP_DB_PASS"
	[relay]="DB_USER=$OUTBOX_RELAY_DB_USER DB_PASS=$OUTBOX_RELAY_DB_PASS RABBITMQ_USER=$OUTBOX_RELAY_MQ_USER RABBITMQ_PASS=$OUTBOX_RELAY_MQ_PASS"
	[worker]="DB_USER=$OUTBOX_WORKER_DB_USER DB_PASS=$OUTBOX_WORKER_DB_PASS RABBITMQ_USER=$OUTBOX_WORKER_MQ_USER RABBITMQ_PASS=$OUTBOX_WORKER_MQ_PASS"
)

declare -A pid=()     # daemon -> its pid
declare -A prefixer=() # daemon -> pid of the process prefixing its lines
running=()            # daemons started and not yet reaped, in start order
stopping=0
ready_pid=

prefix() { # prefix NAME: copies stdin to stdout, each line prefixed
	local name=$1 line
	# Outlive the signals: the daemon's last lines come after them.
	trap '' INT TERM HUP
	while IFS= read -r line; do
		printf '%-19s| %s\n' "$name" "$line" 2>/dev/null || true
	done
}

# start NAME [VAR=VALUE...]: runs daemon NAME ("relay", "relay-2": the
# binary outbox-relay) with those variables.
start() {
	local d=$1 kind=${1%%-*} fd
	shift
	local -a cmd=("$bin/outbox-$kind")
	if [ "$d" = prometheus ]; then
		cmd=(bash scripts/prometheus.sh run "$prom_dir" "$prom_port")
	elif [ ! -x "$bin/outbox-$kind" ]; then
		say "$bin/outbox-$kind is not built; skipping $d"
		return 0
	fi
	# The prefixer is this script's child (a process substitution opened
	# here, not in the daemon's fork), so it can be waited for.
	exec {fd}> >(prefix "outbox-demo-$d")
	prefixer[$d]=$!
	# A background job is never a process group leader: setsid makes the
	# new session without forking, so $! is the daemon itself.
	# shellcheck disable=SC2086 # creds are NAME=value words
	env ${creds[$kind]:-} "$@" setsid "${cmd[@]}" >&"$fd" 2>&1 &
	pid[$d]=$!
	exec {fd}>&-
	running+=("$d")
}

# dead PID: the process has exited (a zombie not yet reaped, or gone).
# A read cut short by a signal says nothing about the process: "not dead".
# (No 2> on these reads: a trap that runs inside one would inherit it.)
dead() {
	local st=
	[ -r "/proc/$1/stat" ] || return 0
	read -r st <"/proc/$1/stat" || true
	st=${st##*) }
	[ "${st%% *}" = Z ]
}

# how RC: "exit 0", "exit 1", "killed by SIGKILL".
how() {
	if [ "$1" -gt 128 ] && [ "$1" -lt 160 ]; then
		printf 'killed by SIG%s' "$(kill -l "$(($1 - 128))" 2>/dev/null || echo "$(($1 - 128))")"
	else
		printf 'exit %s' "$1"
	fi
}

# reap DAEMON: its exit status, once its prefixer has written its last
# line; "dev: DAEMON stopped (exit N)" after them.
reap() {
	local d=$1 rc=0
	wait "${pid[$d]}" 2>/dev/null || rc=$?
	wait_for 5 dead "${prefixer[$d]}" || true
	wait "${prefixer[$d]}" 2>/dev/null || true
	LAST_RC=$rc
}

stop_all() {
	local d
	if [ -n "$ready_pid" ]; then
		kill "$ready_pid" 2>/dev/null || true
		wait "$ready_pid" 2>/dev/null || true
	fi
	for d in "${running[@]}"; do
		kill -TERM "${pid[$d]}" 2>/dev/null || true
	done
	for d in "${running[@]}"; do
		if ! wait_for "$stop_timeout" dead "${pid[$d]}"; then
			say "*** $d still running ${stop_timeout} s after SIGTERM: kill -9 ***"
			kill -KILL "${pid[$d]}" 2>/dev/null || true
		fi
		reap "$d"
		say "$d stopped ($(how "$LAST_RC"))"
	done
	running=()
}

on_signal() { # on_signal NAME: the user (or make) stops us
	[ "$stopping" -eq 0 ] || return 0
	stopping=1
	say "stopping (SIG$1)"
	stop_all
	exit 0
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

monitor=${DEV_MONITOR:-0}
prom_port=${OUTBOX_DEV_PROM_PORT:-23091}
prom_dir="$OUTBOX_VAR/prometheus"
if [ "$monitor" = 1 ]; then
	command -v prometheus >/dev/null 2>&1 ||
		die "MONITOR=1: prometheus not found (bash scripts/deps.sh tools installs it)"
	holder=$(port_holder "$prom_port")
	[ -z "$holder" ] || die "MONITOR=1: port 127.0.0.1:$prom_port is already in use ($holder); move it with OUTBOX_DEV_PROM_PORT"
	bash scripts/prometheus.sh config "$prom_dir"
fi

relay_mode=${DEV_RELAY_MODE:-poll}
case $relay_mode in
poll) ;;
binlog)
	[ "$(bash scripts/infra.sh db-sql -N -B -e 'SELECT @@log_bin' 2>/dev/null)" = 1 ] ||
		die "RELAY_MODE=binlog: the dev MariaDB on port $OUTBOX_DB_PORT runs without the binary log; start it with it: make infras RELAY_MODE=binlog (it restarts the server, data kept)"
	creds[relay]+=" RELAY_MODE=binlog RELAY_BINLOG_USER=$OUTBOX_BINLOG_DB_USER RELAY_BINLOG_PASSWORD=$OUTBOX_BINLOG_DB_PASS"
	;;
*) die "RELAY_MODE=$relay_mode: expected poll or binlog" ;;
esac

relays=${DEV_RELAYS:-1} workers=${DEV_WORKERS:-1}
[[ $relays =~ ^[1-9]$ ]] || die "RELAYS=$relays: expected 1 to 9"
[[ $workers =~ ^[1-9]$ ]] || die "WORKERS=$workers: expected 1 to 9"
relay_port=${RELAY_METRICS_PORT:-9465}
worker_port=${WORKER_METRICS_PORT:-9466}
# Every relay's and worker's metrics port (10 above the one before of its
# kind, below) differs from all the others and from the app's: refused
# before anything starts, naming the two (a worker whose port a relay
# took runs without its metrics).
declare -A port_of=()
claim_port() { # claim_port NAME PORT
	[ -z "${port_of[$2]:-}" ] ||
		die "$1's metrics port $2 is also taken by ${port_of[$2]} (RELAY_METRICS_PORT=$relay_port WORKER_METRICS_PORT=$worker_port, each next instance 10 above): move one"
	port_of[$2]=$1
}
claim_port "the app (APP_PORT)" "${APP_PORT:-3000}"
[ -z "${APP_METRICS_PORT:-}" ] || claim_port "the app (APP_METRICS_PORT)" "$APP_METRICS_PORT"
for i in $(seq 1 "$workers"); do
	claim_port "worker$([ "$i" -eq 1 ] || echo "-$i")" $((worker_port + 10 * (i - 1)))
done
for i in $(seq 1 "$relays"); do
	claim_port "relay$([ "$i" -eq 1 ] || echo "-$i")" $((relay_port + 10 * (i - 1)))
done
declare -A ready_url=(
	[app]="http://127.0.0.1:${APP_PORT:-3000}/readyz"
	[prometheus]="http://127.0.0.1:$prom_port/-/ready"
)
start app
# instance KIND I BASE VAR: the I-th relay or worker, its metrics port
# 10 x (I - 1) above BASE.
instance() {
	local kind=$1 i=$2 port=$(($3 + 10 * ($2 - 1))) name=$1
	[ "$i" -eq 1 ] || name=$kind-$i
	ready_url[$name]="http://127.0.0.1:$port/readyz"
	start "$name" "$4=$port"
}
for i in $(seq 1 "$relays"); do instance relay "$i" "$relay_port" RELAY_METRICS_PORT; done
for i in $(seq 1 "$workers"); do instance worker "$i" "$worker_port" WORKER_METRICS_PORT; done
if [ ${#running[@]} -eq 0 ]; then
	say "nothing to run; build first (make build)"
	exit 1
fi
[ "$monitor" != 1 ] || start prometheus
[ "$relay_mode" = poll ] ||
	say "relays in binlog mode: one leads (binlog mode: leading), the others stand by"
say "starting ${running[*]}; Ctrl-C stops"

# Readiness: each daemon's /readyz (database and broker connected), with a
# deadline; a daemon that is not ready in time is reported, not hidden.
prom_line=
[ "$monitor" != 1 ] ||
	prom_line="; Prometheus on http://127.0.0.1:$prom_port (alerts: /alerts, targets: /targets)"
ready() { curl -sf -m 2 -o /dev/null "$1"; }
(
	for d in "${running[@]}"; do
		if ! wait_for 60 ready "${ready_url[$d]}"; then
			say "*** $d not ready after 60 s (${ready_url[$d]}) ***"
			exit 1
		fi
	done
	say "all ready: API on http://localhost:${APP_PORT:-3000}$prom_line"
) &
ready_pid=$!

# Watch the daemons.  A signal runs on_signal once the current command is
# done (Ctrl-C ends the sleep too), which exits; so a daemon that ends here
# died on its own.  (Not `wait -n`: bash 5.2 was seen here to go on waiting
# after a daemon had been killed.  Not `read -t` as a sleep: its timeout
# can cut short a trap that runs inside it.)
while :; do
	for d in "${running[@]}"; do
		dead "${pid[$d]}" || continue
		stopping=1
		rc=0
		wait "${pid[$d]}" 2>/dev/null || rc=$?
		wait_for 5 dead "${prefixer[$d]}" || true
		printf '\n' >&2 2>/dev/null || true
		say "*** $d EXITED ($(how "$rc")) ***; stopping the others"
		left=()
		for o in "${running[@]}"; do
			[ "$o" = "$d" ] || left+=("$o")
		done
		running=("${left[@]}")
		stop_all
		exit 1
	done
	sleep 0.2
done
