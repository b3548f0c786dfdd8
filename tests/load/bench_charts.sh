#!/usr/bin/env bash
# tests/load/bench_charts.sh - the charts of a bench run, drawn with
# gnuplot as SVG into the folder `make bench` wrote (tests/load/bench.sh
# runs it at the end; `make bench-charts` draws them again, e.g. after a
# change of their style in tests/load/charts/*.gp).
#
#   tests/load/bench_charts.sh <bench folder>
#
#   e2e-latency-cdf.svg   the end-to-end latency distribution (log x, p50
#                         and p99 marked) from e2e-latency-empty.dat, and
#                         e2e-latency-history.dat when there is one
#   drain-throughput.svg  msg/s over time during the relay's and the
#                         worker's drains from drain-relay-empty.dat and
#                         drain-worker-empty.dat (and their -history
#                         twins when there are), the raw limits from
#                         result.json as lines when it is there
#   ratios.svg            the system over the raw limits, as bars, from
#                         result.json
#
# Each chart is drawn, or a "bench-charts: ..." line on stderr says why
# not, and the others are drawn still.  Exits 0 when all three were
# drawn, 1 when one was not, 2 when none can be (no gnuplot or jq, no
# folder).  GNUPLOT names another gnuplot (the test names a missing one).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
style=$here/charts/style.gp
gnuplot=${GNUPLOT:-gnuplot}

