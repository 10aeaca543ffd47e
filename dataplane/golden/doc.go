// Package golden holds the datapath's golden packet tables and the
// differential test: real programs under BPF_PROG_TEST_RUN, in a private
// network namespace with known routes and neighbours, fed frames whose
// expected verdict and exact output bytes (checksums computed from scratch
// by internal/pkt) are written in the table. It has no code of its own
// beyond the fixture that builds the namespace.
package golden
