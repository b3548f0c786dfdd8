# tests/load/charts/style.gp - what the bench's charts share: SVG of a
# fixed size (it shows as an image in the README), colours, grid.
# Run before each chart's file (tests/load/bench_charts.sh sets `out`).
set terminal svg size 800,480 fixed font 'Helvetica,13' background rgb 'white' noenhanced
set output out
set encoding utf8
set border 3 lc rgb '#555555'
set tics nomirror textcolor rgb '#333333'
set grid lc rgb '#e0e0e0' lt 1
set key opaque box lc rgb '#cccccc'
# 1 relay / empty tables, 2 worker / history, 3 the raw limits
set linetype 1 lc rgb '#1f5fa8' lw 2
set linetype 2 lc rgb '#d9770b' lw 2
set linetype 3 lc rgb '#777777' lw 1.5
