#!/bin/sh
# shellcheck shell=sh
#
# scripts/env.sh - the environment for talking to the project's own servers.
#
#   . scripts/env.sh              # source it (sh, dash, bash, zsh)
#   scripts/env.sh CMD [ARGS...]  # run CMD with that environment
#   scripts/env.sh                # print it as `export K='V'` lines
#
# 1. Exports every variable of .local.env (DB_*, RABBITMQ_*): the original's
#    values, the ones docker-compose.yml uses as env_file.
# 2. Picks the private servers of scripts/infra.sh: the port plan of
#    scripts/ports.env (its variables exported too) and the set named by
#    OUTBOX_SERVERS, dev (the default) or test.  Unless given, from the set:
#      OUTBOX_VAR      dev <repo>/var (OUTBOX_DEV_VAR), test <repo>/var/test
#                      (OUTBOX_TEST_VAR)
#      OUTBOX_DB_PORT  dev OUTBOX_DEV_DB_PORT (33063), test OUTBOX_TEST_DB_PORT (23306)
#      OUTBOX_MQ_PORT  dev OUTBOX_DEV_MQ_PORT (56720), test OUTBOX_TEST_MQ_PORT (23672)
#    all exported, with OUTBOX_SERVERS.
#    OUTBOX_MQ_NODES=3 (1, the default: one node): the set's RabbitMQ
#    cluster instead of its node (scripts/infra.sh), unless given:
#      OUTBOX_MQ_PORTS       dev OUTBOX_DEV_CLUSTER_MQ_PORTS (23781 23782 23783),
#                            test OUTBOX_CLUSTER_MQ_PORTS (23681 23682 23683)
#      OUTBOX_MQ_DIST_PORTS  their distribution ports (dev 2379x, test 2369x)
#      OUTBOX_MQ_EPMD_PORT   their shared epmd (dev 23790, test 23690)
#    the first OUTBOX_MQ_NODES of each list; OUTBOX_MQ_PORT is the first.
# 3. Then points the clients at them:
#      DB_HOST=127.0.0.1        DB_PORT=$OUTBOX_DB_PORT
#      RABBITMQ_HOST=127.0.0.1  RABBITMQ_PORT=$OUTBOX_MQ_PORT
#      RABBITMQ_HOSTS=127.0.0.1:<port>,... every node (empty with one node:
#      RABBITMQ_HOST and RABBITMQ_PORT then say where)
#    and, with a cluster, RABBITMQ_QUEUE_TYPE=quorum unless given.
#    These overrides always apply (a DB_HOST or DB_PORT set by the caller is
#    replaced); to move the servers, set the OUTBOX_* variables above.
#
# Written for POSIX sh: a Makefile recipe (/bin/sh = dash) may source it.
# When sourced by a shell that cannot tell the file's own path (dash), the
# repository is found from the current directory (run it from the repo root).

# Sourced or executed? And where is this file?
_outbox_exec=0
_outbox_self=
if [ -n "${BASH_VERSION:-}" ]; then
    # shellcheck disable=SC3028,SC3054
    _outbox_self=${BASH_SOURCE[0]}
    [ "$_outbox_self" = "$0" ] && _outbox_exec=1
elif [ -n "${ZSH_VERSION:-}" ]; then
    _outbox_self=$0
    case ${ZSH_EVAL_CONTEXT:-} in *:file*) ;; *) _outbox_exec=1 ;; esac
elif [ "${0##*/}" = env.sh ]; then
    # dash/ksh/posh: only an executed script sees its own name in $0
    _outbox_self=$0
    _outbox_exec=1
fi
_outbox_root=
if [ -n "$_outbox_self" ]; then
    _outbox_root=$(cd "$(dirname "$_outbox_self")/.." 2>/dev/null && pwd)
fi
if [ -z "$_outbox_root" ] || [ ! -f "$_outbox_root/scripts/env.sh" ]; then
    if [ -f "$PWD/scripts/env.sh" ]; then
        _outbox_root=$PWD
    else
        _outbox_root=$(git rev-parse --show-toplevel 2>/dev/null) || _outbox_root=
    fi
fi