LIB_NAME=bench-charts
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"
[ $# -eq 1 ] || { echo "usage: ${0##*/} <bench folder>" >&2; exit 2; }
dir=$1
[ -d "$dir" ] || { warn "no folder $dir: run make bench first"; exit 2; }
for tool in "$gnuplot" jq; do
	command -v "$tool" >/dev/null 2>&1 || {
		warn "$tool not found: no charts drawn (scripts/deps.sh tools installs gnuplot-nox and jq)"
		exit 2
	}
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0

# not_drawn <chart> <why>: says so once; the run exits 1.
not_drawn() {
	warn "$1 not drawn: $2"
	rc=1
}

# plot <chart> <gnuplot file> <var=value...>: draws dir/<chart> (values
# are passed as gnuplot strings or numbers as given); a failure leaves no
# half-written file and shows gnuplot's own words.
plot() {
	local chart=$1 gp=$2 vars="out='$dir/$1'" v
	shift 2
	for v in "$@"; do vars="$vars; $v"; done
	if ! "$gnuplot" -e "$vars" "$style" "$here/charts/$gp" 2>"$tmp/gnuplot.err"; then
		rm -f "$dir/$chart"
		not_drawn "$chart" "gnuplot failed: $(head -c 600 "$tmp/gnuplot.err")"
		return
	fi
	echo "bench-charts: $dir/$chart"
}

# thousands <n>: 30000 -> 30,000
thousands() { sed -E ':a; s/^([0-9]+)([0-9]{3})/\1,\2/; ta' <<<"$1"; }

# ---- end-to-end latency distribution ---------------------------------
# cdf <tag>: tmp/cdf-<tag>.dat (latency fraction, thinned: a point
# where the latency grew 1 % or the fraction 0.002 since the last kept,
# and the last: at most 500 + 230 per decade of latency, however many
# messages) and "n p50 p99" on stdout,
# the percentiles as bench_e2e.c takes them (the value at rank
# p * (n - 1), rounded).
cdf() {
	awk -v out="$tmp/cdf-$1.dat" '
		/^#/ || NF == 0 { next }
		{ v[n++] = $1 + 0 }
		END {
			if (n == 0) exit 1
			for (i = 0; i < n; i++) {
				f = (i + 1) / n
				if (v[i] > 0 && (kept == 0 || i == n - 1 ||
				    v[i] >= lastv * 1.01 || f >= lastf + 0.002)) {
					printf "%g %.5f\n", v[i], f >out
					lastv = v[i]; lastf = f; kept++
				}
			}
			printf "%d %g %g\n", n, v[int(0.5 * (n - 1) + 0.5)], v[int(0.99 * (n - 1) + 0.5)]
		}' "$dir/e2e-latency-$1.dat"
}
draw_cdf() {
	local f=$dir/e2e-latency-empty.dat rate n p50 p99 hist=() hn hp50 hp99
	[ -f "$f" ] || { not_drawn e2e-latency-cdf.svg "no $f"; return; }
	read -r n p50 p99 < <(cdf empty) || true
	[ -n "${n:-}" ] || { not_drawn e2e-latency-cdf.svg "no latency in $f"; return; }
	rate=$(sed -nE '1s/.* ([0-9]+) POST\/s.*/\1/p' "$f")
	hist=("hist=''")
	if [ -f "$dir/e2e-latency-history.dat" ] && read -r hn hp50 hp99 < <(cdf history); then
		hist=("hist='$tmp/cdf-history.dat'" "n_hist='$(thousands "$hn")'"
			"p50_hist=$hp50" "p99_hist=$hp99")
	fi
	plot e2e-latency-cdf.svg e2e_cdf.gp "rate='$(thousands "${rate:-?}")'" \
		"empty='$tmp/cdf-empty.dat'" "n_empty='$(thousands "$n")'" \
		"p50_empty=$p50" "p99_empty=$p99" "${hist[@]}"
}

# result <jq filter>: a number of result.json, 0 when it has none.
result() {
	local v
	v=$(jq -r "($1) // 0" "$dir/result.json" 2>/dev/null) || v=0
	[[ $v =~ ^[0-9.eE+-]+$ ]] && echo "$v" || echo 0
}

# ---- throughput during the drains -----------------------------------
# smooth <file> <out>: the series' moving average over 5 steps (1.25 s),
# centred, fewer at the ends: the relay marks its rows 500 at a time, so
# a 250 ms step holds a whole number of its batches (0, 2,000, 4,000
# msg/s...), a saw that hides the rate.
smooth() {
	awk 'BEGIN { n = 0 } /^#/ || NF < 2 { next } { t[n] = $1; v[n] = $2; n++ }
		END {
			for (i = 0; i < n; i++) {
				s = 0; k = 0
				for (j = i - 2; j <= i + 2; j++)
					if (j >= 0 && j < n) { s += v[j]; k++ }
				printf "%s %.0f\n", t[i], s / k
			}
		}' "$1" >"$2"
}
draw_drains() {
	local d tag f vars=()
	for d in relay worker; do
		for tag in empty history; do
			f=$dir/drain-$d-$tag.dat
			if [ -f "$f" ]; then
				smooth "$f" "$tmp/drain-$d-$tag.dat"
				f=$tmp/drain-$d-$tag.dat
			elif [ "$tag" = empty ]; then
				not_drawn drain-throughput.svg "no $f"
				return
			else
				f=
			fi
			[ "$tag" = empty ] && vars+=("$d='$f'") || vars+=("${d}_hist='$f'")
		done
	done
	plot drain-throughput.svg drains.gp "${vars[@]}" \
		"raw_pub=$(result .raw.publish_props_per_s_1000_inflight)" \
		"raw_con=$(result .raw.consume_per_s_prefetch_500)"
}

# ---- the system over the raw limits ---------------------------------
draw_ratios() {
	local f=$dir/result.json ymax
	[ -f "$f" ] || { not_drawn ratios.svg "no $f"; return; }
	jq -r '[["app ingest", "over raw txn", .app.ratio],
	        ["relay drain", "over publish + props", .relay.ratio],
	        ["relay drain", "over bare publish", .relay.ratio_vs_bare],
	        ["worker drain", "over raw consume", .worker.ratio]][]
	       | select(.[2] | type == "number") | @tsv' \
		"$f" >"$tmp/ratios.tsv" 2>"$tmp/jq.err" || {
		not_drawn ratios.svg "$f: $(head -c 300 "$tmp/jq.err")"
		return
	}
	[ -s "$tmp/ratios.tsv" ] || { not_drawn ratios.svg "no ratio in $f"; return; }
	ymax=$(cut -f3 "$tmp/ratios.tsv" | sort -g | tail -n 1)
	plot ratios.svg ratios.gp "bars='$tmp/ratios.tsv'" \
		"cores=$(result .cores)" "ymax=$ymax"
}

draw_cdf
draw_drains
draw_ratios
exit $rc
