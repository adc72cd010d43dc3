# Decode attention latency against context. Re-run: gnuplot attention.gp (in this directory)
set terminal pngcairo size 1040,800 enhanced font 'sans,10'
set output 'attention.png'
set datafile missing 'NaN'
set logscale x 2
set logscale y 10
set xtics ("16k" 16384, "32k" 32768, "128k" 131072)
set xrange [13107.2:163840]
set format y '%g'
set grid
set key top left box opaque font ',8'
set xlabel 'context (tokens)'
set ylabel 'latency (µs)'
set multiplot layout 2,2 title "Decode attention, H200 (docs/bench/attention.json)" noenhanced
set title "32 KV heads, batch 1" noenhanced
plot 'attention.dat' index 0 using 1:($2*1000) with linespoints lw 2 lc rgb '#1f77b4' pt 7 title 'fp16 cache, cuBLAS', \
     'attention.dat' index 0 using 1:($3*1000) with linespoints lw 2 lc rgb '#17becf' pt 6 title 'fp16 cache, flash decoding', \
     'attention.dat' index 0 using 1:($4*1000) with linespoints lw 2 lc rgb '#d62728' pt 5 title 'kvcomp fused', \
     'attention.dat' index 0 using 1:($5*1000) with linespoints lw 2 lc rgb '#bcbd22' pt 15 title 'kvcomp-fixed fused (fixed-length codes)', \
     'attention.dat' index 0 using 1:($6*1000) with linespoints lw 2 lc rgb '#2ca02c' pt 11 dt 2 title 'torch matmul-softmax-matmul', \
     'attention.dat' index 0 using 1:($7*1000) with linespoints lw 2 lc rgb '#9467bd' pt 13 dt 2 title 'torch SDPA', \
     'attention.dat' index 0 using 1:($8*1000) with linespoints lw 2 lc rgb '#8c564b' pt 4 dt 3 title 'llama.cpp flash attention, f16', \
     'attention.dat' index 0 using 1:($9*1000) with linespoints lw 2 lc rgb '#e377c2' pt 8 dt 3 title 'llama.cpp flash attention, q8_0'
set title "32 KV heads, batch 8" noenhanced
plot 'attention.dat' index 1 using 1:($2*1000) with linespoints lw 2 lc rgb '#1f77b4' pt 7 title 'fp16 cache, cuBLAS', \
     'attention.dat' index 1 using 1:($3*1000) with linespoints lw 2 lc rgb '#17becf' pt 6 title 'fp16 cache, flash decoding', \
     'attention.dat' index 1 using 1:($4*1000) with linespoints lw 2 lc rgb '#d62728' pt 5 title 'kvcomp fused', \
     'attention.dat' index 1 using 1:($5*1000) with linespoints lw 2 lc rgb '#bcbd22' pt 15 title 'kvcomp-fixed fused (fixed-length codes)', \
     'attention.dat' index 1 using 1:($6*1000) with linespoints lw 2 lc rgb '#2ca02c' pt 11 dt 2 title 'torch matmul-softmax-matmul', \
     'attention.dat' index 1 using 1:($7*1000) with linespoints lw 2 lc rgb '#9467bd' pt 13 dt 2 title 'torch SDPA', \
     'attention.dat' index 1 using 1:($8*1000) with linespoints lw 2 lc rgb '#8c564b' pt 4 dt 3 title 'llama.cpp flash attention, f16', \
     'attention.dat' index 1 using 1:($9*1000) with linespoints lw 2 lc rgb '#e377c2' pt 8 dt 3 title 'llama.cpp flash attention, q8_0'
set title "8 KV heads, batch 1" noenhanced
plot 'attention.dat' index 2 using 1:($2*1000) with linespoints lw 2 lc rgb '#1f77b4' pt 7 title 'fp16 cache, cuBLAS', \
     'attention.dat' index 2 using 1:($3*1000) with linespoints lw 2 lc rgb '#17becf' pt 6 title 'fp16 cache, flash decoding', \
     'attention.dat' index 2 using 1:($4*1000) with linespoints lw 2 lc rgb '#d62728' pt 5 title 'kvcomp fused', \
     'attention.dat' index 2 using 1:($5*1000) with linespoints lw 2 lc rgb '#bcbd22' pt 15 title 'kvcomp-fixed fused (fixed-length codes)', \
     'attention.dat' index 2 using 1:($6*1000) with linespoints lw 2 lc rgb '#2ca02c' pt 11 dt 2 title 'torch matmul-softmax-matmul', \
     'attention.dat' index 2 using 1:($7*1000) with linespoints lw 2 lc rgb '#9467bd' pt 13 dt 2 title 'torch SDPA', \
     'attention.dat' index 2 using 1:($8*1000) with linespoints lw 2 lc rgb '#8c564b' pt 4 dt 3 title 'llama.cpp flash attention, f16', \
     'attention.dat' index 2 using 1:($9*1000) with linespoints lw 2 lc rgb '#e377c2' pt 8 dt 3 title 'llama.cpp flash attention, q8_0'
set title "8 KV heads, batch 8" noenhanced
plot 'attention.dat' index 3 using 1:($2*1000) with linespoints lw 2 lc rgb '#1f77b4' pt 7 title 'fp16 cache, cuBLAS', \
     'attention.dat' index 3 using 1:($3*1000) with linespoints lw 2 lc rgb '#17becf' pt 6 title 'fp16 cache, flash decoding', \
     'attention.dat' index 3 using 1:($4*1000) with linespoints lw 2 lc rgb '#d62728' pt 5 title 'kvcomp fused', \
     'attention.dat' index 3 using 1:($5*1000) with linespoints lw 2 lc rgb '#bcbd22' pt 15 title 'kvcomp-fixed fused (fixed-length codes)', \
     'attention.dat' index 3 using 1:($6*1000) with linespoints lw 2 lc rgb '#2ca02c' pt 11 dt 2 title 'torch matmul-softmax-matmul', \
     'attention.dat' index 3 using 1:($7*1000) with linespoints lw 2 lc rgb '#9467bd' pt 13 dt 2 title 'torch SDPA', \
     'attention.dat' index 3 using 1:($8*1000) with linespoints lw 2 lc rgb '#8c564b' pt 4 dt 3 title 'llama.cpp flash attention, f16', \
     'attention.dat' index 3 using 1:($9*1000) with linespoints lw 2 lc rgb '#e377c2' pt 8 dt 3 title 'llama.cpp flash attention, q8_0'
unset multiplot
