// Package testrun runs Strait's programs under BPF_PROG_TEST_RUN inside a
// private network namespace, so FIB lookups, neighbours and ifindexes are
// the test's own. Golden packet tests, the differential test and the
// micro-benchmarks use it.
package testrun
