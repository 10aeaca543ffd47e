// Command strait-nodeinfo prints what Strait's agent would decide about this
// node's network devices: discovery, device choice with explanations, XDP
// attach plans, IRQ/NUMA placement, an optional CPU pinning plan and steal
// time. It only reads (sysfs, procfs, netlink, the ethtool ioctl) and
// changes nothing.
//
//	strait-nodeinfo [-devices ens*,bond0] [-node-address 10.0.0.11] [-native-only] [-pin] [-steal 2s] [-json]
package main
