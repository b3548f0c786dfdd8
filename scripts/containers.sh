#!/usr/bin/env bash
#
# scripts/containers.sh - build the three images with podman and prove they run.
#
#   scripts/containers.sh [PHASE...]    PHASE: setup | images | smoke | all (default)
#
#   setup   one-time, idempotent: the Debian packages podman runc mmdebstrap
#           debian-archive-keyring docker-compose curl (scripts/deps.sh
#           containers: only the missing ones); the base image
#           localhost/outbox-base:bookworm made with mmdebstrap from the
#           machine's Debian mirror (only if absent); `docker-compose
#           config -q` on docker-compose.yml.
#   images  podman build of Dockerfile.app/.relay/.worker as outbox-app,
#           outbox-relay, outbox-worker, from that base (--build-arg BASE:
#           the Dockerfiles' own default is the real debian:bookworm-slim,
#           what a machine with a registry builds from); checks: the three
#           Dockerfiles share
#           their common part verbatim, no build tools in the images, every
#           shared library resolved, a non-root user.  The builder stage is
#           kept as outbox-build (the next run's cache); older untagged
#           images of the project (label outbox.stage) are removed.
#   smoke   starts the project's private MariaDB and RabbitMQ
#           (scripts/infra.sh), migrates with the app image, runs the three
#           containers on the host network against them (scripts/env.sh),
#           POSTs a customer to the containerised app, waits for the
#           containerised relay's `Published messages: [` and worker's
#           `Handling [CustomerCreated] - Payload: '...'` line for it, then
#           stops them (SIGTERM, exit code 0 required) and removes them.
#
# Why podman and these flags: no Docker engine runs on the project's machines
# and no registry is reachable (../shared/MACHINE-NOTES.md, "Containers"):
# runc runtime, cgroupfs, host network, `--ulimit host`.  The host is left as
# found: podman reads the project's scripts/containers.conf (CONTAINERS_CONF),
# never a rewritten /etc/containers/containers.conf, and the local base
# image has a name of the project's own, never an official image's.
# Podman runs rootful here: run as another user, the script runs itself
# again through sudo, and runs the private servers as that user still.
#
# Environment:
#   OUTBOX_CTR_IMAGES    images to build and run (default "app relay worker");
#                        a subset is for partial runs (the app alone is
#                        checked up to 201 + its outbox row)
#   OUTBOX_CTR_APP_PORT  APP_PORT of the containerised app (default 3000, or a
#                        free port if 3000 is taken)
#   OUTBOX_CTR_APP_METRICS_PORT  its APP_METRICS_PORT (default 23464 or a free
#                        port: never the machine's 9464)
#   OUTBOX_CTR_RELAY_METRICS_PORT, OUTBOX_CTR_WORKER_METRICS_PORT  the same
#                        for the relay (23465) and the worker (23466): their
#                        HEALTHCHECK probes /healthz there
#   OUTBOX_CTR_TIMEOUT   seconds to wait for each step of the smoke run (60)
#   OUTBOX_SERVERS, OUTBOX_VAR, ...  which servers, as scripts/infra.sh
#                        (make containers-smoke and make test: the test ones)
#   CONTAINERS_CONF      podman's settings (default scripts/containers.conf)
# The private servers are stopped at the end only if this script started them.
# Prints the time of each phase; exits non-zero with a message on any failure.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$SCRIPT_DIR")
cd "$ROOT"
export PATH="/usr/sbin:/sbin:$PATH"
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"
LIB_NAME=containers

# The settings that select the servers and the containers' ports: kept
# across sudo (no secret among them).
kept_env() {
    local v
    for v in $(compgen -e); do
        case $v in OUTBOX_* | BUILD_ROOT | CI | CONTAINERS_CONF) printf '%s=%s\0' "$v" "${!v}" ;; esac
    done
}
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
        die "podman runs rootful here: run this as root (sudo not found)"
    mapfile -d '' -t keep < <(kept_env)
    # OUTBOX_SUDO=-n (tests/run.sh): fail rather than ask for a password.
    # shellcheck disable=SC2086
    exec sudo ${OUTBOX_SUDO:-} env "${keep[@]}" OUTBOX_CALLER="$(id -un)" \
        bash "$SCRIPT_DIR/containers.sh" "$@"
