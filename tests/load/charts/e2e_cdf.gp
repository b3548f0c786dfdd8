# tests/load/charts/e2e_cdf.gp - the end-to-end latency distribution of
# the bench's open-loop run: the fraction of messages whose effect was
# committed within x ms of their customer's row, x on a log scale, p50
# and p99 marked.  Variables (tests/load/bench_charts.sh): rate; empty,
# n_empty, p50_empty, p99_empty: the empty tables' curve (a file of
# "latency fraction" lines); hist, n_hist, p50_hist, p99_hist: the same
# with history (hist "" when the run had none).
set title sprintf("End-to-end latency at %s POST/s, open loop: the customer's row to the worker's effect", rate)
set xlabel 'latency (ms, log scale)'
set ylabel 'fraction of messages'
set logscale x
set format x '%g'
set yrange [0:1.06]
set ytics 0, 0.1, 1
set key bottom right
# mark(x, y, colour, name, side): a dashed line up to the curve and a
# dot, named on one side: the empty tables' above left (theirs is the
# faster curve, on the left), history's below right: they never meet.
mark(x, y, c, name, side) = sprintf("set arrow from %g, graph 0 to %g, %g nohead dt 2 lc rgb '%s'; set label '%s %.1f ms' at %g, %g %s point pt 7 ps 0.8 lc rgb '%s' offset %s tc rgb '%s'", x, x, y, c, name, x, x, y, side, c, side eq 'right' ? '-0.6, 0.6' : '0.6, -0.6', c)
eval mark(p50_empty, 0.5, '#1f5fa8', 'p50', 'right')
eval mark(p99_empty, 0.99, '#1f5fa8', 'p99', 'right')
curves = sprintf("'%s' using 1:2 with lines lt 1 title 'empty tables (%s messages)'", empty, n_empty)
if (hist ne '') {
	eval mark(p50_hist, 0.5, '#d9770b', 'p50', 'left')
	eval mark(p99_hist, 0.99, '#d9770b', 'p99', 'left')
	curves = curves . sprintf(", '%s' using 1:2 with lines lt 2 title 'with history (%s messages)'", hist, n_hist)
}
eval 'plot ' . curves
