#!/usr/bin/env bash
#
# scripts/deps.sh - install the Debian packages the project needs, idempotently.
#
#   scripts/deps.sh [--check] [GROUP...]     GROUP: build | servers | tools | containers | all
#
#   build    compilers and -dev libraries: enough for `make build` and the tests' code
#   servers  MariaDB and RabbitMQ servers and the mariadb client
#   tools    curl, wrk (bench), clang + compiler-rt (sanitizers), valgrind,
#            prometheus (promtool, checks the /metrics text in the tests;
#            the private Prometheus of make dev MONITOR=1 and the tests),
#            jq (the monitoring test, the bench's charts), procps (pgrep)
#            and iproute2 (ss) for the test scripts, gnuplot-nox (the
#            bench's charts), libxml2-utils (xmllint: the charts' test),
#            docker-compose (the cluster test checks the compose profile)
#   containers  podman, runc, mmdebstrap, debian-archive-keyring,
#            docker-compose and curl: the images of make test, make images
#            and make containers-smoke (scripts/containers.sh setup)
#   all      all of the above (the default)
#
# When every package is installed it prints one line and exits 0 (no apt, no
# root needed). Otherwise it runs `apt-get update` once, then
# `apt-get install -y --no-install-recommends` of the missing packages only,
# as root or through sudo. --check only reports: exit 1 if anything is missing.
#
# Packages that run a daemon (mariadb-server, rabbitmq-server, prometheus,
# erlang's epmd) must not start the system's instances (ports 3306, 5672,
# 25672, 4369, 9090): the project runs its own (scripts/infra.sh). So:
# - during the install, a /usr/sbin/policy-rc.d denies every service start
#   (invoke-rc.d and deb-systemd-invoke obey it); one already there that
#   denies them is kept, another is set aside and put back after;
# - where systemd runs, the units of the packages this run installed
#   (dependencies included) that their packages enabled are disabled and
#   stopped again (`systemctl disable --now`), and it says which; units of
#   packages that were already there are never touched.
# OUTBOX_DEPS_ALLOW_SERVICE_START=1 turns both off.
set -euo pipefail

readonly BUILD_PKGS=(build-essential pkg-config libmicrohttpd-dev
    default-libmysqlclient-dev librabbitmq-dev libjansson-dev uuid-dev check
    libcurl4-openssl-dev libunistring-dev)
readonly SERVER_PKGS=(mariadb-server mariadb-client rabbitmq-server)
readonly TOOL_PKGS=(curl wrk clang libclang-rt-14-dev valgrind prometheus
    jq procps iproute2 gnuplot-nox libxml2-utils docker-compose)
readonly CONTAINER_PKGS=(podman runc mmdebstrap debian-archive-keyring
    docker-compose curl)

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LIB_NAME=deps

usage() {
    sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'
}

check_only=0
groups=()
for arg in "$@"; do
    case $arg in
        --check|-n) check_only=1 ;;
        -h|--help) usage; exit 0 ;;
        build|servers|tools|containers|all) groups+=("$arg") ;;
        *) usage >&2; die "unknown argument: $arg" ;;
    esac
done
[ ${#groups[@]} -gt 0 ] || groups=(all)

wanted=()
for g in "${groups[@]}"; do
    case $g in
        build)   wanted+=("${BUILD_PKGS[@]}") ;;
        servers) wanted+=("${SERVER_PKGS[@]}") ;;
        tools)   wanted+=("${TOOL_PKGS[@]}") ;;
        containers) wanted+=("${CONTAINER_PKGS[@]}") ;;
        all)     wanted+=("${BUILD_PKGS[@]}" "${SERVER_PKGS[@]}" "${TOOL_PKGS[@]}"
                          "${CONTAINER_PKGS[@]}") ;;
    esac
done
# de-duplicate, keep order
mapfile -t wanted < <(printf '%s\n' "${wanted[@]}" | awk '!seen[$0]++')

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    die "this script needs a Debian-like system (dpkg-query and apt-get not found)"
fi

# Every installed package, sorted.
installed_all() {
    dpkg-query -W -f='${Package}\t${db:Status-Status}\n' 2>/dev/null |
        awk -F'\t' '$2 == "installed" { print $1 }' | sort || true
}

# Prints the packages of "$@" that are not fully installed.
missing_of() {
    local installed
    # One dpkg-query for all; unknown packages are simply absent from the output.
    installed=$(dpkg-query -W -f='${Package}\t${db:Status-Status}\n' "$@" 2>/dev/null |
                awk -F'\t' '$2 == "installed" { print $1 }' || true)
    local p
    for p in "$@"; do
        grep -qxF -- "$p" <<<"$installed" || printf '%s\n' "$p"
    done
}