fi
# as_user CMD...: the private servers stay the calling user's (their files,
# their processes) when sudo ran us.
as_user() {
    if [ -n "${OUTBOX_CALLER:-}" ] && [ "$OUTBOX_CALLER" != root ]; then
        local keep
        mapfile -d '' -t keep < <(kept_env)
        sudo -u "$OUTBOX_CALLER" env "${keep[@]}" "$@"
    else
        "$@"
    fi
}

# Podman's settings for this project only (no cgroup manager, no ulimits
# to apply here); the machine's /etc/containers stays untouched.
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/scripts/containers.conf}
# The base made here (mmdebstrap), under a name of the project's own: an
# official name (debian:bookworm-slim) would shadow the real image for every other
# use of podman on the machine.
BASE_IMAGE=localhost/outbox-base:bookworm
SUITE=bookworm
UID_EXPECTED=10001
read -r -a IMAGES <<<"${OUTBOX_CTR_IMAGES:-app relay worker}"
TIMEOUT=${OUTBOX_CTR_TIMEOUT:-60}
# What `podman run` needs here; the smoke containers also get the
# hardening docker-compose.yml gives the daemons.
RUN_FLAGS=(--runtime runc --network=host --ulimit host)
HARDEN=(--read-only --cap-drop=all --security-opt no-new-privileges)
SMOKE_PREFIX=outbox-smoke-

# podman, minus the two error lines it prints for every container with a
# HEALTHCHECK when systemd is absent (it cannot add the periodic timer;
# `podman healthcheck run` still works and is what the smoke run uses).
pm() {
    podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2)
}
declare -a TIMINGS=()
CURRENT='' CURRENT_T=''
timed() { # timed LABEL CMD... : runs CMD (set -e applies), records its time
    CURRENT=$1 CURRENT_T=$(now_us)
    shift
    "$@"
    TIMINGS+=("$(printf '%-24s %6s s' "$CURRENT" "$(secs "$CURRENT_T")")")
    say "$CURRENT: $(secs "$CURRENT_T") s"
    CURRENT=
}
print_timings() {
    [ ${#TIMINGS[@]} -gt 0 ] || return 0
    say "=== timings ==="
    local l
    for l in "${TIMINGS[@]}"; do say "  $l"; done
}

for i in "${IMAGES[@]}"; do
    case $i in app|relay|worker) ;; *) die "OUTBOX_CTR_IMAGES: unknown image '$i' (app, relay, worker)" ;; esac
done
if ! [[ $TIMEOUT =~ ^[0-9]+$ ]] || [ "$TIMEOUT" -lt 1 ]; then
    die "OUTBOX_CTR_TIMEOUT=$TIMEOUT: expected a number of seconds >= 1"
fi

has_image() { local i; for i in "${IMAGES[@]}"; do [ "$i" = "$1" ] && return 0; done; return 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 needs root (podman here runs rootful: runc + cgroupfs)"
}

# ------------------------------------------------------------------ setup

# The packages of scripts/deps.sh's group "containers" (podman runc
# mmdebstrap debian-archive-keyring docker-compose curl): only the missing
# ones, no recommends, no service started.
setup_packages() {
    bash "$SCRIPT_DIR/deps.sh" containers || die "scripts/deps.sh containers failed"
}

setup_conf() {
    [ -f "$CONTAINERS_CONF" ] || die "CONTAINERS_CONF=$CONTAINERS_CONF: no such file"
    say "podman settings: CONTAINERS_CONF=$CONTAINERS_CONF"
}

# Prints "URI SUITE" for every Debian deb source of the machine (one-line
# .list format and deb822 .sources), main component only.
apt_sources() {
    local f
    shopt -s nullglob
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '/^[[:space:]]*deb[[:space:]]/ {
                sub(/#.*/, ""); n = split($0, a, /[[:space:]]+/); i = 1
                while (i <= n && a[i] == "") i++
                i++                                      # "deb"
                if (a[i] ~ /^\[/) { while (i <= n && a[i] !~ /\]$/) i++; i++ }
                uri = a[i]; suite = a[i + 1]; main = 0
                for (j = i + 2; j <= n; j++) if (a[j] == "main") main = 1
                if (main) print uri, suite
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        awk 'function emit(  i, j, u, s) {
                if (types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/ && enabled != "no") {
                    nu = split(uris, u, " "); ns = split(suites, s, " ")
                    for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]
                }
                types = uris = suites = comps = enabled = ""
            }
            /^[[:space:]]*#/ { next }
            /^[[:space:]]*$/ { emit(); next }
            {
                k = tolower($1); sub(/:$/, "", k); v = $0; sub(/^[^:]*:[[:space:]]*/, "", v)
                if (k == "types") types = v; else if (k == "uris") uris = v
                else if (k == "suites") suites = v; else if (k == "components") comps = v
                else if (k == "enabled") enabled = tolower(v)
            }
            END { emit() }' "$f"
    done
    shopt -u nullglob
}

