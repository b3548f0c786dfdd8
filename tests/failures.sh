# shellcheck shell=bash
# tests/failures.sh - what tests/run.sh repeats of a failed part at the
# end of the run, beside its final "N passed, N failed" line: a CI log
# that keeps only its tail still names what failed.  Source it.
#   failure_lines OUT [MAX]   the first MAX (default 5) lines of a part's
#                             output that name a failed check, each cut
#                             to 240 characters: check's "file:line:F:"
#                             (a failed assertion) and "file:line:E:" (a
#                             crash or a timeout), the shell tests'
#                             "<name>: FAILED: ..." and chaos's "FAIL: ..."
#                             and "RESULT: FAIL"; none when it holds none
failure_lines() {
	grep -E '^[^ :]+:[0-9]+:[EF]:|^[a-z-]+: FAILED: |^FAIL: |^RESULT: FAIL' \
		"$1" 2>/dev/null | head -n "${2:-5}" | cut -c1-240
}
