#!/usr/bin/env bash
#
# scripts/infra.sh - the project's own MariaDB and RabbitMQ, without systemd.
#
#   scripts/infra.sh start | stop | status | wait | restart
#   scripts/infra.sh db-start | db-stop | db-kill | mq-start | mq-stop | mq-kill
#   scripts/infra.sh db-sql [mariadb args...]   admin SQL shell (root, socket)
#   scripts/infra.sh mq-ctl [rabbitmqctl args...]    (same node, cookie, epmd)
#   scripts/infra.sh mq-diag [rabbitmq-diagnostics args...]
#   scripts/infra.sh destroy                    stop, then delete both data dirs
#   OUTBOX_MQ_NODES=3 scripts/infra.sh ...      the same with a RabbitMQ cluster;
#       mq-start|mq-stop|mq-kill [N...]         those nodes only (1..3), or all
#       mq-queues [rabbitmq-queues args...]     (mq-ctl/diag/queues: any running node)
#
# Everything lives under $OUTBOX_VAR (git-ignored var/ by default):
#   mariadb/{data,run,log,tmp}   mariadb/admin.cnf (root over the socket)
#                                mariadb/app.cnf   (DB_USER over TCP)
#   rabbitmq/{mnesia,log,home,etc,run}
# Which servers: the set of the port plan (scripts/ports.env) named by
# OUTBOX_SERVERS (dev, the default, or test), through scripts/env.sh; each
# value can be given instead (127.0.0.1 only):
#   OUTBOX_VAR           dev <repo>/var, test <repo>/var/test
#   OUTBOX_DB_PORT       MariaDB (dev 33063, test 23306)
#   OUTBOX_MQ_PORT       RabbitMQ AMQP (dev 56720, test 23672); node
#                        outbox-<port>@localhost
#   OUTBOX_MQ_DIST_PORT  OUTBOX_MQ_PORT+1  Erlang distribution
#   OUTBOX_MQ_EPMD_PORT  OUTBOX_MQ_PORT+2  a private epmd (not the shared 4369)
#                        (both 25000 lower when AMQP+2 is 32768 or more:
#                        dev 31721, 31722)
# A port held by a listener stops `start` at once, saying who holds it. A
# start that cannot bind (an outgoing connection may hold any port of the
# ephemeral range, where the dev ports are, and leaves it in TIME-WAIT for
# 60 s once closed) waits for the port's sockets to end (OUTBOX_PORT_WAIT,
# 65 s) and tries again (3 starts); a live connection that holds it
# (OUTBOX_PORT_LIVE_WAIT, 5 s, later) stops it at once, named.  As root,
# every start reserves the sets' ports of the ephemeral range against
# outgoing connections (net.ipv4.ip_local_reserved_ports;
# OUTBOX_RESERVE_PORTS=0: not).  RabbitMQ's
# could_not_start_listener never shows as a raw crash dump.
# OUTBOX_MQ_NODES=3 (scripts/env.sh; 1, the default: the one node above):
# a RabbitMQ cluster of the set's cluster ports instead (scripts/ports.env:
# OUTBOX_MQ_PORTS, OUTBOX_MQ_DIST_PORTS, one OUTBOX_MQ_EPMD_PORT), nodes
# outbox-<AMQP port>@localhost, data under $OUTBOX_VAR/rabbitmq-cluster/
# (nodeN/{mnesia,log,etc,run}, one home/.erlang.cookie), each node's memory
# limit vm_memory_high_watermark.absolute = OUTBOX_MQ_NODE_MEMORY (512MiB).
# A fresh cluster: node 1 starts first (and gets the users), the others
# start side by side and then join it one after another (join_cluster: two
# at once can both fail); a cluster that ran before starts all its nodes
# side by side (each may wait for the others' tables).  A start that fails
# stops the nodes it started, and their epmd.
# Stopped or killed, a node keeps its membership: mq-start N brings it back.
# For tests that need a special MariaDB (their own OUTBOX_VAR and port):
#   OUTBOX_DB_PRELOAD    a shared object preloaded into mariadbd (LD_PRELOAD;
#                        a path relative to the caller's folder, or absolute)
#   OUTBOX_DB_ARGS       more mariadbd options, split on spaces
#   OUTBOX_DB_BINLOG=1   the binary log on, as the relay's binlog mode needs
#                        it (log_bin, binlog_format=ROW, binlog_row_image=FULL,
#                        binlog_row_metadata=FULL, sync_binlog=1, server_id=1;
#                        README, "Binlog mode"); the default servers keep it off.
#                        A server of that OUTBOX_VAR already running without
#                        it is restarted with it (make dev RELAY_MODE=binlog)
#   OUTBOX_DB_THP=0      the buffer pool in 4 KiB pages: without the shim
#                        scripts/mariadb_thp.c (built into <var>/mariadb/
#                        with cc, preloaded by default), which advises it
#                        into transparent huge pages (README, "History and
#                        memory")
# Timeouts: OUTBOX_DB_START_TIMEOUT (30 s), OUTBOX_MQ_START_TIMEOUT (60 s),
#   OUTBOX_STOP_TIMEOUT (30 s), OUTBOX_WAIT_TIMEOUT (60 s, for `wait`).
# It never touches the system's instances (3306, 5672, 4369, /var/lib/mysql,
# /var/lib/rabbitmq, /etc/mysql, /etc/rabbitmq): private config, data, logs,
# cookie and epmd.
#
# Credentials come from .local.env: DB_USER/DB_PASS/DB_NAME and
# RABBITMQ_USER/RABBITMQ_PASS. `start` makes them work (idempotently):
#   MariaDB : root@localhost (unix_socket OR password), root@127.0.0.1 and
#             'outbox'@'%' with DB_PASS; DB_USER too if it is not root;
#             database DB_NAME, utf8mb4 / utf8mb4_unicode_ci.
#   RabbitMQ: RABBITMQ_USER/RABBITMQ_PASS, tag administrator, all permissions
#             on vhost "/". No guest user, no plugins.
#
# Run as root, mariadbd runs with --user=root (the files stay root's, so
# `rm -rf var` just works); as another user, everything runs as that user.
# RabbitMQ is started with /usr/lib/rabbitmq/bin/rabbitmq-server, not Debian's
# /usr/sbin wrapper, which su's to the rabbitmq user, cd's to /var/lib/rabbitmq
# and resets HOME (so the cookie would be the system one).
set -euo pipefail
# The clients here log in with the files of this script (admin.cnf, the
# socket): a caller's MYSQL_PWD (the bench exports one) would be sent as
# root's password to a server just initialised, where root has none yet.
unset MYSQL_PWD

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$SCRIPT_DIR")
export PATH="/usr/sbin:/sbin:$PATH"
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"
LIB_NAME=infra

# ---------------------------------------------------------------- settings

# The set of servers (OUTBOX_SERVERS, OUTBOX_VAR, OUTBOX_*_PORT).
# shellcheck source=scripts/env.sh
. "$SCRIPT_DIR/env.sh"
# The credentials of .local.env, as env.sh exported them.
DB_ROOT_PASS=${DB_PASS:-123456}
DB_APP_USER=${DB_USER:-root}
DB_APP_PASS=$DB_ROOT_PASS
DB_APP_NAME=${DB_NAME:-outbox-demo}
DB_EXTRA_USER=outbox   # the project's non-root database user, same password
MQ_APP_USER=${RABBITMQ_USER:-outbox}
MQ_APP_PASS=${RABBITMQ_PASS:-123456}
# env.sh and maybe the caller exported the clients' RABBITMQ_* / DB_*: they
# must not leak into the servers (RabbitMQ reads RABBITMQ_* variables).
unset RABBITMQ_USER RABBITMQ_PASS RABBITMQ_HOST RABBITMQ_PORT \
      DB_USER DB_PASS DB_HOST DB_PORT DB_NAME