BASE_DIR=
cleanup_base_dir() {
    [ -n "$BASE_DIR" ] && [ -d "$BASE_DIR" ] || return 0
    # mmdebstrap mounts proc/sys/dev inside the target: unmount
    # whatever an interrupted run left, and never cross a mount point.
    local m
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done < <(awk -v d="$BASE_DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
    rm -rf --one-file-system "$BASE_DIR" ||
        say "warning: could not remove $BASE_DIR"
    BASE_DIR=
}

setup_base_image() {
    if podman image exists "$BASE_IMAGE"; then
        say "base image $BASE_IMAGE: present"
        return 0
    fi
    need_root "mmdebstrap"
    local sources mirror upd sec
    sources=$(apt_sources)
    mirror=$(awk -v s="$SUITE" '$2 == s && $1 ~ /^(https?|file):/ { print $1; exit }' <<<"$sources")
    [ -n "$mirror" ] ||
        die "no Debian mirror for '$SUITE' (main) in /etc/apt/sources.list or /etc/apt/sources.list.d/; cannot make the base image"
    upd=$(awk -v s="$SUITE-updates" '$2 == s { print $1; exit }' <<<"$sources")
    sec=$(awk -v s="$SUITE-security" '$2 == s { print $1; exit }' <<<"$sources")
    BASE_DIR=$(mktemp -d /var/tmp/outbox-base.XXXXXX)
    local root=$BASE_DIR/root log=$BASE_DIR.log t
    # mmdebstrap, not debootstrap: the same minbase (the Essential and
    # required packages, and apt), fetched and installed by apt and dpkg
    # rather than by a shell script that forks for every package.  Here
    # 36-38 s against debootstrap's 51-62 s alone; beside make test's
    # server tests 48 s against 97-116 s, and they were slowed the less.
    # Its merged-usr hook sets up /usr as debootstrap does (directory
    # links and usr-is-merged); without it apt picks usrmerge, and perl
    # with it: 50 MB more in every image.
    say "base image: mmdebstrap --variant=minbase $SUITE from $mirror (log: $log)"
    t=$(now_us)
    if ! mmdebstrap --mode=root --variant=minbase \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        "$SUITE" "$root" "$mirror" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "mmdebstrap failed (log: $log)"
    fi
    say "base image: mmdebstrap done in $(secs "$t") s"
    TIMINGS+=("$(printf '%-24s %6s s' "  (mmdebstrap itself)" "$(secs "$t")")")
    # As the official slim image: apt sources with updates and security
    # (when the machine has them), no docs/man/locales, no apt caches.
    {
        printf 'deb %s %s main\n' "$mirror" "$SUITE"
        [ -z "$upd" ] || printf 'deb %s %s-updates main\n' "$upd" "$SUITE"
        [ -z "$sec" ] || printf 'deb %s %s-security main\n' "$sec" "$SUITE"
    } >"$root/etc/apt/sources.list"
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/var/cache/apt/"*.bin \
        "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* "$root/var/log/"*.log
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
    say "base image: importing as $BASE_IMAGE"
    tar --numeric-owner -C "$root" -c . |
        podman import --quiet --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null ||
        die "podman import failed"
    cleanup_base_dir
    rm -f "$log"
}

check_compose() {
    docker-compose -f docker-compose.yml config -q ||
        die "docker-compose.yml does not validate (docker-compose config -q)"
    say "docker-compose.yml: docker-compose $(docker-compose version --short 2>/dev/null || echo '?') config -q: valid"
}

phase_setup() {
    timed "setup: packages" setup_packages
    timed "setup: podman settings" setup_conf
    timed "setup: base image" setup_base_image
    timed "setup: compose check" check_compose
}

# ------------------------------------------------------------------ images

# The part of the Dockerfiles before "# ---- per image" (from `ARG BASE`,
# or the first FROM) must be the same text in the three files: that is what lets the
# layer cache build the builder and the runtime base once.
check_shared_part() {
    local f ref="" cur
    for f in Dockerfile.app Dockerfile.relay Dockerfile.worker; do
        [ -f "$f" ] || die "$f not found"
        cur=$(awk '/^(ARG BASE|FROM) /{on=1} /^# ---- per image/{exit} on' "$f")
        [ -n "$cur" ] || die "$f: no FROM ... '# ---- per image' part"
        if [ -z "$ref" ]; then
            ref=$cur
        elif [ "$cur" != "$ref" ]; then
            diff <(printf '%s\n' "$ref") <(printf '%s\n' "$cur") >&2 || true
            die "$f: the shared part differs from Dockerfile.app's (keep the three in step)"
        fi
    done
}

# One snapshot of the working tree for the three builds: they see the same
# sources (while files are being edited too), so the identical builder stage
# is built once and taken from the layer cache by the other two.
CONTEXT=
snapshot_context() {
    CONTEXT=$(mktemp -d /var/tmp/outbox-context.XXXXXX)
    tar -C "$ROOT" --exclude=./.git --exclude=./build --exclude=./var -cf - . |
        tar -C "$CONTEXT" -xf - || die "cannot copy the tree to $CONTEXT"
}
cleanup_context() {
    [ -z "$CONTEXT" ] || rm -rf --one-file-system "$CONTEXT"
    CONTEXT=
}

build_one() { # build_one NAME
    local n=$1
    [ -f "$CONTEXT/$n/main.c" ] ||
        die "$n/main.c does not exist yet: outbox-$n cannot be built (OUTBOX_CTR_IMAGES selects a subset)"
    podman build --runtime runc --network=host --format docker --pull=never \
        --build-arg BASE="$BASE_IMAGE" \
        -f "$CONTEXT/Dockerfile.$n" -t "outbox-$n" "$CONTEXT" ||
        die "podman build of Dockerfile.$n failed"
}

# Each source change leaves the previous builder stage (~500 MB) and
# images behind, untagged.  The builder stage is tagged outbox-build (the
# layer cache of the next run: toolchain, `make build`), then the untagged
# images of this project (label outbox.stage) are removed; nothing else.
keep_cache() {
    podman build --runtime runc --network=host --format docker --pull=never -q \
        --build-arg BASE="$BASE_IMAGE" --target build -f "$CONTEXT/Dockerfile.${IMAGES[0]}" -t outbox-build "$CONTEXT" >/dev/null ||
        die "tagging the builder stage failed"
    local old
    old=$(podman images -q --filter dangling=true --filter label=outbox.stage)
    if [ -n "$old" ]; then
        # shellcheck disable=SC2086
        podman rmi $old >/dev/null 2>&1 || true
    fi
}

# What the runtime image must not have, and must have.
verify_one() { # verify_one NAME
    local img=outbox-$1 out bins
    out=$(podman run --rm --no-healthcheck "${RUN_FLAGS[@]}" --entrypoint sh "$img" -c \
        'for t in cc gcc g++ c++ cpp ld as make pkg-config ar; do command -v $t; done; true') ||
        die "$img: cannot run sh in the image"
    [ -z "$out" ] || die "$img: build tools in the runtime image: $(tr '\n' ' ' <<<"$out")"
    bins=/usr/local/bin/outbox-$1
    [ "$1" != app ] || bins="$bins /usr/local/bin/outbox-migrate"
    out=$(podman run --rm --no-healthcheck "${RUN_FLAGS[@]}" --entrypoint sh "$img" -c "ldd $bins") ||
        die "$img: ldd failed: $out"
    ! grep -q 'not found' <<<"$out" ||
        die "$img: missing shared libraries: $(grep 'not found' <<<"$out" | tr -s ' \t\n' ' ')"
    out=$(podman run --rm --no-healthcheck "${RUN_FLAGS[@]}" --entrypoint id "$img" -u)
    [ "$out" = "$UID_EXPECTED" ] || die "$img: runs as uid $out, expected $UID_EXPECTED"
    say "$img: no build tools, all libraries resolved, uid $out, $(podman image inspect -f '{{.Size}}' "$img" |
        awk '{ printf "%.1f MB", $1 / 1e6 }')"
}

