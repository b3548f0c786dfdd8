# shellcheck shell=bash
# tests/check.sh - the checks of the shell tests.  Source it after setting
# TEST_NAME (the word before every line, "dev", "deps"...):
#   check DESCRIPTION CMD...   runs CMD: "<name>: ok: DESCRIPTION" or
#                              "<name>: FAILED: DESCRIPTION", counted
#   need_tools TOOL...         one check that every TOOL is on PATH (what
#                              is missing, and what installs it); when
#                              one is missing: finish
#   finish                     prints "<name>: N passed, N failed" (the line
#                              tests/run.sh adds up) and exits, 0 only
#                              when nothing failed
passed=0
failed=0

check() {
	local what=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "$TEST_NAME: ok: $what"
	else
		failed=$((failed + 1))
		echo "$TEST_NAME: FAILED: $what"
	fi
}

finish() {
	echo "$TEST_NAME: $passed passed, $failed failed"
	exit $((failed != 0))
}

need_tools() {
	local t missing=()
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	check "tools present ($*; missing: ${missing[*]:-none}; bash scripts/deps.sh tools installs them)" \
		test ${#missing[@]} -eq 0
	[ ${#missing[@]} -eq 0 ] || finish
}