if [ -z "$_outbox_root" ] || [ ! -f "$_outbox_root/.local.env" ]; then
    echo "env.sh: cannot find the repository's .local.env (source it from the repository root)" >&2
    unset _outbox_root _outbox_self _outbox_exec
    # `return` works when sourced; `exit` when executed.
    # shellcheck disable=SC2317
    return 1 2>/dev/null || exit 1
fi

# .local.env: KEY=VALUE lines, as docker compose's env_file. Blank lines and
# '#' comments skipped, an optional `export ` prefix and one pair of
# surrounding quotes removed, CRLF tolerated. Values are not evaluated.
_outbox_cr=$(printf '\r')
while IFS= read -r _outbox_line || [ -n "$_outbox_line" ]; do
    _outbox_line=${_outbox_line%"$_outbox_cr"}
    case $_outbox_line in
        ''|'#'*) continue ;;
        'export '*) _outbox_line=${_outbox_line#export } ;;
    esac
    case $_outbox_line in *=*) ;; *) continue ;; esac
    _outbox_key=${_outbox_line%%=*}
    _outbox_val=${_outbox_line#*=}
    case $_outbox_key in
        ''|[0-9]*|*[!A-Za-z0-9_]*) continue ;;
    esac
    case $_outbox_val in
        \"*\") _outbox_val=${_outbox_val#\"}; _outbox_val=${_outbox_val%\"} ;;
        \'*\') _outbox_val=${_outbox_val#\'}; _outbox_val=${_outbox_val%\'} ;;
    esac
    export "$_outbox_key=$_outbox_val"
done < "$_outbox_root/.local.env"

# The project's own servers (scripts/infra.sh): a set of the port plan.
. "$_outbox_root/scripts/ports.env"
export OUTBOX_DEV_DB_PORT OUTBOX_DEV_MQ_PORT OUTBOX_DEV_PROM_PORT OUTBOX_TEST_DB_PORT \
    OUTBOX_TEST_MQ_PORT OUTBOX_HOLD_DB_PORT OUTBOX_BINLOG_DB_PORT \
    OUTBOX_BINLOG_HOLD_DB_PORT OUTBOX_BENCH_BINLOG_DB_PORT OUTBOX_CLUSTER_MQ_PORTS \
    OUTBOX_CLUSTER_MQ_DIST_PORTS OUTBOX_CLUSTER_MQ_EPMD_PORT OUTBOX_PROM_PORT \
    OUTBOX_DEV_CLUSTER_MQ_PORTS OUTBOX_DEV_CLUSTER_MQ_DIST_PORTS \
    OUTBOX_DEV_CLUSTER_MQ_EPMD_PORT
case ${OUTBOX_SERVERS:=dev} in
    dev)
        : "${OUTBOX_VAR:=${OUTBOX_DEV_VAR:-$_outbox_root/var}}"
        : "${OUTBOX_DB_PORT:=$OUTBOX_DEV_DB_PORT}"
        _outbox_cports=$OUTBOX_DEV_CLUSTER_MQ_PORTS
        _outbox_cdist=$OUTBOX_DEV_CLUSTER_MQ_DIST_PORTS
        _outbox_cepmd=$OUTBOX_DEV_CLUSTER_MQ_EPMD_PORT
        _outbox_mq=$OUTBOX_DEV_MQ_PORT ;;
    test)
        : "${OUTBOX_VAR:=${OUTBOX_TEST_VAR:-$_outbox_root/var/test}}"
        : "${OUTBOX_DB_PORT:=$OUTBOX_TEST_DB_PORT}"
        _outbox_cports=$OUTBOX_CLUSTER_MQ_PORTS
        _outbox_cdist=$OUTBOX_CLUSTER_MQ_DIST_PORTS
        _outbox_cepmd=$OUTBOX_CLUSTER_MQ_EPMD_PORT
        _outbox_mq=$OUTBOX_TEST_MQ_PORT ;;
    *)
        echo "env.sh: OUTBOX_SERVERS=$OUTBOX_SERVERS: expected dev or test" >&2
        unset _outbox_root _outbox_self _outbox_exec _outbox_cr _outbox_line _outbox_key _outbox_val
        # shellcheck disable=SC2317
        return 1 2>/dev/null || exit 1 ;;