mapfile -t missing < <(missing_of "${wanted[@]}")

if [ ${#missing[@]} -eq 0 ]; then
    say "all ${#wanted[@]} packages installed (${groups[*]})"
    exit 0
fi

if [ "$check_only" = 1 ]; then
    say "missing: ${missing[*]}"
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
        die "need root to install: ${missing[*]} (not root and sudo not found; run as root)"
    SUDO=(sudo)
fi

# apt/dpkg may be busy (another install, unattended-upgrades): wait up to 10 min.
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q
     -o DPkg::Lock::Timeout=600)

policy_rc=${OUTBOX_DEPS_POLICY_RC:-/usr/sbin/policy-rc.d}   # (tests move it)
policy_rc_ours=0 policy_rc_aside=
cleanup() {
    if [ "$policy_rc_ours" = 1 ]; then
        "${SUDO[@]}" rm -f "$policy_rc" || true
        if [ -n "$policy_rc_aside" ]; then
            "${SUDO[@]}" mv -f "$policy_rc_aside" "$policy_rc" || true
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
deny_services=1
[ "${OUTBOX_DEPS_ALLOW_SERVICE_START:-0}" != 1 ] || deny_services=0
# policy-rc.d's contract: exit 101 means "action forbidden".
denies() { local rc=0; "$1" outbox-deps-check start >/dev/null 2>&1 || rc=$?; [ "$rc" -eq 101 ]; }
if [ "$deny_services" = 1 ] && ! { [ -x "$policy_rc" ] && denies "$policy_rc"; }; then
    if [ -e "$policy_rc" ]; then
        policy_rc_aside=$policy_rc.outbox-aside
        "${SUDO[@]}" mv -f "$policy_rc" "$policy_rc_aside"
        say "$policy_rc allows service starts: set aside for the install, put back after"
    fi
    printf '#!/bin/sh\n# temporary, from outbox scripts/deps.sh: no service starts during install\nexit 101\n' |
        "${SUDO[@]}" tee "$policy_rc" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy_rc"
    policy_rc_ours=1
fi
[ "$deny_services" = 0 ] || say "no service starts during the install ($policy_rc denies them)"

# Where systemd runs: disable (and stop) again the units that the packages
# installed by this run enabled.  $1: the packages installed before.
systemd_running() { [ -d "${OUTBOX_DEPS_SYSTEMD_RUN:-/run/systemd/system}" ]; }
undo_enabled_units() {
    local new units=() u off=()
    new=$(comm -13 <(printf '%s\n' "$1") <(installed_all))
    [ -n "$new" ] || return 0
    # shellcheck disable=SC2086   # package names are single words
    mapfile -t units < <(dpkg -L $new 2>/dev/null |
        grep -E '^(/usr)?/lib/systemd/system/[^/@]+[.](service|socket|timer)$' |
        sed 's|.*/||' | sort -u)
    [ ${#units[@]} -gt 0 ] || return 0
    if ! systemd_running; then
        say "no systemd running: the services of ${units[*]} do not start (their packages' enablement only matters under systemd)"
        return 0
    fi
    for u in "${units[@]}"; do
        [ "$(systemctl is-enabled "$u" 2>/dev/null)" != enabled ] || off+=("$u")
    done
    [ ${#off[@]} -gt 0 ] || return 0
    "${SUDO[@]}" systemctl disable --now "${off[@]}" >/dev/null 2>&1 ||
        say "warning: systemctl disable --now ${off[*]} failed"
    say "systemd: disabled and stopped ${off[*]}: enabled by the packages just installed; the project runs its own servers (scripts/infra.sh)"
}
before=$(installed_all)

say "installing ${#missing[@]} missing package(s): ${missing[*]}"
start=$SECONDS
say "apt-get update"
if ! "${APT[@]}" update; then
    say "warning: apt-get update failed; trying the install with the current package lists"
fi
if ! "${APT[@]}" install -y --no-install-recommends "${missing[@]}"; then
    # An earlier interrupted dpkg run blocks every install until configured.
    say "install failed; running dpkg --configure -a and retrying once"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive dpkg --configure -a || true
    "${APT[@]}" install -y --no-install-recommends "${missing[@]}" ||
        die "apt-get install failed for: ${missing[*]}"
fi

mapfile -t still < <(missing_of "${wanted[@]}")
[ ${#still[@]} -eq 0 ] || die "still not installed after apt-get: ${still[*]}"
[ "$deny_services" = 0 ] || undo_enabled_units "$before"
say "installed ${#missing[@]} package(s) in $((SECONDS - start)) s"
