// Package nodeinfo tells the agent which of the node's network devices
// Strait's XDP program should attach to, how (native or generic XDP), and how
// the node's CPUs, NUMA nodes and hypervisor treat those devices.
//
// It ties together the subpackages:
//
//   - hostfs: the sysfs and procfs roots everything reads (a test points
//     them at a directory tree);
//   - netdev: device discovery (driver, PCI address, SR-IOV PF/VF,
//     switchdev representors, bonds, VLANs, NUMA node, queues, MTU, LRO,
//     addresses and default routes);
//   - choice: which devices to use, each decision with an explanation;
//   - xdpplan: native or generic XDP per device, with warnings and errors
//     phrased for people, and a translation of kernel attach errors;
//   - cpuinfo: NUMA topology, the CPUs serving each device's queue IRQs,
//     cross-node warnings and an optional CPU pinning plan;
//   - steal: hypervisor steal time from /proc/stat and a threshold monitor.
//
// Inspector runs discovery, choice, planning and the IRQ report once and
// returns a Status (JSON-serialisable, for the agent's status endpoint and
// log). Watch re-runs it whenever netlink reports a link, address or route
// change and hands each changed Status to a callback. Metrics exports a
// Status to Prometheus.
//
// Nothing here attaches programs or changes the system, except
// cpuinfo.ApplyPinning, which the agent calls only when pinning is enabled
// (it is off by default).
package nodeinfo
