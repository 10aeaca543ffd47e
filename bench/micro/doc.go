// Package micro measures the per-packet cost of datapath paths under
// BPF_PROG_TEST_RUN, each next to a no-op XDP program and (with a
// Reference) the reference program bench_calib (parse, one hash lookup,
// XDP_TX), so results are ratios that survive a change of machine. Two
// methods: "repeat" (one test run of N repetitions; only valid for paths
// whose output packet takes the same path again; the kernel's mean, no-op
// included) and "single" (N test runs of one repetition each, timed by the
// kernel, next to the no-op timed the same way; for paths that change
// state, such as new flows). NetRatioRef takes the no-op off both sides.
//
// On a shared host the machine's speed drifts by ±20% within seconds, so
// the path, the no-op and the references are measured in interleaved
// blocks (Options.Blocks) and each figure is the median over the blocks;
// compare ratios, not nanoseconds, across runs.
//
// The reference's table is a preallocated hash of 65,536 entries with
// conntrack's 16-byte key; with a pre-filled conntrack, a second reference
// whose table is as large as conntrack and as full is measured too, so a
// cost of table size (cache and TLB misses a small table does not have)
// shows in both.
package micro
