#!/usr/bin/env bash
# shellcheck disable=SC2317 # checks run through check() look unreachable
# tests/deps_test.sh - scripts/deps.sh leaves the host's services as it
# found them (issue 12): no service of a package it installs starts during
# the install, and where systemd runs the units those packages enabled are
# disabled again, and only those.
#
# Hermetic: apt-get, dpkg-query, dpkg and systemctl are fakes on PATH (a
# fake install adds packages and their dependencies to a state file, and
# enables their units as deb-systemd-helper would); policy-rc.d and
# /run/systemd/system are moved into a temporary folder
# (OUTBOX_DEPS_POLICY_RC, OUTBOX_DEPS_SYSTEMD_RUN).  Nothing of the machine
# is read or changed.  Prints "deps: N passed, N failed" (tests/run.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TEST_NAME=deps
# shellcheck source=tests/check.sh
. "$root/tests/check.sh"

# ---- the fakes ------------------------------------------------------------
fake=$tmp/fake
mkdir -p "$fake/bin" "$fake/files" "$fake/deps"
export FAKE_PKGS=$fake
cat >"$fake/bin/dpkg-query" <<'EOF'
#!/bin/bash
# dpkg-query -W -f=FORMAT [PKG...]: "pkg<TAB>installed" for installed ones
shift 2
while read -r p; do
	if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qxF "$p"; then
		printf '%s\tinstalled\n' "$p"
	fi
done <"$FAKE/state"
EOF
cat >"$fake/bin/apt-get" <<'EOF'
#!/bin/bash
# apt-get [-q] [-o X] update | install -y --no-install-recommends PKG...
while [ $# -gt 0 ]; do
	case $1 in -q | -y | --no-install-recommends) shift ;; -o) shift 2 ;; *) break ;; esac
done
cmd=$1; shift
[ "$cmd" = install ] || exit 0
rc=none
if [ -x "$OUTBOX_DEPS_POLICY_RC" ]; then
	rc=0; "$OUTBOX_DEPS_POLICY_RC" mariadb start || rc=$?
fi
echo "policy during install: $rc" >>"$FAKE/log"
for p in "$@"; do
	[ "$p" = -y ] || [ "$p" = --no-install-recommends ] && continue
	for q in "$p" $(cat "$FAKE_PKGS/deps/$p" 2>/dev/null); do
		grep -qxF "$q" "$FAKE/state" && continue
		echo "$q" >>"$FAKE/state"
		# deb-systemd-helper enables the package's units (not templates)
		sed -n 's|^/lib/systemd/system/\([^@/]*\)$|\1|p' "$FAKE_PKGS/files/$q" 2>/dev/null |
			grep -v '^epmd.service$' >>"$FAKE/enabled" || true
	done
done
EOF
cat >"$fake/bin/dpkg" <<'EOF'
#!/bin/bash
# dpkg -L PKG... | dpkg --configure -a
[ "$1" = -L ] || exit 0
shift
for p in "$@"; do cat "$FAKE_PKGS/files/$p" 2>/dev/null || true; done
EOF
cat >"$fake/bin/systemctl" <<'EOF'
#!/bin/bash
# systemctl is-enabled UNIT | disable --now UNIT...
case $1 in
is-enabled)
	if grep -qxF "$2" "$FAKE/enabled"; then echo enabled; else echo disabled; exit 1; fi ;;
disable)
	shift; [ "$1" = --now ] && shift
	for u in "$@"; do
		grep -vxF "$u" "$FAKE/enabled" >"$FAKE/enabled.new" || true
		mv "$FAKE/enabled.new" "$FAKE/enabled"
		echo "disabled $u" >>"$FAKE/log"
	done ;;
esac
EOF
printf '#!/bin/bash\nexec "$@"\n' >"$fake/bin/sudo"
chmod +x "$fake/bin/"*
# What the fake packages ship and pull in.
printf '/usr/sbin/mariadbd\n/lib/systemd/system/mariadb.service\n/lib/systemd/system/mariadb@.service\n' \
	>"$fake/files/mariadb-server"
