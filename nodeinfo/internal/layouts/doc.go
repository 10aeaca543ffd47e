// Package layouts builds sysfs/procfs trees of real node layouts in a test's
// temporary directory (files and relative symlinks created at run time, so
// git never has to keep them), together with the netlink and ethtool facts
// that go with them.
//
// Tree is the builder; TwoSocketSRIOV, BondedNICs, VLANOnPF and VirtioVM
// are the layouts the tests use.
package layouts