is_port() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }
DB_PORT=$OUTBOX_DB_PORT
MQ_PORT=$OUTBOX_MQ_PORT
is_port "$DB_PORT" || die "OUTBOX_DB_PORT=$DB_PORT: not a port number (1..65535)"
is_port "$MQ_PORT" || die "OUTBOX_MQ_PORT=$MQ_PORT: not a port number (1..65535)"
# The distribution and epmd ports are ours to choose: when AMQP+2 would be
# in the ephemeral range (the dev set keeps the original's 56720), they go
# 25000 lower (56720: 31721, 31722), where no outgoing connection can
# hold them when the node starts.
mq_base=$MQ_PORT
[ "$((MQ_PORT + 2))" -lt 32768 ] || mq_base=$((MQ_PORT - 25000))
MQ_DIST_PORT=${OUTBOX_MQ_DIST_PORT:-$((mq_base + 1))}
MQ_EPMD_PORT=${OUTBOX_MQ_EPMD_PORT:-$((mq_base + 2))}
is_port "$MQ_DIST_PORT" || die "OUTBOX_MQ_DIST_PORT=$MQ_DIST_PORT: not a port number (1..65535); set it explicitly"
is_port "$MQ_EPMD_PORT" || die "OUTBOX_MQ_EPMD_PORT=$MQ_EPMD_PORT: not a port number (1..65535); set it explicitly"
declare -A seen_port=()
for p in "$DB_PORT" "$MQ_PORT" "$MQ_DIST_PORT" "$MQ_EPMD_PORT"; do
    [ -z "${seen_port[$p]+x}" ] || die "port $p used twice (OUTBOX_DB_PORT=$DB_PORT OUTBOX_MQ_PORT=$MQ_PORT dist=$MQ_DIST_PORT epmd=$MQ_EPMD_PORT)"
    seen_port[$p]=1
done

SERVERS=$OUTBOX_SERVERS
VAR=$OUTBOX_VAR
# For the messages: a set of scripts/ports.env, or ports of the caller's.
slot_db="OUTBOX_${SERVERS^^}_DB_PORT" slot_mq="OUTBOX_${SERVERS^^}_MQ_PORT"
SET_LABEL="$SERVERS servers"
if [ "${!slot_db:-}" != "$DB_PORT" ] ||
   { [ "${OUTBOX_MQ_NODES:-1}" = 1 ] && [ "${!slot_mq:-}" != "$MQ_PORT" ]; }; then
    SET_LABEL="ports given by OUTBOX_DB_PORT, OUTBOX_MQ_PORT"
fi
mkdir -p "$VAR" || die "cannot create OUTBOX_VAR=$VAR"
VAR=$(cd "$VAR" && pwd)

DB_DIR=$VAR/mariadb
DB_DATA=$DB_DIR/data
DB_RUN=$DB_DIR/run
DB_LOGDIR=$DB_DIR/log
DB_TMP=$DB_DIR/tmp
DB_SOCK=$DB_RUN/mariadbd.sock
DB_PIDFILE=$DB_RUN/mariadbd.pid
DB_LOG=$DB_LOGDIR/error.log
DB_INSTALL_LOG=$DB_LOGDIR/install.log
DB_ADMIN_CNF=$DB_DIR/admin.cnf
DB_APP_CNF=$DB_DIR/app.cnf

mq_paths() { # mq_paths DIR NODE HOME: a node's files
    MQ_DIR=$1
    MQ_NODE=$2
    MQ_HOME=$3
    MQ_MNESIA=$MQ_DIR/mnesia
    MQ_LOGDIR=$MQ_DIR/log
    MQ_ETC=$MQ_DIR/etc
    MQ_RUN=$MQ_DIR/run
    MQ_PIDFILE=$MQ_RUN/rabbitmq.pid
    MQ_STARTUP_LOG=$MQ_LOGDIR/startup.log
    MQ_LOG=$MQ_LOGDIR/$MQ_NODE.log
}
mq_paths "$VAR/rabbitmq" "outbox-$MQ_PORT@localhost" "$VAR/rabbitmq/home"
MQ_BIN=/usr/lib/rabbitmq/bin

# A cluster (OUTBOX_MQ_NODES, scripts/env.sh): its nodes' ports, and
# mq_select N makes node N the one every mq_* function works on.
MQ_NODES=${OUTBOX_MQ_NODES:-1}
[[ $MQ_NODES =~ ^[1-9]$ ]] || die "OUTBOX_MQ_NODES=$MQ_NODES: expected 1 (one node) or 3 (a cluster)"
MQ_CLUSTER_DIR=$VAR/rabbitmq-cluster
MQ_PORT_LIST=() MQ_DIST_LIST=()
if [ "$MQ_NODES" -gt 1 ]; then
    read -ra MQ_PORT_LIST <<<"${OUTBOX_MQ_PORTS:-}"
    read -ra MQ_DIST_LIST <<<"${OUTBOX_MQ_DIST_PORTS:-}"
    if [ "${#MQ_PORT_LIST[@]}" -ne "$MQ_NODES" ] || [ "${#MQ_DIST_LIST[@]}" -ne "$MQ_NODES" ]; then
        die "OUTBOX_MQ_NODES=$MQ_NODES but OUTBOX_MQ_PORTS='${OUTBOX_MQ_PORTS:-}' and OUTBOX_MQ_DIST_PORTS='${OUTBOX_MQ_DIST_PORTS:-}' (scripts/ports.env) name ${#MQ_PORT_LIST[@]} and ${#MQ_DIST_LIST[@]} ports"
    fi
    MQ_EPMD_PORT=${OUTBOX_MQ_EPMD_PORT:-}
    seen_port=()
    for p in "$DB_PORT" "${MQ_PORT_LIST[@]}" "${MQ_DIST_LIST[@]}" "$MQ_EPMD_PORT"; do
        is_port "$p" || die "cluster port '$p': not a port number (OUTBOX_MQ_PORTS, OUTBOX_MQ_DIST_PORTS, OUTBOX_MQ_EPMD_PORT)"
        [ -z "${seen_port[$p]+x}" ] || die "port $p used twice (OUTBOX_DB_PORT=$DB_PORT OUTBOX_MQ_PORTS='${MQ_PORT_LIST[*]}' OUTBOX_MQ_DIST_PORTS='${MQ_DIST_LIST[*]}' OUTBOX_MQ_EPMD_PORT=$MQ_EPMD_PORT)"
        seen_port[$p]=1
    done
fi
MQ_NODE_MEMORY=${OUTBOX_MQ_NODE_MEMORY:-512MiB}
MQ_MIN_BIN_VHEAP=1485504   # words: 46422 (Erlang's default) times 32
MQ_NODE_NAMES=()
for p in "${MQ_PORT_LIST[@]}"; do MQ_NODE_NAMES+=("outbox-$p@localhost"); done
MQ_PROVISION=1   # mq_start provisions the users (a cluster: once, at the end)

mq_select() { # mq_select N: node N of the cluster
    local n=$1
    if ! [[ $n =~ ^[1-9]$ ]] || [ "$n" -gt "$MQ_NODES" ]; then
        die "node '$n': expected 1 to $MQ_NODES (OUTBOX_MQ_NODES=$MQ_NODES)"
    fi
    MQ_N=$n
    MQ_PORT=${MQ_PORT_LIST[n - 1]}
    MQ_DIST_PORT=${MQ_DIST_LIST[n - 1]}
    mq_paths "$MQ_CLUSTER_DIR/node$n" "${MQ_NODE_NAMES[n - 1]}" "$MQ_CLUSTER_DIR/home"
    MQ_LAUNCH_PID=
}
MQ_N=
[ "$MQ_NODES" -eq 1 ] || mq_select 1

DB_START_TIMEOUT=${OUTBOX_DB_START_TIMEOUT:-30}
MQ_START_TIMEOUT=${OUTBOX_MQ_START_TIMEOUT:-60}
STOP_TIMEOUT=${OUTBOX_STOP_TIMEOUT:-30}
WAIT_TIMEOUT=${OUTBOX_WAIT_TIMEOUT:-60}
PORT_WAIT=${OUTBOX_PORT_WAIT:-65}   # > the 60 s of a TIME-WAIT
PORT_LIVE_WAIT=${OUTBOX_PORT_LIVE_WAIT:-5} # a live connection: is it passing?
START_TRIES=3