phase_images() {
    check_shared_part
    podman image exists "$BASE_IMAGE" || die "base image $BASE_IMAGE missing: run '$0 setup' first"
    local n
    snapshot_context
    for n in "${IMAGES[@]}"; do
        timed "build: $n" build_one "$n"
    done
    timed "build: cache upkeep" keep_cache
    cleanup_context
    for n in "${IMAGES[@]}"; do
        timed "verify: $n" verify_one "$n"
    done
    podman images --filter reference='outbox-*' --filter reference="$BASE_IMAGE" \
        --format '{{.Repository}}:{{.Tag}}  {{.Size}}'
}

# ------------------------------------------------------------------ smoke

INFRA_STARTED=0
SMOKE_RUNNING=()

smoke_cleanup() {
    local n
    for n in "${SMOKE_RUNNING[@]}"; do
        pm rm -f -t 5 "$SMOKE_PREFIX$n" >/dev/null 2>&1 || true
    done
    SMOKE_RUNNING=()
    if [ "$INFRA_STARTED" = 1 ]; then
        as_user bash scripts/infra.sh stop || true
        INFRA_STARTED=0
    fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port DEFAULT VAR [AVOID]: VAR's value if set (must be free), else
# DEFAULT if free, else a free port from 32000-39999 other than AVOID.
# With host networking the containers share the machine's ports.
pick_port() {
    local def=$1 var=$2 avoid=${3:-} p i
    p=${!var:-$def}
    if ! [[ $p =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then
        die "$var=$p: not a port number"
    fi
    if [ "$p" != "$avoid" ] && ! port_busy "$p"; then printf '%s' "$p"; return; fi
    [ -z "${!var:-}" ] || die "$var=$p is in use"
    for i in $(seq 1 50); do
        p=$((24000 + RANDOM % 8000))
        if [ "$p" != "$avoid" ] && ! port_busy "$p"; then printf '%s' "$p"; return; fi
    done
    die "no free port found for $var"
}

# wait_until SECONDS WHAT CMD...: polls CMD every 0.1 s until it succeeds;
# fails (showing the containers' logs) after SECONDS, or at once if a smoke
# container has exited.
wait_until() {
    local limit=$1 what=$2 deadline n st
    shift 2
    deadline=$(( $(now_us) + limit * 1000000 ))
    while ! "$@"; do
        for n in "${SMOKE_RUNNING[@]}"; do
            st=$(podman inspect -f '{{.State.Status}}' "$SMOKE_PREFIX$n" 2>/dev/null || echo gone)
            if [ "$st" != running ]; then
                show_logs
                die "$what: container $SMOKE_PREFIX$n is $st (exit $(podman inspect -f '{{.State.ExitCode}}' "$SMOKE_PREFIX$n" 2>/dev/null || echo '?'))"
            fi
        done
        if [ "$(now_us)" -ge "$deadline" ]; then
            show_logs
            die "$what: not within ${limit} s"
        fi
        sleep 0.1
    done
}

show_logs() {
    local n
    for n in "${SMOKE_RUNNING[@]}"; do
        printf -- '--- podman logs %s (last 30 lines)\n' "$SMOKE_PREFIX$n" >&2
        podman logs --tail 30 "$SMOKE_PREFIX$n" >&2 2>&1 || true
    done
}

run_daemon() { # run_daemon NAME [podman args...]
    local n=$1
    shift
    podman rm -f "$SMOKE_PREFIX$n" >/dev/null 2>&1 || true
    SMOKE_RUNNING+=("$n")
    pm run -d --name "$SMOKE_PREFIX$n" "${RUN_FLAGS[@]}" "${HARDEN[@]}" \
        "${ENV_ARGS[@]}" "$@" "outbox-$n" >/dev/null ||
        die "podman run outbox-$n failed"
}

app_ready() {
    [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$APP_PORT/readyz")" = 200 ]
}
healthy() { # podman's own run of the image's HEALTHCHECK
    podman healthcheck run "$SMOKE_PREFIX$1" >/dev/null 2>&1
}

smoke_infra() {
    if ! as_user bash scripts/infra.sh status >/dev/null 2>&1; then
        INFRA_STARTED=1
    fi
    as_user bash scripts/infra.sh start || die "scripts/infra.sh start failed"
}

smoke_migrate() {
    podman run --rm --no-healthcheck "${RUN_FLAGS[@]}" --read-only "${ENV_ARGS[@]}" \
        --entrypoint /usr/local/bin/outbox-migrate outbox-app ||
        die "migrations (outbox-migrate in outbox-app) failed"
}

smoke_start() {
    local n
    for n in "${IMAGES[@]}"; do
        case $n in
            app) run_daemon app -e APP_PORT="$APP_PORT" -e APP_METRICS_PORT="$APP_METRICS_PORT" ;;
            relay) run_daemon relay -e RELAY_METRICS_PORT="$RELAY_METRICS_PORT" ;;
            worker) run_daemon worker -e WORKER_METRICS_PORT="$WORKER_METRICS_PORT" ;;
        esac
    done
    if has_image app; then
        wait_until "$TIMEOUT" "app ready (GET /readyz on 127.0.0.1:$APP_PORT)" app_ready
    fi
    for n in "${IMAGES[@]}"; do
        wait_until "$TIMEOUT" "$n HEALTHCHECK" healthy "$n"
    done
    say "containers running and healthy: ${IMAGES[*]/#/$SMOKE_PREFIX}"
}

