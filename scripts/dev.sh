#!/usr/bin/env bash
# scripts/dev.sh - runs the daemons in the foreground against the private
# servers, each output line prefixed with its container-style name as
# `docker compose up` does ("outbox-demo-relay  | ...").  Ctrl-C (SIGINT)
# or SIGTERM stops them all cleanly.  If one dies on its own, says so
# loudly, stops the others and exits non-zero.
#
# `make dev` runs it after installing, starting the servers, migrating and
# building.  Daemons whose binary is not built are skipped.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/env.sh
. scripts/env.sh
build=${BUILD_ROOT:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
bin="$build/release/bin"

declare -A pids=()
stopping=0

prefix() {
	local name=$1 line
	# Outlive Ctrl-C: the daemon's last lines come after it.
	trap '' INT TERM
	while IFS= read -r line; do
		printf '%-19s| %s\n' "$name" "$line"
	done
}

# Each daemon runs as its own database and RabbitMQ user (least privilege;
# scripts/roles.env, created by scripts/infra.sh).
# shellcheck source=scripts/roles.env
. scripts/roles.env
declare -A creds=(
	[app]="DB_USER=$OUTBOX_APP_DB_USER DB_PASS=$OUTBOX_APP_DB_PASS"
	[relay]="DB_USER=$OUTBOX_RELAY_DB_USER DB_PASS=$OUTBOX_RELAY_DB_PASS RABBITMQ_USER=$OUTBOX_RELAY_MQ_USER RABBITMQ_PASS=$OUTBOX_RELAY_MQ_PASS"
	[worker]="DB_USER=$OUTBOX_WORKER_DB_USER DB_PASS=$OUTBOX_WORKER_DB_PASS RABBITMQ_USER=$OUTBOX_WORKER_MQ_USER RABBITMQ_PASS=$OUTBOX_WORKER_MQ_PASS"
)

start() {
	local d=$1
	if [ ! -x "$bin/outbox-$d" ]; then
		echo "dev: $bin/outbox-$d is not built; skipping $d" >&2
		return
	fi
	# shellcheck disable=SC2086 # creds are NAME=value words
	env ${creds[$d]} "$bin/outbox-$d" > >(prefix "outbox-demo-$d") 2>&1 &
	pids[$d]=$!
}

stop_all() {
	local d
	stopping=1
	for d in "${!pids[@]}"; do
		kill -TERM "${pids[$d]}" 2>/dev/null || true
	done
	for d in "${!pids[@]}"; do
		wait "${pids[$d]}" 2>/dev/null
		echo "dev: $d stopped (exit $?)" >&2
	done
}

trap 'stop_all; exit 0' INT TERM

for d in app relay worker; do
	start "$d"
done
if [ ${#pids[@]} -eq 0 ]; then
	echo "dev: nothing to run; build first (make build)" >&2
	exit 1
fi
echo "dev: starting ${!pids[*]}; Ctrl-C stops" >&2

# Readiness: each daemon's /readyz (database and broker connected), with a
# deadline; a daemon that is not ready in time is reported, not hidden.
declare -A ready_url=(
	[app]="http://127.0.0.1:${APP_PORT:-3000}/readyz"
	[relay]="http://127.0.0.1:${RELAY_METRICS_PORT:-9465}/readyz"
	[worker]="http://127.0.0.1:${WORKER_METRICS_PORT:-9466}/readyz"
)
(
	end=$((SECONDS + 60))
	for d in "${!pids[@]}"; do
		until curl -sf -o /dev/null "${ready_url[$d]}"; do
			if [ "$SECONDS" -ge "$end" ]; then
				echo "dev: *** $d not ready after 60 s (${ready_url[$d]}) ***" >&2
				exit 1
			fi
			sleep 0.1
		done
	done
	echo "dev: all ready: API on http://localhost:${APP_PORT:-3000}" >&2
) &

# Wait for any daemon to end; one that ends while we are not stopping died.
while :; do
	wait -n "${pids[@]}"
	rc=$?
	[ "$stopping" -eq 1 ] && exit 0
	for d in "${!pids[@]}"; do
		if ! kill -0 "${pids[$d]}" 2>/dev/null; then
			echo "" >&2
			echo "dev: *** $d EXITED (status $rc) ***; stopping the others" >&2
			unset "pids[$d]"
			stop_all
			exit 1
		fi
	done
done