# The RabbitMQ server and its CLI tools read all of this.
mq_env() {
    export HOME=$MQ_HOME                   # private .erlang.cookie
    export RABBITMQ_NODENAME=$MQ_NODE
    export RABBITMQ_USE_LONGNAME=false
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT=$MQ_PORT
    export RABBITMQ_DIST_PORT=$MQ_DIST_PORT
    export ERL_EPMD_PORT=$MQ_EPMD_PORT     # private epmd, on loopback only
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_MNESIA_BASE=$MQ_MNESIA
    export RABBITMQ_LOG_BASE=$MQ_LOGDIR
    export RABBITMQ_PID_FILE=$MQ_PIDFILE
    export RABBITMQ_CONFIG_FILE=$MQ_ETC/rabbitmq.conf
    export RABBITMQ_ADVANCED_CONFIG_FILE=$MQ_ETC/advanced.config
    export RABBITMQ_CONF_ENV_FILE=$MQ_ETC/rabbitmq-env.conf
    export RABBITMQ_ENABLED_PLUGINS_FILE=$MQ_ETC/enabled_plugins
    # +hmbs: every process may hold 32 times Erlang's default of binaries
    # (46422 words) before they force a full collection of its heap, the
    # value RabbitMQ 4.0 and later set on their message-handling processes;
    # 3.10 has no such setting of its own (README, "The broker's
    # settings").
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} +hmbs $MQ_MIN_BIN_VHEAP"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export ERL_CRASH_DUMP=$MQ_LOGDIR/erl_crash.dump
}

# ---------------------------------------------------------------- helpers

elapsed() { # elapsed START_US -> "1.23 s"
    local d=$(( $(now_us) - $1 ))
    printf '%d.%02d s' $((d / 1000000)) $((d % 1000000 / 10000))
}

# pid_alive PID [COMM]: process exists, is not a zombie, and (if given) its
# name is COMM. (PID 1 here may reap orphans late: a dead server can linger
# as a zombie, which kill -0 still reports alive.)
pid_alive() {
    local pid=$1 comm=${2:-} stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    case ${stat%% *} in Z|X|x) return 1 ;; esac
    if [ -n "$comm" ]; then
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
    fi
    return 0
}
pid_dead() { ! pid_alive "$@"; }

read_pid() { # read_pid FILE -> pid or ""
    local pid=""
    if [ -f "$1" ]; then read -r pid 2>/dev/null <"$1" || true; fi
    if [[ $pid =~ ^[0-9]+$ ]]; then printf '%s' "$pid"; fi
}