CUSTOMER_ID=
smoke_post() {
    local email body code
    email="smoke-$(date +%s)-$$-$RANDOM@example.com"
    body=$(mktemp)
    code=$(curl -s -o "$body" -w '%{http_code}' -m 10 -X POST \
        -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"name\":\"Container Smoke\"}" \
        "http://127.0.0.1:$APP_PORT/customers") || code="curl failed"
    if [ "$code" != 201 ]; then
        cat "$body" >&2; rm -f "$body"; show_logs
        die "POST /customers: HTTP $code, expected 201"
    fi
    CUSTOMER_ID=$(sed -n 's/^{[[:space:]]*"id"[[:space:]]*:[[:space:]]*"\([0-9a-fA-F-]\{36\}\)".*/\1/p' "$body")
    [ -n "$CUSTOMER_ID" ] || { cat "$body" >&2; rm -f "$body"; die "POST /customers: no customer id in the 201 body"; }
    rm -f "$body"
    MESSAGE_ID=$(db_sql "SELECT message_id FROM outbox WHERE JSON_VALUE(payload, '\$.id') = '$CUSTOMER_ID'") ||
        die "cannot query the outbox table"
    [[ $MESSAGE_ID =~ ^[0-9a-fA-F-]{36}$ ]] ||
        die "outbox row for customer $CUSTOMER_ID: got '$MESSAGE_ID', expected one message id"
    say "POST /customers -> 201, customer $CUSTOMER_ID, outbox message $MESSAGE_ID"
}

