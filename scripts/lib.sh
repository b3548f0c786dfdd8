# shellcheck shell=bash
# scripts/lib.sh - small helpers the project's bash scripts share.  Source
# it; it defines functions only and changes no shell option.
#
#   say MSG / warn MSG / die MSG
#                               "<LIB_NAME>: MSG" on stdout (stderr when
#                               LIB_SAY_STDERR=1); "<LIB_NAME>: warning: MSG"
#                               on stderr; "<LIB_NAME>: error: MSG" on
#                               stderr, then on_die (when the script defines
#                               it) and exit 1.  Set LIB_NAME first.
#   now_us                      microseconds since the epoch
#   now_ms                      milliseconds since the epoch
#   secs START_US               "12.3": seconds since START_US
#   wait_for SECONDS CMD...     runs CMD every 0.1 s until it succeeds (0)
#                               or SECONDS pass (1): a deadline, not a sleep
#   port_holder PORT            who uses 127.0.0.1:PORT (listening or
#                               connected), as ss shows it: "" when nobody
#   free_port [PORT...]         a port of 127.0.0.1 nobody uses now, from
#                               24000-31999 (below Linux's ephemeral range,
#                               none of scripts/ports.env's slots), and none
#                               of the PORTs (those chosen before it and not
#                               bound yet: two picks may otherwise meet)
#   use_test_servers            selects the test servers of scripts/ports.env
#                               for this shell and its children, whatever
#                               OUTBOX_* the caller exported for the dev ones
#
# port_holder and free_port need ss (iproute2, scripts/deps.sh tools).

# Never fails (a terminal gone after a SIGHUP must not stop a script that
# still has daemons to stop).
say() {
	local fd=1
	[ "${LIB_SAY_STDERR:-0}" = 1 ] && fd=2
	printf '%s: %s\n' "${LIB_NAME:-${0##*/}}" "$*" >&"$fd" 2>/dev/null || true
}
warn() { printf '%s: warning: %s\n' "${LIB_NAME:-${0##*/}}" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "${LIB_NAME:-${0##*/}}" "$*" >&2
	if declare -F on_die >/dev/null; then on_die; fi
	exit 1
}

now_us() { printf '%s' "${EPOCHREALTIME/./}"; }
now_ms() { local us; us=$(now_us); printf '%s' $((us / 1000)); }

secs() {
	local d=$(($(now_us) - $1))
	printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}

wait_for() {
	local end=$(($(now_us) + $1 * 1000000))
	shift
	until "$@"; do
		[ "$(now_us)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# One line per socket: "LISTEN 127.0.0.1:33063 by mariadbd (pid 10411)",
# "ESTAB 127.0.0.1:56720 -> 127.0.0.1:33063 by outbox-relay (pid 42)",
# "TIME-WAIT ...".  Without root, another user's process shows as
# "(process not visible)".
port_holder() {
	command -v ss >/dev/null 2>&1 || { echo "(ss not found: install iproute2)"; return 0; }
	ss -Htanp "( sport = :$1 )" 2>/dev/null | awk '
		{
			who = "(process not visible)"
			if (match($0, /users:\(\("[^"]*",pid=[0-9]+/)) {
				u = substr($0, RSTART + 9, RLENGTH - 9)
				split(u, a, "\",pid=")
				who = a[1] " (pid " a[2] ")"
			} else if ($1 == "TIME-WAIT") {
				who = "(a closed connection, for up to 60 s)"
			}
			print $1 " " $4 ($1 == "LISTEN" ? "" : " -> " $5) " by " who
		}' | sort -u
}

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((24000 + RANDOM % 8000))
		case " $* " in *" $p "*) continue ;; esac
		if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

use_test_servers() {
	unset OUTBOX_VAR OUTBOX_DB_PORT OUTBOX_MQ_PORT OUTBOX_MQ_DIST_PORT \
		OUTBOX_MQ_PORTS OUTBOX_MQ_DIST_PORTS OUTBOX_MQ_NODES \
		OUTBOX_MQ_EPMD_PORT
	export OUTBOX_SERVERS=test
}