# shellcheck disable=SC2016   # (bash -c '...' _ "$arg": expanded inside)
port_open() { # something accepts TCP connections on 127.0.0.1:PORT
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# port_users PORT [timewait]: the sockets that keep a server from binding
# 127.0.0.1:PORT, one per line (lib.sh's port_holder): those on that
# address or a wildcard one, but not TIME-WAIT: the servers bind with
# SO_REUSEADDR, and a stopped server's own closed connections, which
# linger in TIME-WAIT for 60 s, do not block it.  With "timewait", those
# too: a TIME-WAIT left by an outgoing connection that took PORT as its
# source port blocks the bind all the same (its socket had no
# SO_REUSEADDR); after a start that could not bind, that is the likely
# holder.  Nothing printed: the port is free.
port_users() {
    if command -v ss >/dev/null 2>&1; then
        port_holder "$1" | awk -v p=":$1" -v tw="${2:-}" '($1 != "TIME-WAIT" || tw == "timewait") &&
            ($2 == "127.0.0.1" p || $2 == "0.0.0.0" p || $2 == "*" p ||
             $2 == "[::]" p || $2 == "[::ffff:127.0.0.1]" p)'
    elif port_open "$1"; then
        echo "LISTEN (who: unknown, ss not found)"
    fi
}
port_free() { [ -z "$(port_users "$@")" ]; } # port_free PORT [timewait]

# port_hint DB|MQ: how to move that port.
port_hint() {
    local slot="OUTBOX_${SERVERS^^}_$1_PORT" own="OUTBOX_$1_PORT"
    if [ "$1" = MQ ] && [ "$MQ_NODES" -gt 1 ]; then
        slot=OUTBOX_CLUSTER_MQ_PORTS
        [ "$SERVERS" != dev ] || slot=OUTBOX_DEV_CLUSTER_MQ_PORTS
        printf 'another checkout? move this one'"'"'s %s cluster with %s, %s and %s (README, "Ports")' \
            "$SERVERS" "$slot" "${slot/_PORTS/_DIST_PORTS}" "${slot/_PORTS/_EPMD_PORT}"
    elif [ "${!slot:-}" = "${!own}" ]; then
        printf 'another checkout? move this one'"'"'s %s servers with %s (README, "Ports")' \
            "$SERVERS" "$slot"
    else
        printf 'set %s to another port' "$own"
    fi
}

# ensure_no_listener WHAT PORT HINT: something listening on
# 127.0.0.1:PORT stops us at once, saying who.  (Other sockets are not
# checked before a start: a stopped server's connections linger, closing,
# and do not keep it from binding again.)
ensure_no_listener() {
    local users
    users=$(port_users "$2" | grep '^LISTEN' || true)
    [ -z "$users" ] || die "$1: port 127.0.0.1:$2 is already in use ($(brief "$users")); $3"
}

# live_users PORT: the sockets on PORT that are live connections (neither
# a listener nor TIME-WAIT), one per line.
live_users() { port_users "$1" | grep -v '^LISTEN' || true; }

# wait_port_released WHAT HINT PORT...: after a start that could not bind:
# the sockets still on those ports, TIME-WAIT included (an outgoing
# connection may hold any port of the ephemeral range, where the dev ports
# are, and leaves it in TIME-WAIT for the kernel's 60 s once closed), are
# waited for, up to PORT_WAIT s in all.  A live connection whose source
# port it is (a program's long-lived connection: a test broker's to its
# own epmd held the dev broker's port for that broker's life) still there
# after PORT_LIVE_WAIT s cannot be waited out: that stops the start at
# once, naming it.
wait_port_released() {
    local what=$1 hint=$2 p users end live_end
    shift 2
    end=$(( $(now_us) + PORT_WAIT * 1000000 ))
    for p in "$@"; do
        users=$(port_users "$p" timewait)
        [ -n "$users" ] || continue
        say "$what: 127.0.0.1:$p is held ($(brief "$users")); waiting for it to end"
        live_end=$(( $(now_us) + PORT_LIVE_WAIT * 1000000 ))
        while ! port_free "$p" timewait && [ "$(now_us)" -lt "$end" ]; do
            if [ "$(now_us)" -ge "$live_end" ]; then
                users=$(live_users "$p")
                [ -z "$users" ] ||
                    die "$what: 127.0.0.1:$p is the source port of a live connection ($(brief "$users")): it stays taken as long as that connection lives, waiting cannot free it; end that program, or move the port ($hint)$(reserve_hint)"
            fi
            sleep 0.1
        done
    done
}

# The ports every start reserves against outgoing connections, as root:
# the set's own and the dev and test sets' (scripts/ports.env), those in
# the kernel's ephemeral range (the dev set's 33063 and 56720).
reserve_candidates() {
    printf '%s\n' "$DB_PORT" "$MQ_PORT" "$MQ_DIST_PORT" "$MQ_EPMD_PORT" \
        "${MQ_PORT_LIST[@]}" "${MQ_DIST_LIST[@]}" \
        "$OUTBOX_DEV_DB_PORT" "$OUTBOX_DEV_MQ_PORT" \
        "$OUTBOX_TEST_DB_PORT" "$OUTBOX_TEST_MQ_PORT" | sort -nu
}
RESERVED=/proc/sys/net/ipv4/ip_local_reserved_ports
# port_reserved PORT: PORT is in the kernel's reserved list ("a-b,c,...").
port_reserved() {
    tr ',' '\n' 2>/dev/null <"$RESERVED" | awk -F- -v p="$1" \
        '{ hi = NF > 1 ? $2 : $1 } $1 != "" && p >= $1 && p <= hi { f = 1 } END { exit !f }'
}
# reserve_ports: an outgoing connection of any program may take a port of
# the ephemeral range as its source port, and hold it for as long as it
# lives; a reserved port is never given to one (a server still binds it).
# As root (the kernel's setting, for every program, until the next boot;
# said once, when it changes): the candidates above that are in the range
# and not yet reserved are added to net.ipv4.ip_local_reserved_ports.
# Not root, or OUTBOX_RESERVE_PORTS=0: left alone.
reserve_ports() {
    local lo hi p add=() cur
    [ "${OUTBOX_RESERVE_PORTS:-1}" != 0 ] && [ -w "$RESERVED" ] || return 0
    read -r lo hi 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range || return 0
    while read -r p; do
        [ -n "$p" ] && [ "$p" -ge "$lo" ] && [ "$p" -le "$hi" ] || continue
        port_reserved "$p" || add+=("$p")
    done < <(reserve_candidates)
    [ "${#add[@]}" -gt 0 ] || return 0
    cur=$(cat "$RESERVED" 2>/dev/null || true)
    if printf '%s\n' "${cur:+$cur,}$(IFS=,; echo "${add[*]}")" >"$RESERVED" 2>/dev/null; then
        say "reserved ${add[*]} against outgoing connections' source ports (net.ipv4.ip_local_reserved_ports, the kernel's setting until the next boot; OUTBOX_RESERVE_PORTS=0 leaves it alone; README, \"Ports\")"
    else
        warn "could not reserve ${add[*]} in net.ipv4.ip_local_reserved_ports: an outgoing connection may take them"
    fi
}
# reserve_hint: how reserving would have helped, when it was not done.
reserve_hint() {
    if [ "${OUTBOX_RESERVE_PORTS:-1}" = 0 ]; then
        printf '; OUTBOX_RESERVE_PORTS=0 left the port unreserved'
    elif [ ! -w "$RESERVED" ]; then
        printf '; as root, scripts/infra.sh reserves the ports of the ephemeral range against such connections (README, "Ports")'
    fi
}

# brief LINES: the listener if there is one (a server's accepted
# connections share its port), else the first 3 sockets, on one line;
# no line: a socket ss does not show (bound, not yet connected) or gone.
brief() {
    local l n
    [ -n "$1" ] || { printf 'by nothing ss shows now: a passing connection?'; return 0; }
    l=$(grep '^LISTEN' <<<"$1" || head -n 3 <<<"$1")
    n=$(( $(wc -l <<<"$1") - $(wc -l <<<"$l") ))
    paste -sd ';' <<<"$l" | sed 's/;/; /g' | tr -d '\n'
    if ! grep -q '^LISTEN' <<<"$l" && [ "$n" -gt 0 ]; then printf '; %d more' "$n"; fi
}

# log_from FILE OFFSET: what FILE got after OFFSET bytes (one start's lines).
log_from() { tail -c "+$(($2 + 1))" "$1" 2>/dev/null || true; }
log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# The AMQP 0-9-1 handshake: send the protocol header, expect a method frame
# (Connection.Start, frame type 1) back.
# shellcheck disable=SC2016
amqp_ok() {
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "AMQP\0\0\x09\x01" >&3
        [ "$(head -c 1 <&3 | od -An -tu1 | tr -d " ")" = 1 ]' _ "$1" 2>/dev/null
}

# Runs "$@" in a new session, detached from our stdio and from every other
# inherited descriptor (the lock, make's jobserver, a caller's pipe), so the
# server never keeps a caller waiting and Ctrl-C in a terminal cannot reach it.
# The subshell execs setsid -w, which execs the server (or, if it must fork,
# waits for it): the returned $! lives exactly as long as the server.
spawn() { # spawn LOGFILE CMD...
    local log=$1; shift
    (
        cd "$VAR"
        for fd in "/proc/$BASHPID/fd/"*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        exec setsid -w "$@" </dev/null >>"$log" 2>&1
    ) &
    SPAWNED=$!
}

log_tail() { # log_tail FILE [N]
    [ -s "$1" ] || return 0
    printf 'infra: --- last lines of %s ---\n' "$1" >&2
    tail -n "${2:-20}" "$1" | sed 's/^/infra: | /' >&2
}

# Keep the secrets private.
write_private() { # write_private FILE  (content on stdin)
    local tmp=$1.tmp.$BASHPID
    (umask 077 && cat >"$tmp") && mv -f "$tmp" "$1"
}

cnf_quote() { # a value for a MariaDB option file
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}
sql_str() { # a SQL string literal
    local s=${1//\\/\\\\}
    s=${s//\'/\\\'}
    printf "'%s'" "$s"
}
# shellcheck disable=SC2016
sql_ident() { # a SQL identifier, backquoted
    printf '`%s`' "${1//\`/\`\`}"
}

need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] ||
            die "$c not found: run scripts/deps.sh first"
    done
}

# One infra.sh at a time per OUTBOX_VAR (make -j, parallel tests).
LOCKED=0
lock() {
    [ "$LOCKED" = 1 ] && return 0
    exec 9>"$VAR/.infra.lock"
    if ! flock -w 300 9; then
        die "another scripts/infra.sh still holds $VAR/.infra.lock after 300 s"
    fi
    LOCKED=1
}

# ---------------------------------------------------------------- MariaDB

db_pid() { # pid of our live mariadbd, or fail
    local pid
    pid=$(read_pid "$DB_PIDFILE")
    [ -n "$pid" ] && pid_alive "$pid" mariadbd && printf '%s' "$pid"
}

DB_FRESH=0   # root has no password yet (right after mariadb-install-db)
db_ping() { # the server answers on its socket (even "access denied" is an answer)
    if [ "$DB_FRESH" = 1 ] || [ ! -f "$DB_ADMIN_CNF" ]; then
        mysqladmin --no-defaults --protocol=socket --socket="$DB_SOCK" -uroot \
            --connect-timeout=2 ping >/dev/null 2>&1
    else
        mysqladmin --defaults-file="$DB_ADMIN_CNF" --connect-timeout=2 ping >/dev/null 2>&1
    fi
}

db_write_cnf() {
    write_private "$DB_ADMIN_CNF" <<EOF
# root over the private socket; used by scripts/infra.sh (generated)
[client]
user=root
password=$(cnf_quote "$DB_ROOT_PASS")
socket=$DB_SOCK
protocol=socket
EOF
    write_private "$DB_APP_CNF" <<EOF
# the application's account over TCP (generated): mariadb --defaults-file=$DB_APP_CNF
[client]
user=$(cnf_quote "$DB_APP_USER")
password=$(cnf_quote "$DB_APP_PASS")
host=127.0.0.1
port=$DB_PORT
protocol=tcp
database=$(cnf_quote "$DB_APP_NAME")
EOF
}

db_admin() { mariadb --defaults-file="$DB_ADMIN_CNF" "$@"; }

db_install() {
    say "mariadb: initialising $DB_DATA"
    # No marker: a new folder, or an install that did not finish. Never
    # delete data silently: a non-empty folder is moved aside.
    if [ -d "$DB_DATA" ] && [ -n "$(ls -A "$DB_DATA" 2>/dev/null)" ]; then
        local aside
        aside=$DB_DATA.incomplete.$(date +%Y%m%d-%H%M%S)
        mv "$DB_DATA" "$aside"
        warn "mariadb: $DB_DATA had no completed install; moved to $aside"
    fi
    mkdir -p "$DB_DATA"
    local user_opt=()
    [ "$(id -u)" -eq 0 ] && user_opt=(--user=root)
    if ! mariadb-install-db --no-defaults "${user_opt[@]}" --datadir="$DB_DATA" \
            --tmpdir="$DB_TMP" --auth-root-authentication-method=normal \
            --skip-test-db --skip-name-resolve >"$DB_INSTALL_LOG" 2>&1; then
        log_tail "$DB_INSTALL_LOG"
        rm -rf "$DB_DATA"
        die "mariadb: mariadb-install-db failed (log: $DB_INSTALL_LOG)"
    fi
    touch "$DB_DATA/.outbox-installed"
}

# Idempotent: users, passwords, grants, database.
db_provision() { # db_provision FRESH(0/1)
    local fresh=$1 host pw conn=()
    pw=$(sql_str "$DB_ROOT_PASS")
    host=$(uname -n)
    local sql
    sql="
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD($pw);
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY $pw;
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
ALTER USER IF EXISTS 'root'@'::1' IDENTIFIED BY $pw;
DROP USER IF EXISTS 'root'@$(sql_str "$host");
CREATE DATABASE IF NOT EXISTS $(sql_ident "$DB_APP_NAME") CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
ALTER DATABASE $(sql_ident "$DB_APP_NAME") CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS $(sql_str "$DB_EXTRA_USER")@'%';
ALTER USER $(sql_str "$DB_EXTRA_USER")@'%' IDENTIFIED BY $pw;
GRANT ALL PRIVILEGES ON $(sql_ident "$DB_APP_NAME").* TO $(sql_str "$DB_EXTRA_USER")@'%';"
    # One login per daemon, holding only its role (grants: migrations/006);
    # the same file is docker-compose.yml's init script.
    sql+=$'\n'"$(cat "$ROOT/scripts/db-users.sql")"
    if [ "$DB_APP_USER" != root ] && [ "$DB_APP_USER" != "$DB_EXTRA_USER" ]; then
        sql+="
CREATE USER IF NOT EXISTS $(sql_str "$DB_APP_USER")@'%';
ALTER USER $(sql_str "$DB_APP_USER")@'%' IDENTIFIED BY $(sql_str "$DB_APP_PASS");
GRANT ALL PRIVILEGES ON $(sql_ident "$DB_APP_NAME").* TO $(sql_str "$DB_APP_USER")@'%';"
    fi
    # Right after mariadb-install-db root has no password yet; later the
    # admin.cnf password (or, for the OS root, unix_socket) works.
    if [ "$fresh" = 1 ]; then
        conn=(mariadb --no-defaults --protocol=socket --socket="$DB_SOCK" -uroot)
    else
        conn=(db_admin)
        if ! db_admin -e 'SELECT 1' >/dev/null 2>&1; then
            conn=(mariadb --no-defaults --protocol=socket --socket="$DB_SOCK" -uroot)
        fi
    fi
    local out
    if ! out=$("${conn[@]}" --batch 2>&1 <<<"$sql"); then
        printf '%s\n' "$out" | sed 's/^/infra: | /' >&2
        die "mariadb: cannot create the users and the database (admin access over $DB_SOCK failed?)"
    fi
    # What the application will do: DB_USER over TCP.
    if ! out=$(mariadb --defaults-file="$DB_APP_CNF" --connect-timeout=5 -e 'SELECT 1' 2>&1); then
        printf '%s\n' "$out" | sed 's/^/infra: | /' >&2
        die "mariadb: $DB_APP_USER cannot log in over TCP 127.0.0.1:$DB_PORT"
    fi
}

DB_LAUNCH_PID=
db_ready_or_dead() { # 0 when ready or when the launched server died
    if [ -n "$DB_LAUNCH_PID" ] && pid_dead "$DB_LAUNCH_PID"; then
        return 0
    fi
    db_ping && [ -n "$(db_pid)" ]
}

db_start() {
    need_cmd mariadbd mariadb-install-db mariadb mysqladmin
    local t0 pid fresh=0
    t0=$(now_us)
    mkdir -p "$DB_RUN" "$DB_LOGDIR" "$DB_TMP"
    if pid=$(db_pid); then
        wait_for "$DB_START_TIMEOUT" db_ping || {
            log_tail "$DB_LOG"
            die "mariadb: pid $pid is alive but does not answer on $DB_SOCK after ${DB_START_TIMEOUT} s"
        }
        # The server of this OUTBOX_VAR, started with another port?
        local port
        port=$(db_admin -N -B -e 'SELECT @@port' 2>/dev/null || true)
        [ -z "$port" ] || [ "$port" = "$DB_PORT" ] ||
            die "mariadb: the server of $VAR runs (pid $pid) on 127.0.0.1:$port, not $DB_PORT: stop it first (scripts/infra.sh db-stop with the settings it was started with) or use another OUTBOX_VAR"
        # OUTBOX_DB_BINLOG=1 and a server without the binary log (make dev
        # RELAY_MODE=binlog after a make dev): restarted with it, data kept.
        if [ "${OUTBOX_DB_BINLOG:-0}" = 1 ] &&
           [ "$(db_admin -N -B -e 'SELECT @@log_bin' 2>/dev/null || true)" != 1 ]; then
            say "mariadb: running without the binary log (pid $pid); restarting it with it (OUTBOX_DB_BINLOG=1)"
            db_stop
        else
            db_write_cnf
            db_provision 0
            say "mariadb: already running (pid $pid, 127.0.0.1:$DB_PORT), reused"
            return 0
        fi
    fi
    db_write_cnf

    # Not running: whatever a crash (kill -9) left behind is stale.
    rm -f "$DB_PIDFILE" "$DB_SOCK" "$DB_SOCK.lock"
    # A unix socket path is limited to 107 bytes.
    [ ${#DB_SOCK} -le 107 ] || die "mariadb: socket path too long (${#DB_SOCK} > 107 bytes): $DB_SOCK; use a shorter OUTBOX_VAR"
    if [ ! -f "$DB_DATA/.outbox-installed" ]; then
        ensure_no_listener mariadb "$DB_PORT" "$(port_hint DB)"
        db_install
        fresh=1 DB_FRESH=1
    fi
    local try=1
    while :; do
        ensure_no_listener mariadb "$DB_PORT" "$(port_hint DB)"
        db_launch && break
        # The port was taken between the check and the bind.
        [ "$try" -lt "$START_TRIES" ] ||
            die "mariadb: could not listen on 127.0.0.1:$DB_PORT in $START_TRIES starts: address in use ($(brief "$(port_users "$DB_PORT" timewait)")); $(port_hint DB) (log: $DB_LOG)"
        try=$((try + 1))
        say "mariadb: 127.0.0.1:$DB_PORT in use when the server started; start $try of $START_TRIES"
        wait_port_released mariadb "$(port_hint DB)" "$DB_PORT"
    done
    db_provision "$fresh"
    DB_FRESH=0
    say "mariadb: started (pid $(db_pid), 127.0.0.1:$DB_PORT, db $DB_APP_NAME, $SET_LABEL) in $(elapsed "$t0")"
}

# db_thp_shim: prints the path of scripts/mariadb_thp.c built as a shared
# object in $DB_DIR (again when the source is newer), or fails with a
# warning (no compiler: the server runs without it, its pool in 4 KiB
# pages).
db_thp_shim() {
    local src=$ROOT/scripts/mariadb_thp.c so=$DB_DIR/mariadb-thp.so
    if [ ! -f "$so" ] || [ "$src" -nt "$so" ]; then
        if ! cc -std=c11 -D_GNU_SOURCE -O2 -fPIC -shared -o "$so.new" "$src" -ldl 2>"$DB_DIR/mariadb-thp.err"; then
            warn "mariadb: the huge-page shim did not build ($DB_DIR/mariadb-thp.err): the buffer pool stays in 4 KiB pages"
            rm -f "$so.new"
            return 1
        fi
        mv "$so.new" "$so"
    fi
    printf '%s\n' "$so"
}

# db_launch: starts mariadbd, waits until it answers: 0; 1 when it could
# not bind its port (nothing shown: the caller tries again); any other
# failure stops us with the log's last lines.
db_launch() {
    local user_opt=() extra_args=() preload=() log_at
    [ "$(id -u)" -eq 0 ] && user_opt=(--user=root)
    # shellcheck disable=SC2206   # options are single words
    [ -n "${OUTBOX_DB_ARGS:-}" ] && extra_args=($OUTBOX_DB_ARGS)
    local so=() thp
    if [ "${OUTBOX_DB_THP:-1}" != 0 ] && thp=$(db_thp_shim); then
        so+=("$thp")
    fi
    if [ -n "${OUTBOX_DB_PRELOAD:-}" ]; then
        [ -f "$OUTBOX_DB_PRELOAD" ] || die "OUTBOX_DB_PRELOAD=$OUTBOX_DB_PRELOAD: no such file"
        # Absolute: mariadbd starts from $VAR (spawn), where a relative
        # path names nothing and the loader ignores it with a warning.
        so+=("$(realpath "$OUTBOX_DB_PRELOAD")")
    fi
    [ "${#so[@]}" -gt 0 ] && preload=(env "LD_PRELOAD=${so[*]}")
    if [ "${OUTBOX_DB_BINLOG:-0}" = 1 ]; then
        extra_args+=(--log-bin="$DB_DATA/mariadb-bin" --binlog-format=ROW
            --binlog-row-image=FULL --binlog-row-metadata=FULL --sync-binlog=1
            --server-id=1)
    fi
    log_at=$(log_size "$DB_LOG")
    # Durability stays the default: innodb_flush_log_at_trx_commit=1,
    # doublewrite on. No binary log (a single server, no replication),
    # unless OUTBOX_DB_BINLOG=1 (above).
    # Buffer pool 2 GiB: the unique email index, the one index written at
    # random places, stays in memory up to ~10 million customers (README,
    # "History and memory"); memory is taken as pages are used, so an
    # empty server stays small.  Redo log 1 GiB (96 MiB by default): a
    # page of that index is then dirtied many times before a checkpoint
    # must write it; with 10 million customers the default made app
    # ingest about 8 % slower and its p99 30-44 ms against 4-8 (by hand,
    # alternated).  It costs 1 GiB of disk per server (allocated, not
    # written) and a longer recovery after a crash (more redo to apply).
    # OUTBOX_DB_ARGS can change either.
    spawn "$DB_LOG" "${preload[@]}" mariadbd --no-defaults "${user_opt[@]}" \
        --datadir="$DB_DATA" --socket="$DB_SOCK" --port="$DB_PORT" \
        --bind-address=127.0.0.1 --pid-file="$DB_PIDFILE" --log-error="$DB_LOG" \
        --tmpdir="$DB_TMP" --skip-name-resolve \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        --innodb-flush-log-at-trx-commit=1 --innodb-buffer-pool-size=2G \
        --innodb-log-file-size=1G --max-connections=500 "${extra_args[@]}"
    DB_LAUNCH_PID=$SPAWNED
    if wait_for "$DB_START_TIMEOUT" db_ready_or_dead && pid_alive "$DB_LAUNCH_PID"; then
        return 0
    fi
    local why="exited during startup"
    if pid_alive "$DB_LAUNCH_PID"; then
        why="not ready within ${DB_START_TIMEOUT} s, killed"
        kill -9 "$DB_LAUNCH_PID" 2>/dev/null || true
        wait_for 10 pid_dead "$DB_LAUNCH_PID" || true
    elif log_from "$DB_LOG" "$log_at" | grep -qE 'Bind on TCP/IP port|Address already in use'; then
        rm -f "$DB_PIDFILE" "$DB_SOCK" "$DB_SOCK.lock"
        return 1
    fi
    log_tail "$DB_LOG"
    die "mariadb: failed to start on 127.0.0.1:$DB_PORT: $why (log: $DB_LOG)"
}

db_stop() {
    local pid t0
    t0=$(now_us)
    if ! pid=$(db_pid); then
        rm -f "$DB_PIDFILE" "$DB_SOCK" "$DB_SOCK.lock"
        say "mariadb: not running"
        return 0
    fi
    # SHUTDOWN returns at once (mysqladmin shutdown polls in whole seconds);
    # SIGTERM is the same clean shutdown, if the admin login does not work.
    if ! db_admin -e 'SHUTDOWN' >/dev/null 2>&1; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    if ! wait_for "$STOP_TIMEOUT" pid_dead "$pid" mariadbd; then
        warn "mariadb: pid $pid still running after ${STOP_TIMEOUT} s, killing it"
        kill -9 "$pid" 2>/dev/null || true
        wait_for 10 pid_dead "$pid" mariadbd || die "mariadb: cannot kill pid $pid"
    fi
    rm -f "$DB_PIDFILE" "$DB_SOCK" "$DB_SOCK.lock"
    say "mariadb: stopped (pid $pid) in $(elapsed "$t0")"
}

db_kill() {
    local pid
    if ! pid=$(db_pid); then
        say "mariadb: not running"
        return 0
    fi
    kill -9 "$pid" 2>/dev/null || true
    wait_for 10 pid_dead "$pid" mariadbd || die "mariadb: pid $pid survived kill -9"
    say "mariadb: killed (kill -9 pid $pid)"
}

# ---------------------------------------------------------------- RabbitMQ

mq_pid() { # pid of our live beam.smp, or fail
    local pid
    pid=$(read_pid "$MQ_PIDFILE")
    [ -n "$pid" ] && pid_alive "$pid" beam.smp && printf '%s' "$pid"
}

ctl()  { timeout 60 "$MQ_BIN/rabbitmqctl" "$@"; }
diag() { timeout 60 "$MQ_BIN/rabbitmq-diagnostics" "$@"; }

mq_write_config() {
    mkdir -p "$MQ_MNESIA" "$MQ_LOGDIR" "$MQ_HOME" "$MQ_ETC" "$MQ_RUN"
    if [ ! -s "$MQ_HOME/.erlang.cookie" ]; then
        local cookie
        cookie=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n' | tr 'a-f' 'A-F')
        (umask 277 && printf '%s' "$cookie" >"$MQ_HOME/.erlang.cookie")
    fi
    printf '[].\n' >"$MQ_ETC/enabled_plugins"
    : >"$MQ_ETC/rabbitmq-env.conf"
    # default_* create the user on the node's first boot (instead of guest);
    # mq_provision keeps it right on every start.
    write_private "$MQ_ETC/rabbitmq.conf" <<EOF
# generated by scripts/infra.sh
default_user = $MQ_APP_USER
default_pass = $MQ_APP_PASS
default_vhost = /
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
log.console = false
log.file.level = info
EOF
    if [ "$MQ_NODES" -gt 1 ]; then
        # Each node would size its limit from the machine's RAM (0.4 of it).
        printf 'vm_memory_high_watermark.absolute = %s\n' "$MQ_NODE_MEMORY" \
            >>"$MQ_ETC/rabbitmq.conf"
    fi
    # A quorum queue refreshes the message counts that rabbitmqctl
    # list_queues shows once a tick, 5 s by default: a test waiting for
    # messages to be held or to come back after a kill waited up to 5 s
    # for each (the quorum suite's kills, 10 s a round).  The test servers
    # tick every 0.5 s, as RabbitMQ's own test suites do; the other sets
    # keep the default.  A queue takes the tick when it is declared.
    if [ "$SERVERS" = test ]; then
        printf '[{rabbit, [{quorum_tick_interval, 500}]}].\n' \
            >"$MQ_ETC/advanced.config"
    else
        rm -f "$MQ_ETC/advanced.config"
    fi
}

mq_provision() {
    # The three queries run side by side (each CLI call is an Erlang VM, ~0.4 s).
    local users perms auth=0 pu pp pa tmp=$MQ_RUN/provision.$BASHPID
    ctl -q list_users --no-table-headers >"$tmp.users" 2>&1 & pu=$!
    ctl -q list_permissions -p / --no-table-headers >"$tmp.perms" 2>&1 & pp=$!
    ctl -q authenticate_user "$MQ_APP_USER" "$MQ_APP_PASS" >/dev/null 2>&1 & pa=$!
    if wait "$pa"; then auth=1; fi
    local ok=1
    wait "$pu" || ok=0
    wait "$pp" || ok=0
    users=$(cat "$tmp.users") perms=$(cat "$tmp.perms")
    rm -f "$tmp.users" "$tmp.perms"
    [ "$ok" = 1 ] || die "rabbitmq: rabbitmqctl cannot query $MQ_NODE: $users $perms"

    if ! awk -F'\t' -v u="$MQ_APP_USER" '$1 == u { f = 1 } END { exit !f }' <<<"$users"; then
        ctl -q add_user "$MQ_APP_USER" "$MQ_APP_PASS" >/dev/null
        users=""
    elif [ "$auth" = 0 ]; then
        ctl -q change_password "$MQ_APP_USER" "$MQ_APP_PASS" >/dev/null
    fi
    if ! awk -F'\t' -v u="$MQ_APP_USER" '$1 == u && $2 ~ /administrator/ { f = 1 } END { exit !f }' <<<"$users"; then
        ctl -q set_user_tags "$MQ_APP_USER" administrator >/dev/null
    fi
    if ! awk -F'\t' -v u="$MQ_APP_USER" '$1 == u && $2 == ".*" && $3 == ".*" && $4 == ".*" { f = 1 } END { exit !f }' <<<"$perms"; then
        ctl -q set_permissions -p / "$MQ_APP_USER" '.*' '.*' '.*' >/dev/null
    fi
}

# One user per daemon, limited to the topology of common/mq.h: what it
# declares (configure), publishes to or binds (write), consumes or binds
# from (read).  The same definitions as docker-compose.yml's rabbitmq
# service (scripts/rabbitmq-definitions.json); idempotent.
mq_provision_daemons() {
    ctl -q import_definitions "$ROOT/scripts/rabbitmq-definitions.json" \
        >/dev/null || die "rabbitmq: cannot import scripts/rabbitmq-definitions.json"
}

MQ_LAUNCH_PID=
mq_port_or_dead() {
    if [ -n "$MQ_LAUNCH_PID" ] && pid_dead "$MQ_LAUNCH_PID"; then
        return 0
    fi
    port_open "$MQ_PORT"
}

epmd_ours() { # our private epmd answers
    epmd -port "$MQ_EPMD_PORT" -names >/dev/null 2>&1
}

mq_ready_checks() { # after the AMQP port opened: the node and the protocol
    if ! wait_for 20 diag -q check_running >/dev/null 2>&1; then
        log_tail "$MQ_LOG"
        die "rabbitmq: rabbitmq-diagnostics check_running fails for $MQ_NODE"
    fi
    if [ "$MQ_PROVISION" = 1 ]; then
        mq_provision
        mq_provision_daemons
    fi
    amqp_ok "$MQ_PORT" || die "rabbitmq: 127.0.0.1:$MQ_PORT accepts TCP but does not speak AMQP"
}

mq_start() {
    need_cmd "$MQ_BIN/rabbitmq-server" "$MQ_BIN/rabbitmqctl" "$MQ_BIN/rabbitmq-diagnostics" epmd
    local t0 pid
    t0=$(now_us)
    mq_env
    mq_write_config
    if pid=$(mq_pid); then
        # The node of this OUTBOX_VAR, started with another port?
        local port
        port=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | sed -n 's/^RABBITMQ_NODE_PORT=//p' || true)
        [ -z "$port" ] || [ "$port" = "$MQ_PORT" ] ||
            die "rabbitmq: the node of $VAR runs (pid $pid) on 127.0.0.1:$port, not $MQ_PORT: stop it first (scripts/infra.sh mq-stop with the settings it was started with) or use another OUTBOX_VAR"
        if wait_for "$MQ_START_TIMEOUT" port_open "$MQ_PORT"; then
            mq_ready_checks
            say "rabbitmq: already running (pid $pid, 127.0.0.1:$MQ_PORT, node $MQ_NODE), reused"
            return 0
        fi
        log_tail "$MQ_LOG"
        die "rabbitmq: pid $pid is alive but 127.0.0.1:$MQ_PORT is not open after ${MQ_START_TIMEOUT} s"
    fi

    rm -f "$MQ_PIDFILE"
    local try=1
    while :; do
        mq_ports_free
        mq_launch && break
        [ "$try" -lt "$START_TRIES" ] ||
            die "rabbitmq: could not listen on its ports (AMQP 127.0.0.1:$MQ_PORT, distribution $MQ_DIST_PORT, epmd $MQ_EPMD_PORT) in $START_TRIES starts: $MQ_BIND_ERROR; $(port_hint MQ) (logs: $MQ_LOGDIR)"
        try=$((try + 1))
        say "rabbitmq: $MQ_BIND_ERROR when the server started; start $try of $START_TRIES"
        wait_port_released rabbitmq "$(port_hint MQ)" "$MQ_PORT" "$MQ_DIST_PORT" "$MQ_EPMD_PORT"
    done
    mq_ready_checks
    say "rabbitmq: started (pid $(mq_pid || echo '?'), 127.0.0.1:$MQ_PORT, node $MQ_NODE, $SET_LABEL) in $(elapsed "$t0")"
}

# Nothing listens on the AMQP, distribution and epmd ports (our own epmd,
# left by a previous run, may keep its port).
mq_ports_free() {
    ensure_no_listener rabbitmq "$MQ_PORT" "$(port_hint MQ)"
    ensure_no_listener "rabbitmq (distribution)" "$MQ_DIST_PORT" \
        "$(port_hint MQ) (distribution: OUTBOX_MQ_DIST_PORT)"
    epmd_ours ||
        ensure_no_listener "rabbitmq (epmd)" "$MQ_EPMD_PORT" \
            "$(port_hint MQ) (epmd: OUTBOX_MQ_EPMD_PORT)"
}

# mq_launch: starts the node, waits for its AMQP port: 0; 1 when a port
# could not be bound (MQ_BIND_ERROR says which; the caller tries again):
# RabbitMQ's could_not_start_listener crash report is summed up, not
# shown.  Any other failure stops us with the logs' last lines.
MQ_BIND_ERROR=
mq_launch() {
    local log_at pid why="exited during startup" boot
    log_at=$(log_size "$MQ_STARTUP_LOG")
    # Foreground server script in the background: its output (early boot
    # errors) goes to startup.log, and we can see it die.
    spawn "$MQ_STARTUP_LOG" "$MQ_BIN/rabbitmq-server"
    MQ_LAUNCH_PID=$SPAWNED
    if wait_for "$MQ_START_TIMEOUT" mq_port_or_dead && pid_alive "$MQ_LAUNCH_PID"; then
        return 0
    fi
    if pid_alive "$MQ_LAUNCH_PID"; then
        why="not ready within ${MQ_START_TIMEOUT} s, killed"
        if pid=$(mq_pid); then kill -9 "$pid" 2>/dev/null || true; fi
        kill -9 "$MQ_LAUNCH_PID" 2>/dev/null || true
    fi
    wait_for 10 pid_dead "$MQ_LAUNCH_PID" || true
    epmd_stop
    boot=$(log_from "$MQ_STARTUP_LOG" "$log_at")
    if grep -q 'could_not_start_listener' <<<"$boot"; then
        MQ_BIND_ERROR="AMQP port 127.0.0.1:$MQ_PORT in use ($(brief "$(port_users "$MQ_PORT" timewait)"))"
        return 1
    fi
    if grep -qE 'eaddrinuse|register/listen error' <<<"$boot"; then
        MQ_BIND_ERROR="distribution port $MQ_DIST_PORT or epmd port $MQ_EPMD_PORT in use"
        return 1
    fi
    log_tail "$MQ_STARTUP_LOG"
    log_tail "$MQ_LOG"
    die "rabbitmq: failed to start on 127.0.0.1:$MQ_PORT: $why (logs: $MQ_LOGDIR)"
}

epmd_stop() { # (a cluster's epmd: once none of its nodes runs)
    [ "$MQ_NODES" -eq 1 ] || [ -z "$(mq_running_nodes)" ] || return 0
    if epmd_ours; then
        epmd -port "$MQ_EPMD_PORT" -kill >/dev/null 2>&1 || true
    fi
}

mq_stop() {
    local pid t0
    t0=$(now_us)
    mq_env
    if ! pid=$(mq_pid); then
        rm -f "$MQ_PIDFILE"
        epmd_stop
        say "rabbitmq: not running"
        return 0
    fi
    if ! ctl -q stop >/dev/null 2>&1; then
        kill -TERM "$pid" 2>/dev/null || true    # also a clean shutdown
    fi
    if ! wait_for "$STOP_TIMEOUT" pid_dead "$pid" beam.smp; then
        warn "rabbitmq: pid $pid still running after ${STOP_TIMEOUT} s, killing it"
        kill -9 "$pid" 2>/dev/null || true
        wait_for 10 pid_dead "$pid" beam.smp || die "rabbitmq: cannot kill pid $pid"
    fi
    rm -f "$MQ_PIDFILE"
    epmd_stop
    say "rabbitmq: stopped (pid $pid) in $(elapsed "$t0")"
}

mq_kill() {
    local pid
    if ! pid=$(mq_pid); then
        say "rabbitmq: not running"
        return 0
    fi
    kill -9 "$pid" 2>/dev/null || true
    wait_for 10 pid_dead "$pid" beam.smp || die "rabbitmq: pid $pid survived kill -9"
    say "rabbitmq: killed (kill -9 pid $pid)"
}

# ---------------------------------------------------------------- a cluster
# OUTBOX_MQ_NODES > 1.  mqs_start|stop|kill [N]: the one node, or the
# cluster's nodes (all, or node N).

mq_running_nodes() { # the numbers of the cluster's live nodes, "1 3 "
    local n pid
    for n in $(seq 1 "$MQ_NODES"); do
        pid=$(read_pid "$MQ_CLUSTER_DIR/node$n/run/rabbitmq.pid")
        if [ -n "$pid" ] && pid_alive "$pid" beam.smp; then printf '%s ' "$n"; fi
    done
}

# mq_join: node MQ_N (running, N > 1) in node 1's cluster.  A node that
# ran in it before is still a member (even while node 1 is down).
mq_join() {
    local first=${MQ_NODE_NAMES[0]} st t0
    st=$(ctl -q cluster_status --formatter json 2>&1) ||
        die "rabbitmq: rabbitmqctl cluster_status fails on $MQ_NODE: $st"
    grep -q "\"$first\"" <<<"$st" && return 0
    t0=$(now_us)
    say "rabbitmq: $MQ_NODE joins $first"
    if ! { ctl -q stop_app && ctl -q join_cluster "$first" && ctl -q start_app; } >/dev/null 2>&1 ||
        ! wait_for 30 diag -q check_running >/dev/null 2>&1; then
        log_tail "$MQ_LOG"
        die "rabbitmq: $MQ_NODE could not join $first (log: $MQ_LOG)"
    fi
    say "rabbitmq: $MQ_NODE joined $first in $(elapsed "$t0")"
}

mq_node_start() { # mq_node_start N: node N up (MQ_PROVISION=0: the cluster provisions)
    mq_select "$1"
    MQ_PROVISION=0
    mq_start
}

# mqs_joins N...: those nodes (running) in node 1's cluster, one after
# another: two nodes joining at once can both fail to merge mnesia's
# schema (combine_error; a CI run lost its cluster to it).
mqs_joins() {
    local n
    for n in "$@"; do
        [ "$n" -eq 1 ] || ( mq_select "$n"; mq_env; mq_join ) || return 1
    done
}

# mqs_start_failed BEFORE MESSAGE: a start failed.  Stops the nodes it
# started (running now, not in BEFORE, those that ran before it) and then
# their epmd, so that the next start finds its ports free, and dies.
mqs_start_failed() {
    local before=" $1" n started=()
    for n in $(mq_running_nodes); do
        [[ $before == *" $n "* ]] || started+=("$n")
    done
    if [ ${#started[@]} -gt 0 ]; then
        say "rabbitmq: the start failed: stopping the node(s) it started: ${started[*]}"
        mqs_side_by_side "mq_node_do mq_stop" "${started[@]}" || true
    fi
    mq_select 1
    epmd_stop
    die "rabbitmq: $2"
}

# mqs_start [N...]: the one node, or the cluster (all its nodes, or those
# given).  The nodes boot side by side, then join node 1 in turn.
mqs_start() {
    [ "$MQ_NODES" -gt 1 ] || { mq_start; return; }
    local t0 before nodes=()
    t0=$(now_us)
    before=$(mq_running_nodes)
    mq_select 1
    mq_env
    mq_write_config            # the shared cookie, before any node starts
    if [ $# -gt 0 ]; then
        nodes=("$@")
    elif [ ! -d "$MQ_MNESIA/$MQ_NODE" ]; then
        # A fresh cluster: node 1 first, the others join it.
        ( mq_node_start 1 ) ||
            mqs_start_failed "$before" "node 1 ($MQ_NODE) did not start: the cluster is not started"
        mapfile -t nodes < <(seq 2 "$MQ_NODES")
    else
        mapfile -t nodes < <(seq 1 "$MQ_NODES")
    fi
    { mqs_side_by_side mq_node_start "${nodes[@]}" && mqs_joins "${nodes[@]}"; } ||
        mqs_start_failed "$before" "the cluster did not start (the node that failed is named above, with its log's tail)"
    [ $# -eq 0 ] || return 0
    mq_select 1
    mq_env
    mq_provision
    mq_provision_daemons
    say "rabbitmq: cluster of $MQ_NODES nodes started (AMQP 127.0.0.1:${MQ_PORT_LIST[*]}, epmd $MQ_EPMD_PORT, $SET_LABEL, data $MQ_CLUSTER_DIR) in $(elapsed "$t0")"
}

# mqs_side_by_side "FUNCTION [ARG]" N...: FUNCTION [ARG] N for each node
# given, side by side; fails if one fails.
mqs_side_by_side() {
    local n rc=0 pids=() words
    read -ra words <<<"$1"
    shift
    if [ $# -eq 1 ]; then ( "${words[@]}" "$1" ); return; fi # (a die ends only it)
    for n in "$@"; do
        ( "${words[@]}" "$n" ) & pids+=($!)
    done
    for n in "${pids[@]}"; do wait "$n" || rc=1; done
    return "$rc"
}
mq_node_do() { mq_select "$2"; "$1"; } # mq_node_do FUNCTION N

mqs_each() { # mqs_each FUNCTION [N...]: on those nodes (all without N), side by side
    local f=$1 rc=0
    shift
    if [ "$MQ_NODES" -eq 1 ]; then "$f"; return; fi
    # shellcheck disable=SC2046 # node numbers
    [ $# -gt 0 ] || set -- $(seq 1 "$MQ_NODES")
    mqs_side_by_side "mq_node_do $f" "$@" || rc=1
    epmd_stop
    return "$rc"
}
mqs_stop() { mqs_each mq_stop "$@"; }
mqs_kill() { mqs_each mq_kill "$@"; }

# mq_any: node MQ_N is a running node of the cluster (node 1 when none
# runs: the CLI tools then say so).
mq_any() {
    local r
    if [ "$MQ_NODES" -gt 1 ]; then
        r=$(mq_running_nodes)
        r=${r%% *}
        mq_select "${r:-1}"
    fi
    mq_env
}

# ---------------------------------------------------------------- both

# Runs db_X and mq_X side by side (RabbitMQ's boot dominates); fails if
# either fails.
both() { # both start|stop
    local dbp mqp rc=0
    ( "db_$1" ) & dbp=$!
    ( "mqs_$1" ) & mqp=$!
    wait "$dbp" || rc=1
    wait "$mqp" || rc=1
    return "$rc"
}

status() {
    local rc=0 pid
    if pid=$(db_pid); then
        if db_ping; then
            say "mariadb: running (pid $pid, 127.0.0.1:$DB_PORT, data $DB_DATA)"
        else
            say "mariadb: pid $pid alive but not answering"; rc=1
        fi
    else
        say "mariadb: not running"; rc=1
    fi
    local n
    for n in $(seq 1 "$MQ_NODES"); do
        [ "$MQ_NODES" -eq 1 ] || mq_select "$n"
        mq_status || rc=1
    done
    [ "$MQ_NODES" -eq 1 ] ||
        say "rabbitmq: cluster of $MQ_NODES nodes, running: $(mq_running_nodes | wc -w)"
    return "$rc"
}

mq_status() {
    local pid
    if pid=$(mq_pid); then
        if port_open "$MQ_PORT"; then
            say "rabbitmq: running (pid $pid, 127.0.0.1:$MQ_PORT, node $MQ_NODE, data $MQ_MNESIA)"
        else
            say "rabbitmq: pid $pid alive, 127.0.0.1:$MQ_PORT not open (starting?)"; return 1
        fi
    else
        say "rabbitmq: ${MQ_N:+node $MQ_N ($MQ_NODE) }not running"; return 1
    fi
}

mq_ready() { # every node up and speaking AMQP
    local n
    for n in $(seq 1 "$MQ_NODES"); do
        [ "$MQ_NODES" -eq 1 ] || mq_select "$n"
        mq_pid >/dev/null && amqp_ok "$MQ_PORT" || return 1
    done
}

both_ready() {
    db_pid >/dev/null && db_ping && mq_ready
}

wait_ready() {
    local t0
    t0=$(now_us)
    if ! wait_for "$WAIT_TIMEOUT" both_ready; then
        status >&2 || true
        die "servers not ready after ${WAIT_TIMEOUT} s (start them: scripts/infra.sh start)"
    fi
    say "mariadb and rabbitmq ready ($(elapsed "$t0"))"
}

usage() {
    sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
    start)    lock; reserve_ports; both start ;;
    stop)     lock; both stop ;;
    restart)  lock; reserve_ports; both stop; both start ;;
    status)   status ;;
    wait)     wait_ready ;;
    db-start) lock; reserve_ports; db_start ;;
    db-stop)  lock; db_stop ;;
    db-kill)  lock; db_kill ;;
    mq-start) lock; reserve_ports; mqs_start "$@" ;;
    mq-stop)  lock; mqs_stop "$@" ;;
    mq-kill)  lock; mqs_kill "$@" ;;
    db-sql)   db_pid >/dev/null || die "mariadb is not running"
              exec mariadb --defaults-file="$DB_ADMIN_CNF" "$@" ;;
    mq-ctl)   mq_any; exec "$MQ_BIN/rabbitmqctl" "$@" ;;
    mq-diag)  mq_any; exec "$MQ_BIN/rabbitmq-diagnostics" "$@" ;;
    mq-queues) mq_any; exec "$MQ_BIN/rabbitmq-queues" "$@" ;;
    destroy)  lock; both stop
              [ "$MQ_NODES" -eq 1 ] || MQ_DIR=$MQ_CLUSTER_DIR
              rm -rf "$DB_DIR" "$MQ_DIR"
              say "removed $DB_DIR and $MQ_DIR" ;;
    -h|--help|help) usage ;;
    *)        usage >&2; exit 2 ;;
esac