db_sql() { as_user bash scripts/infra.sh db-sql -N -B "$DB_NAME" -e "$1"; }

logs_have() { # logs_have NAME FIXED-STRING [FIXED-STRING]: one line with both
    # no grep -q: an early exit would fail the pipe (pipefail, SIGPIPE)
    podman logs "$SMOKE_PREFIX$1" 2>&1 | grep -F -- "$2" | grep -F -- "${3:-$2}" >/dev/null
}
published() {
    [ "$(db_sql "SELECT published_at IS NOT NULL FROM outbox WHERE message_id = '$MESSAGE_ID'")" = 1 ]
}

smoke_flow() {
    local line
    if has_image relay; then
        # A long batch may be shortened in the log line: the database says
        # whether this message was confirmed and marked.
        wait_until "$TIMEOUT" "relay log 'Published messages: ['" logs_have relay 'Published messages: ['
        wait_until "$TIMEOUT" "outbox message $MESSAGE_ID marked published" published
        line=$(podman logs "${SMOKE_PREFIX}relay" 2>&1 | grep -F 'Published messages: [' | tail -n 1)
        say "relay: $line"
    fi
    if has_image worker; then
        wait_until "$TIMEOUT" "worker log 'Handling [CustomerCreated] - Payload:' for $CUSTOMER_ID" \
            logs_have worker "Handling [CustomerCreated] - Payload: '" "$CUSTOMER_ID"
        line=$(podman logs "${SMOKE_PREFIX}worker" 2>&1 | grep -F "Handling [CustomerCreated]" | grep -F "$CUSTOMER_ID" | tail -n 1)
        say "worker: $line"
    fi
}

