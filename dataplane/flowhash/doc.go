// Package flowhash is the Go twin of bpf/include/jhash.h: the kernel's
// jhash_3words and the flow hash the datapath indexes Maglev rings with.
// Userspace uses it to predict the datapath's choices (differential tests,
// the CLI's "which backend would this flow get").
package flowhash