esac
# _outbox_first N WORDS...: the first N of the words, space-separated.
_outbox_first() {
    _outbox_n=$1
    shift
    _outbox_w=
    while [ "$_outbox_n" -gt 0 ] && [ $# -gt 0 ]; do
        _outbox_w="$_outbox_w${_outbox_w:+ }$1"
        _outbox_n=$((_outbox_n - 1))
        shift
    done
    printf '%s' "$_outbox_w"
}
case ${OUTBOX_MQ_NODES:=1} in
    1)
        : "${OUTBOX_MQ_PORT:=$_outbox_mq}"
        # Empty: RABBITMQ_HOST and RABBITMQ_PORT alone, as before the
        # host lists (a client given another RABBITMQ_PORT uses it).
        RABBITMQ_HOSTS= ;;
    [2-9])
        # shellcheck disable=SC2086 # port lists are words
        : "${OUTBOX_MQ_PORTS:=$(_outbox_first "$OUTBOX_MQ_NODES" $_outbox_cports)}"
        # shellcheck disable=SC2086
        : "${OUTBOX_MQ_DIST_PORTS:=$(_outbox_first "$OUTBOX_MQ_NODES" $_outbox_cdist)}"
        : "${OUTBOX_MQ_EPMD_PORT:=$_outbox_cepmd}"
        OUTBOX_MQ_PORT=${OUTBOX_MQ_PORTS%% *}
        RABBITMQ_HOSTS=
        for _outbox_w in $OUTBOX_MQ_PORTS; do
            RABBITMQ_HOSTS="$RABBITMQ_HOSTS${RABBITMQ_HOSTS:+,}127.0.0.1:$_outbox_w"
        done
        : "${RABBITMQ_QUEUE_TYPE:=quorum}"
        export OUTBOX_MQ_PORTS OUTBOX_MQ_DIST_PORTS OUTBOX_MQ_EPMD_PORT RABBITMQ_QUEUE_TYPE ;;
    *)
        echo "env.sh: OUTBOX_MQ_NODES=$OUTBOX_MQ_NODES: expected 1 to 9 (3 for a cluster)" >&2
        unset _outbox_root _outbox_self _outbox_exec _outbox_cr _outbox_line _outbox_key \
            _outbox_val _outbox_cports _outbox_cdist _outbox_cepmd _outbox_mq
        # shellcheck disable=SC2317
        return 1 2>/dev/null || exit 1 ;;
esac
export OUTBOX_SERVERS OUTBOX_VAR OUTBOX_DB_PORT OUTBOX_MQ_PORT OUTBOX_MQ_NODES
export DB_HOST=127.0.0.1
export DB_PORT="$OUTBOX_DB_PORT"
export RABBITMQ_HOST=127.0.0.1
export RABBITMQ_PORT="$OUTBOX_MQ_PORT"
export RABBITMQ_HOSTS

unset _outbox_root _outbox_self _outbox_cr _outbox_line _outbox_key _outbox_val \
    _outbox_cports _outbox_cdist _outbox_cepmd _outbox_mq _outbox_n _outbox_w
unset -f _outbox_first

# Executed rather than sourced: run the command, or print the environment.
if [ "$_outbox_exec" = 1 ]; then
    unset _outbox_exec
    if [ $# -gt 0 ]; then
        exec "$@"
    fi
    for _outbox_key in DB_USER DB_PASS DB_HOST DB_PORT DB_NAME \
                       RABBITMQ_USER RABBITMQ_PASS RABBITMQ_HOST RABBITMQ_PORT \
                       RABBITMQ_HOSTS OUTBOX_SERVERS OUTBOX_VAR OUTBOX_DB_PORT \
                       OUTBOX_MQ_PORT OUTBOX_MQ_NODES; do
        eval "_outbox_val=\${$_outbox_key-}"
        # shellcheck disable=SC2154
        printf "export %s='%s'\n" "$_outbox_key" \
            "$(printf '%s' "$_outbox_val" | sed "s/'/'\\\\''/g")"
    done
    unset _outbox_key _outbox_val
    exit 0
fi
unset _outbox_exec
