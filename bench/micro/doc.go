// Package micro measures the per-packet cost of datapath paths under
// BPF_PROG_TEST_RUN, each next to a no-op XDP program measured in the same
// run and the same way, so results are ratios that survive a change of
// machine. Two methods: "repeat" (one test run of N repetitions; only valid
// for paths whose output packet takes the same path again) and "single"
// (N test runs of one repetition each, timed by the kernel, next to the
// no-op timed the same way; for paths that change state, such as new flows).
package micro