smoke_stop() {
    local n rc bad=()
    for n in "${IMAGES[@]}"; do
        pm stop -t 15 "$SMOKE_PREFIX$n" >/dev/null || die "podman stop $SMOKE_PREFIX$n failed"
    done
    for n in "${IMAGES[@]}"; do
        rc=$(podman inspect -f '{{.State.ExitCode}}' "$SMOKE_PREFIX$n")
        say "$SMOKE_PREFIX$n: exit code $rc after SIGTERM; last line: $(podman logs --tail 1 "$SMOKE_PREFIX$n" 2>&1)"
        [ "$rc" = 0 ] || bad+=("$n:$rc")
    done
    if [ ${#bad[@]} -gt 0 ]; then
        show_logs
        die "not a clean stop (exit code 0 expected): ${bad[*]}"
    fi
    for n in "${IMAGES[@]}"; do
        pm rm "$SMOKE_PREFIX$n" >/dev/null
    done
    SMOKE_RUNNING=()
}

phase_smoke() {
    need_root "the smoke run"
    command -v curl >/dev/null || die "curl not found (run '$0 setup')"
    local n
    for n in "${IMAGES[@]}"; do
        podman image exists "outbox-$n" || die "image outbox-$n missing: run '$0 images' first"
    done
    bash scripts/deps.sh servers >/dev/null || die "scripts/deps.sh servers failed"
    APP_PORT=$(pick_port 3000 OUTBOX_CTR_APP_PORT)
    # The app's operator listener (/metrics): not on the machine's 9464,
    # where a native app may be listening, and below the ephemeral range
    # (as every test port: scripts/ports.env), where the containers' own
    # connections to the servers, made just before the next one starts,
    # may take it (a CI run's worker lost its 39466 so, and its
    # HEALTHCHECK failed).
    APP_METRICS_PORT=$(pick_port 23464 OUTBOX_CTR_APP_METRICS_PORT "$APP_PORT")
    # Likewise the relay's and the worker's (their HEALTHCHECK uses it).
    RELAY_METRICS_PORT=$(pick_port 23465 OUTBOX_CTR_RELAY_METRICS_PORT "$APP_METRICS_PORT")
    WORKER_METRICS_PORT=$(pick_port 23466 OUTBOX_CTR_WORKER_METRICS_PORT "$RELAY_METRICS_PORT")
    # shellcheck source=scripts/env.sh
    . scripts/env.sh
    # Names only: podman takes the values from this environment (no
    # password on a command line).
    ENV_ARGS=()
    for n in DB_USER DB_PASS DB_HOST DB_PORT DB_NAME \
             RABBITMQ_USER RABBITMQ_PASS RABBITMQ_HOST RABBITMQ_PORT; do
        ENV_ARGS+=(-e "$n")
    done
    timed "smoke: servers" smoke_infra
    timed "smoke: migrate" smoke_migrate
    timed "smoke: start+healthy" smoke_start
    if has_image app; then
        timed "smoke: POST" smoke_post
    fi
    if has_image app && { has_image relay || has_image worker; }; then
        timed "smoke: relay+worker" smoke_flow
    fi
    timed "smoke: stop (SIGTERM)" smoke_stop
    timed "smoke: servers stop" smoke_cleanup
    say "smoke run passed (${IMAGES[*]})"
}

# ------------------------------------------------------------------ main

usage() { sed -n '3,/^# Why podman/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

phases=()
for a in "$@"; do
    case $a in
        setup|images|smoke) phases+=("$a") ;;
        all) phases+=(setup images smoke) ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown phase: $a" ;;
    esac
done
[ ${#phases[@]} -gt 0 ] || phases=(setup images smoke)

on_exit() {
    local rc=$?
    cleanup_base_dir
    cleanup_context
    smoke_cleanup
    if [ -n "$CURRENT" ]; then
        TIMINGS+=("$(printf '%-24s %6s s  FAILED' "$CURRENT" "$(secs "$CURRENT_T")")")
    fi
    TIMINGS+=("$(printf '%-24s %6s s' total "$(secs "$T_ALL")")")
    print_timings
    if [ "$rc" = 0 ]; then
        say "done: ${phases[*]}"
    else
        say "FAILED (exit $rc)${CURRENT:+ during \"$CURRENT\"}" >&2
    fi
}

T_ALL=$(now_us)
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for p in "${phases[@]}"; do
    say "=== $p ==="
    case $p in
        setup)  phase_setup ;;
        images) phase_images ;;
        smoke)  phase_smoke ;;
    esac
done
