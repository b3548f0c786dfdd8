#!/usr/bin/env bash
# shellcheck disable=SC2317 # checks run through check() look unreachable
# tests/infra_test.sh - scripts/lib.sh's free_port, and scripts/infra.sh's
# options that the server tests rely on, on a MariaDB of its own (a
# temporary folder, a free port): a port held in TIME-WAIT by an outgoing
# connection is waited out, not failed on (about 60 s);
# OUTBOX_DB_PRELOAD given as a path relative to the caller's folder is
# the shared object mariadbd runs with (the durability and binlog tests
# preload tests/fsync_hold.c with it; infra.sh starts mariadbd from its
# data folder, where a relative path named nothing, and the server ran
# without the shim, silently); its 1 GiB redo log (and the compose
# service's); the huge-page shim every private MariaDB
# runs with (scripts/mariadb_thp.c), and without it on OUTBOX_DB_THP=0;
# a port held by a live outgoing connection named at once, not waited
# for; as root, the sets' ports of the ephemeral range reserved against
# outgoing connections.
# Prints "infra: N passed, N failed" (tests/run.sh).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
build=${BUILD_ROOT:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
bin=${OUTBOX_BIN:-$build/san/bin}
TEST_NAME=infra
# shellcheck source=tests/check.sh
. "$root/tests/check.sh"

# free_port (scripts/lib.sh) never gives a port it is told is taken: the
# tests choose several before binding any (a dev test run once got one
# port for a daemon's metrics and for Prometheus).
picks_avoid() {
	local p i taken
	taken=$(seq -s ' ' 24000 27999)
	for i in $(seq 1 20); do
		# shellcheck disable=SC2086   # one argument per port
		p=$(free_port $taken) || return 1
		[ "$p" -ge 28000 ] || { echo "pick $i: $p, one of those taken"; return 1; }
	done
}
check "free_port avoids the ports it is given (20 picks, half the range given)" picks_avoid

shim=$(cd "$bin/../lib" 2>/dev/null && pwd)/outbox-fsync-hold.so
check "the fsync shim is built ($shim)" test -f "$shim"
[ -f "$shim" ] || finish
var=$(mktemp -d "${TMPDIR:-/tmp}/outbox-infra-test.XXXXXX")
port=$(free_port)
db() {
	OUTBOX_VAR=$var OUTBOX_DB_PORT=$port OUTBOX_DB_THP=${thp:-1} \
		OUTBOX_DB_PRELOAD=$(realpath --relative-to=. "$shim") \
		OUTBOX_HOLD_FILE=$var/hold bash scripts/infra.sh "$@" >>"$var/infra.log" 2>&1
}
trap 'db db-stop; rm -rf "$var"' EXIT

# Its port held by a live outgoing connection (its source port: any
# program's connection may take a port of the ephemeral range, where the
# dev set's are; a test broker's connection to its own epmd once held the
# dev broker's port for that broker's life).  Waiting cannot free it: the
# start says so at once, naming the connection and its program, instead
# of waiting out the port three times and failing without saying why.
"$bin/outbox-tcp-timewait" "$port" live >"$var/live.out" 2>&1 &
live=$!
trap 'kill "$live" 2>/dev/null; db db-stop; rm -rf "$var"' EXIT
held() { grep -q '^held$' "$var/live.out"; }
check "a live outgoing connection holds 127.0.0.1:$port" wait_for 10 held
refused() { ! OUTBOX_PORT_WAIT=30 db db-start; }
t0=$(now_us)
check "a start on that port fails" refused
secs=$((($(now_us) - t0) / 1000000))
check "at once, not after waiting for the port ($secs s)" test "$secs" -lt 20
grep -h "live connection" "$var/infra.log"
check "naming the live connection and its program" \
	grep -q "127.0.0.1:$port is the source port of a live connection (ESTAB 127.0.0.1:$port -> .* by outbox-tcp-time" "$var/infra.log"
gone() { ! pgrep -f -- "$var/mariadb" >/dev/null; }
check "no server left running" gone
ended() { kill -TERM "$live" 2>/dev/null; wait "$live"; }
check "the connection ends, the port free" ended
trap 'db db-stop; rm -rf "$var"' EXIT

# Its port left in TIME-WAIT by an outgoing connection first (any
# program's connection may take a dev port, in the ephemeral range, as its
# source port: a CI run's dev broker failed its three starts in a row on
# one).  That socket blocks the bind even with SO_REUSEADDR until the
# kernel drops it, 60 s later: the start waits it out.
check "an outgoing connection's TIME-WAIT holds 127.0.0.1:$port" \
	"$bin/outbox-tcp-timewait" "$port"
check "a MariaDB starts with OUTBOX_DB_PRELOAD relative ($(realpath --relative-to=. "$shim")), once the TIME-WAIT is over" db db-start
check "the start said what it waited for" grep -q "127.0.0.1:$port is held (TIME-WAIT" "$var/infra.log"
pid=$(cat "$var/mariadb/run/mariadbd.pid" 2>/dev/null || echo 0)
check "mariadbd (pid $pid) runs with the shim loaded" \
	grep -q "outbox-fsync-hold.so" "/proc/$pid/maps"
check "nothing refused to preload it (its log)" \
	bash -c "! grep -q 'cannot be preloaded' '$var/mariadb/log/error.log' '$var/infra.log' 2>/dev/null"

# The redo log: 1 GiB on every private server and the compose service
# (README, "History and memory": with 10 million customers, the email
# index's random pages are written once per checkpoint; the default
# 96 MiB made app ingest 8 % slower and its p99 30-44 ms against 4-8).
redo() { mariadb --defaults-file="$var/mariadb/admin.cnf" -N -B -e "SELECT @@innodb_log_file_size"; }
check "its redo log is 1 GiB (innodb_log_file_size $(redo))" test "$(redo)" = 1073741824
check "the compose service's MariaDB has the same redo log" \
	grep -q '"--innodb-log-file-size=1G"' docker-compose.yml

# The huge-page shim (scripts/mariadb_thp.c), built and preloaded by
# default (OUTBOX_DB_THP=1; make test sets 0 for its own servers) beside
# a given one: the buffer pool's mapping is advised MADV_HUGEPAGE ("hg"
# among its VmFlags),
# whatever the kernel's own setting; with OUTBOX_DB_THP=0, neither.
# pool_field <pid> <field>: the line <field> of mariadbd's largest
# writable mapping in its smaps (the pool in use; the rest of what it
# reserves is not writable).  pool_flags <pid>: its VmFlags.
pool_field() {
	awk -v want="$2:" '/^Size:/ { cur = $2 } $1 == want { v = $0 }
	     /^VmFlags:/ && / wr / { if (cur > best) { best = cur; out = v } }
	     END { print out }' "/proc/$1/smaps"
}
pool_flags() { pool_field "$1" VmFlags; }
pool_advised() { pool_flags "$1" | grep -qw hg; }
unshimmed() { ! grep -q "mariadb-thp.so" "/proc/$1/maps" && ! pool_advised "$1"; }
db_nothp() { thp=0 db "$@"; }
check "mariadbd (pid $pid) runs with the huge-page shim too" \
	grep -q "mariadb-thp.so" "/proc/$pid/maps"
check "its buffer pool is advised into huge pages ($(pool_flags "$pid"))" \
	pool_advised "$pid"
# mariadbd turns transparent huge pages off for itself once its pool is
# mapped (prctl PR_SET_THP_DISABLE; Debian 12's 10.11.19 does): only the
# 516 MiB InnoDB touches as it starts were huge pages, every page the pool
# filled later a 4 KiB one.  The shim keeps them on for advised mappings
# (THP_enabled 1 in the status: not off for the whole process): 60 MB
# written fill the pool in huge pages (unless the kernel's own setting is
# "never": then there are none to check).
thp_mode=$(sed -E 's/.*\[([a-z]+)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo none)
pool_huge_kb() { pool_field "$1" AnonHugePages | awk '{ print $2 + 0 }'; }
fills_in_huge_pages() {
	local before after
	before=$(pool_huge_kb "$1")
	mariadb --defaults-file="$var/mariadb/admin.cnf" -e "CREATE DATABASE thp_fill;
		USE thp_fill;
		CREATE TABLE thp_fill.t (id INT PRIMARY KEY, pad VARCHAR(1000)) ENGINE=InnoDB;
		INSERT INTO thp_fill.t SELECT seq, REPEAT('x', 1000) FROM seq_1_to_60000;
		DROP DATABASE thp_fill" || return 1
	after=$(pool_huge_kb "$1")
	echo "infra: the pool's huge pages: $before kB at start, $after kB after 60 MB written (THP $thp_mode)"
	[ "$after" -ge $((before + 32768)) ]
}
if [ "$thp_mode" = never ] || [ "$thp_mode" = none ]; then
	echo "infra: transparent huge pages are '$thp_mode' on this kernel: the pool's filling not checked"
else
	check "transparent huge pages stay on in mariadbd (its status: $(grep THP_enabled "/proc/$pid/status" | tr -s '\t ' ' '))" \
		grep -Eq '^THP_enabled:\s+1' "/proc/$pid/status"
	check "the pages its pool fills after the start are huge pages too" \
		fills_in_huge_pages "$pid"
fi
check "the server stops" db db-stop
check "a MariaDB starts with OUTBOX_DB_THP=0" db_nothp db-start
pid=$(cat "$var/mariadb/run/mariadbd.pid" 2>/dev/null || echo 0)
check "it runs without the huge-page shim, its pool not advised ($(pool_flags "$pid"))" \
	unshimmed "$pid"

# The containers' smoke run (scripts/containers.sh) listens on host ports
# of its own, picked before the containers start: those too lie below
# the ephemeral range, where the relay container's own connections to
# the servers, made just before the worker's start, took the worker's
# metrics port 39466 in one CI run (its HEALTHCHECK then failed).
smoke_ports_low() {
	local p lo
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
	for p in $(sed -nE 's/.*pick_port ([0-9]+) OUTBOX_CTR_.*METRICS_PORT.*/\1/p' scripts/containers.sh); do
		[ "$p" -lt "$lo" ] || { echo "default $p"; return 1; }
	done
	p=$(sed -nE 's/.*p=\$\(\(([0-9]+) \+ RANDOM % ([0-9]+)\)\).*/\1 \2/p' scripts/containers.sh)
	[ -n "$p" ] && [ $((${p% *} + ${p#* })) -le "$lo" ] || { echo "fallback $p"; return 1; }
}
check "the containers' smoke ports lie below the ephemeral range" smoke_ports_low

# As root, every start reserves the ports of the dev and test sets that
# lie in the ephemeral range (the dev set's 33063 and 56720) in
# net.ipv4.ip_local_reserved_ports: no outgoing connection takes them as
# its source port from then on.  OUTBOX_RESERVE_PORTS=0: left alone.
rsv=/proc/sys/net/ipv4/ip_local_reserved_ports
# The dev and test sets' ports (ports.env, as infra.sh reads them) in the
# kernel's ephemeral range.
in_range() {
	local lo hi p
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
	# shellcheck source=scripts/ports.env
	for p in $(. scripts/ports.env && echo "$OUTBOX_DEV_DB_PORT $OUTBOX_DEV_MQ_PORT $OUTBOX_TEST_DB_PORT $OUTBOX_TEST_MQ_PORT"); do
		[ "$p" -lt "$lo" ] || [ "$p" -gt "$hi" ] || echo "$p"
	done
}
# reserved PORT...: each one is in the kernel's list ("a-b,c,...").
reserved() {
	local p
	for p in "$@"; do
		tr ',' '\n' <"$rsv" | awk -F- -v p="$p" \
			'{ hi = NF > 1 ? $2 : $1 } p >= $1 && p <= hi { f = 1 } END { exit !f }' || return 1
	done
}
none_reserved() {
	local p
	for p in "$@"; do ! reserved "$p" || return 1; done
}
eph=$(in_range | paste -sd ' ')
if [ "$(id -u)" != 0 ]; then
	echo "infra: not root: the reservation of the ephemeral ports not checked"
else
	check "the dev set's ports in the ephemeral range ($eph) are known" test -n "$eph"
	# Those entries taken out of the list (the test set's start reserved
	# them already), a start with OUTBOX_RESERVE_PORTS=0, then one
	# without (the server runs: both reuse it).
	# shellcheck disable=SC2086   # one word per port
	rest=$(tr ',' '\n' <"$rsv" | grep -vxF -f <(printf '%s\n' $eph) | paste -sd ,)
	echo "$rest" >"$rsv"
	# shellcheck disable=SC2086
	check "those ports taken out of the list ($(cat "$rsv"))" none_reserved $eph
	keep() { OUTBOX_RESERVE_PORTS=0 db db-start; }
	check "a start with OUTBOX_RESERVE_PORTS=0" keep
	# shellcheck disable=SC2086
	check "left the list alone ($(cat "$rsv"))" none_reserved $eph
	check "a start" db db-start
	# shellcheck disable=SC2086
	check "reserved them ($(cat "$rsv"))" reserved $eph
	check "and said so" grep -q "reserved .*$(sed 's/ .*//' <<<"$eph").*net.ipv4.ip_local_reserved_ports" "$var/infra.log"
fi
finish
