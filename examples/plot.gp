# plot.gp: the trainer's per-epoch CSV (--log-csv) as two panels: loss
# (train, test) and accuracy (train, test) against epoch.
#
#   gnuplot -e "csv='build/mnist14k.csv'; png='build/mnist14k.png'" examples/plot.gp
#
# CSV columns: epoch,lr,train_loss,train_acc,test_loss,test_acc,seconds
if (!exists("csv")) csv = 'build/mnist14k.csv'
if (!exists("png")) png = 'build/mnist14k.png'
if (!exists("title")) title = 'mnist14k'

set datafile separator ','
# column 1 of the header row is not a number; skip it explicitly
set key autotitle columnhead
stats csv using 1 nooutput
epochs = STATS_max

set terminal pngcairo size 1100,480 enhanced font 'sans,10'
set output png
set multiplot layout 1,2 title sprintf('%s: %d epoch%s', title, epochs, epochs == 1 ? '' : 's')

set grid
set xlabel 'epoch'
set xrange [STATS_min - 0.5 : STATS_max + 0.5]
set xtics 1
if (epochs > 20) set xtics autofreq
set key top right

set title 'loss (mean NLL)'
set ylabel 'loss'
set logscale y
plot csv using 1:3 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#1f77b4' title 'train', \
     csv using 1:5 with linespoints lw 2 pt 5 ps 0.6 lc rgb '#d62728' title 'test'
unset logscale y

set title 'accuracy'
set ylabel 'accuracy (%)'
set key bottom right
set format y '%.1f'
plot csv using 1:4 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#1f77b4' title 'train', \
     csv using 1:6 with linespoints lw 2 pt 5 ps 0.6 lc rgb '#d62728' title 'test'

unset multiplot
set output
