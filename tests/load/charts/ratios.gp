# tests/load/charts/ratios.gp - the system's figures over the raw limits
# of the same servers, measured in the same run (result.json), as bars;
# 1 is the raw limit.  Variables (tests/load/bench_charts.sh): bars: a
# file of "what<TAB>over what<TAB>ratio" lines; cores; ymax: the highest
# ratio.
set title sprintf('The system over the raw limits of the same servers, same run (%d cores)', cores)
set ylabel 'ratio (1 = the raw limit)'
set yrange [0:(ymax > 1 ? ymax * 1.15 : 1.15)]
set datafile separator "\t"
set style fill solid 0.85 border -1
set boxwidth 0.6
set xtics scale 0
set bmargin 4
set grid noxtics
set key off
set arrow from graph 0, first 1 to graph 1, first 1 nohead lt 3 dt 2
plot bars using 0:3:xtic(strcol(1) . "\n" . strcol(2)) with boxes lt 1, \
	'' using 0:3:(sprintf('%.2f', $3)) with labels offset 0, 0.8 notitle
