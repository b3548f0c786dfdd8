# tests/load/charts/drains.gp - throughput over time during the bench's
# drains: messages per second in 250 ms steps from the daemon's start
# (a moving average of 5 steps, tests/load/bench_charts.sh),
# the relay's (outbox rows published) and the worker's (messages
# handled), the raw limits of the same run as dotted lines.  Variables
# (tests/load/bench_charts.sh): relay, worker: the empty tables' series
# (files of "seconds msg/s" lines); relay_hist, worker_hist: with history
# ("" when none); raw_pub, raw_con: the raw publish and consume rates (0
# when unknown).
set title 'Throughput during the drains (250 ms steps, moving average over 1.25 s)'
set xlabel "seconds since the daemon's start"
set ylabel 'messages per second'
set yrange [0:*]
set xrange [0:*]
set offsets 0, 0, graph 0.3, 0
set key top right
set format y '%.0f'
series(f, lt, dt, name) = (f eq '') ? '' : sprintf(", '%s' using 1:2 with lines lt %d dt %d title '%s'", f, lt, dt, name)
limit(v, lt, name) = (v <= 0) ? '' : sprintf(", %g with lines lt 3 lc %d dt 3 title '%s (%.0f msg/s)'", v, lt, name, v)
curves = sprintf("'%s' using 1:2 with lines lt 1 title 'relay drain'", relay) \
	. series(worker, 2, 1, 'worker drain') \
	. series(relay_hist, 1, 2, 'relay drain, with history') \
	. series(worker_hist, 2, 2, 'worker drain, with history') \
	. limit(raw_pub, 1, 'raw publish limit') \
	. limit(raw_con, 2, 'raw consume limit')
eval 'plot ' . curves
