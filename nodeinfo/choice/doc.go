// Package choice decides, as a pure function of discovered devices and
// configuration, which devices Strait's XDP program attaches to.
//
// By default it uses the devices that carry the node's addresses or a
// default route, following VLANs and macvlans to their lower device,
// bridges to their ports and bond slaves to their bond. A configured list
// of names or glob patterns replaces that. SR-IOV VFs (normally handed to
// workloads) and switchdev representors are skipped unless they carry a
// node address or are named exactly.
//
// Every device gets a Decision whose Reason is written for the agent's log
// and status.
package choice
