#!/usr/bin/env bash
# scripts/lint.sh - static checks of the C sources: banned unsafe functions
# (always), and of the shell scripts: a quieted input redirection (always);
# then cppcheck when it is installed.  `make lint`; tests/run.sh
# runs the banned-function check as a test.
#   scripts/lint.sh           all checks
#   scripts/lint.sh banned    only the banned-function check
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mapfile -t srcs < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.c' -o -name '*.h')
rc=0

# Unbounded or unchecked: use snprintf, memcpy with a checked length,
# buf_append, cfg_parse_int / strtol with end checks.
banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strncat|gets|atoi|atol|atoll|atof|strtok|tmpnam|mktemp)[[:space:]]*\('
if hits=$(grep -nE "$banned" "${srcs[@]}" | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)'); then
	echo "lint: banned functions:"
	echo "$hits"
	rc=1
else
	echo "lint: no banned functions in ${#srcs[@]} files"
fi

# `cmd <"$f" 2>/dev/null`: the shell opens $f before it moves stderr, so
# a missing $f still prints "No such file or directory"; quiet it first
# (`cmd 2>/dev/null <"$f"`).
mapfile -t shs < <(git ls-files '*.sh' '.ci/run' 2>/dev/null || find . -name '*.sh')
if hits=$(grep -nE '<[[:space:]]*[^[:space:]<>|&;()]+[[:space:]]+2>[[:space:]]*/dev/null' "${shs[@]}" |
	grep -vE '^[^:]+:[0-9]+:[[:space:]]*#'); then
	echo "lint: input redirections quieted too late (put 2>/dev/null before <):"
	echo "$hits"
	rc=1
else
	echo "lint: no late-quieted redirection in ${#shs[@]} scripts"
fi
[ "${1:-}" = banned ] && exit $rc

if command -v cppcheck >/dev/null 2>&1; then
	if ! cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
	    --enable=warning,portability --suppress=missingIncludeSystem \
	    -Icommon -I. "${srcs[@]}"; then
		rc=1
	else
		echo "lint: cppcheck clean"
	fi
else
	echo "lint: cppcheck not installed; skipped"
fi
exit $rc
