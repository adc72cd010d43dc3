# kvcomp sweep: perplexity against bits per value. Re-run: gnuplot sweep.gp (in this directory)
set terminal pngcairo size 1000,650 enhanced font 'sans,11'
set output 'sweep.png'
set title "kvcomp sweep: demo, ctx 1024, 32 window(s), prefill 256" noenhanced
set xlabel 'bits per value (K and V blocks, scales/zeros/codebooks included; recent window excluded)'
set ylabel 'perplexity'
set grid
set key top right box opaque
set yrange [34.4352:34.8854]
set xrange [0:17]
$kvcomp << EOD
1.95014 34.4889
2.72813 34.5033
3.62997 34.487
4.6157 34.4872
5.96899 34.4883
EOD
$kivi4 << EOD
4.71739 34.4903
EOD
$kivi2 << EOD
2.71739 34.5082
EOD
$int8 << EOD
8.25 34.4879
EOD
$fp8 << EOD
8.00153 34.4882
EOD
plot $kvcomp using 1:2 with linespoints lw 3 pt 7 ps 1.3 lc rgb '#d62728' title 'kvcomp', \
     $kivi4 using 1:2 with linespoints lw 2 pt 5 ps 1.2 lc rgb '#1f77b4' title 'kivi4', \
     $kivi2 using 1:2 with linespoints lw 2 pt 4 ps 1.2 lc rgb '#17becf' title 'kivi2', \
     $int8 using 1:2 with linespoints lw 2 pt 9 ps 1.3 lc rgb '#2ca02c' title 'int8', \
     $fp8 using 1:2 with linespoints lw 2 pt 11 ps 1.3 lc rgb '#9467bd' title 'fp8', \
     34.488679 with lines lw 2 dt 1 lc rgb 'black' title 'fp16 (34.489)', \
     34.833566 with lines lw 1 dt 2 lc rgb 'gray40' title 'fp16 + 1%'
