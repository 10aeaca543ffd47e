// Package cpuinfo relates chosen devices to the node's CPUs and NUMA nodes:
// the NUMA topology (<sys>/devices/system/node/node*/cpulist), the IRQs of
// each device's queues (its PCI function's msi_irqs and the /proc/interrupts
// lines naming the device or its PCI address) and the CPUs serving them
// (/proc/irq/N/effective_affinity_list, else smp_affinity_list), with a
// warning when a device's queues are served by CPUs of another NUMA node.
//
// PlanPinning proposes, as a pure function, CPUs for the agent's own
// threads: CPUs of one NUMA node that serve no NIC queue. ApplyPinning
// applies such a plan with sched_setaffinity; the agent leaves it off by
// default.
package cpuinfo
