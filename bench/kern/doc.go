// Package kern holds the benchmark harness's own XDP programs, compiled
// from bench/bpf/bench.c: the live-frames packet generator (bench_gen),
// the counting sink (bench_sink) and the micro-benchmarks' reference
// program (bench_calib: parse, one hash lookup, XDP_TX).
package kern

//go:generate go tool bpf2go -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -type gen_cfg -type sink_cfg -type calib_key Bench ../bpf/bench.c