echo mariadb-server-core >"$fake/deps/mariadb-server"
printf '/lib/systemd/system/rabbitmq-server.service\n' >"$fake/files/rabbitmq-server"
echo erlang-base >"$fake/deps/rabbitmq-server"
printf '/lib/systemd/system/epmd.service\n/lib/systemd/system/epmd.socket\n' >"$fake/files/erlang-base"
printf '/lib/systemd/system/old.service\n' >"$fake/files/old-daemon"

# scenario NAME POLICY [VAR=value...]: a fresh machine (mariadb-client and
# old-daemon installed, old.service enabled, POLICY as its policy-rc.d if
# not ""), then deps.sh servers.
scenario() {
	local name=$1 policy=$2
	shift 2
	export FAKE=$tmp/$name
	mkdir -p "$FAKE/etc" "$FAKE/run-systemd"
	if [ -n "$policy" ]; then
		cp "$policy" "$FAKE/etc/policy-rc.d"
		chmod +x "$FAKE/etc/policy-rc.d"
	fi
	printf 'mariadb-client\nold-daemon\n' >"$FAKE/state"
	echo old.service >"$FAKE/enabled"
	: >"$FAKE/log"
	OUT=$(env PATH="$fake/bin:$PATH" OUTBOX_DEPS_POLICY_RC="$FAKE/etc/policy-rc.d" \
		OUTBOX_DEPS_SYSTEMD_RUN="$FAKE/run-systemd" "$@" \
		bash "$root/scripts/deps.sh" servers 2>&1) || OUT="$OUT (exit $?)"
	printf '%s\n' "$OUT" | sed "s/^/deps:   [$name] /"
}
enabled() { sort "$FAKE/enabled" | paste -sd ' '; }
in_log() { grep -qxF "$1" "$FAKE/log"; }
said() { grep -qF "$1" <<<"$OUT"; }

# ---- systemd runs, no policy-rc.d before ----------------------------------
scenario systemd ""
check "systemd: installed (rabbitmq-server, mariadb-server and their dependencies)" \
	grep -qxF erlang-base "$FAKE/state"
check "systemd: services denied during the install (policy-rc.d exit 101)" \
	in_log "policy during install: 101"
check "systemd: our policy-rc.d removed after" test ! -e "$FAKE/etc/policy-rc.d"
check "systemd: the units the packages enabled are disabled again, the one already there kept (enabled: $(enabled))" \
	test "$(enabled)" = old.service
check "systemd: old.service never touched" bash -c "! grep -q 'disabled old.service' '$FAKE/log'"
check "systemd: it says so" said "systemd: disabled and stopped epmd.socket mariadb.service rabbitmq-server.service"

# ---- a policy-rc.d that allows starts -------------------------------------
printf '#!/bin/sh\nexit 0\n' >"$tmp/allow"
scenario allowing "$tmp/allow"
check "allowing policy: replaced during the install (101)" in_log "policy during install: 101"
check "allowing policy: put back after, unchanged" cmp -s "$tmp/allow" "$FAKE/etc/policy-rc.d"
check "allowing policy: it says so" said "allows service starts: set aside"

# ---- a policy-rc.d that already denies ------------------------------------
printf '#!/bin/sh\n# the machine'"'"'s own\nexit 101\n' >"$tmp/deny"
scenario denying "$tmp/deny"
check "denying policy: kept and obeyed (101)" in_log "policy during install: 101"
check "denying policy: left as it was" cmp -s "$tmp/deny" "$FAKE/etc/policy-rc.d"

# ---- no systemd -----------------------------------------------------------
scenario nosystemd "" OUTBOX_DEPS_SYSTEMD_RUN="$tmp/nowhere"
check "no systemd: services denied during the install" in_log "policy during install: 101"
check "no systemd: no systemctl call" bash -c "! grep -q '^disabled' '$FAKE/log'"
check "no systemd: it says so" said "no systemd running"

# ---- OUTBOX_DEPS_ALLOW_SERVICE_START=1 -------------------------------------
scenario allowed "" OUTBOX_DEPS_ALLOW_SERVICE_START=1
check "ALLOW_SERVICE_START=1: no policy during the install" in_log "policy during install: none"
check "ALLOW_SERVICE_START=1: nothing disabled" bash -c "! grep -q '^disabled' '$FAKE/log'"

finish
