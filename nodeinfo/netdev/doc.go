// Package netdev discovers the node's network devices as pure Go over a
// sysfs and procfs root (hostfs.FS): for each device under <sys>/class/net
// its driver, PCI address, SR-IOV role (PF with its VFs, VF with its PF),
// switchdev representor or uplink (phys_switch_id, phys_port_name such as
// "pf0vf3"), bond (bonding/slaves, mode, master link), bridge ports, VLAN
// (/proc/net/vlan/config and lower_* links), NUMA node, RX and TX queue
// counts, MTU and operstate.
//
// What sysfs does not hold comes from injectable sources: NetSource for
// addresses, default routes and link kinds (NetlinkSource on a real system,
// StaticNet in tests) and Ethtool for driver names of virtual devices and
// offload features such as LRO (EthtoolIoctl uses the SIOCETHTOOL ioctl:
// ETHTOOL_GDRVINFO, ETHTOOL_GSSET_INFO, ETHTOOL_GSTRINGS and
// ETHTOOL_GFEATURES; StaticEthtool in tests).
package netdev
