// Package xdpplan plans, as a pure function of discovered devices, how
// Strait's XDP program attaches to each chosen device: native XDP where the
// driver implements it, generic XDP otherwise, with warnings and errors
// phrased for people (the MTU a driver accepts for single-buffer native XDP,
// LRO and hardware GRO, bonds and their slaves, representors, switchdev
// uplinks, queue counts) instead of errnos.
//
// Drivers lists what Strait knows about drivers; an unknown driver is
// planned as "try native, fall back to generic". ExplainAttachError turns
// a kernel attach error into a message naming the device, driver and the
// likely reason.
package xdpplan
