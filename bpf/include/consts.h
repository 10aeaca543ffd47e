/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Compile-time constants shared by every Strait program. Map sizes here are
 * defaults: the Go loader overrides max_entries before loading. */
#ifndef STRAIT_CONSTS_H
#define STRAIT_CONSTS_H

#define ETH_P_IP_BE	0x0008	/* htons(ETH_P_IP) on little endian */
#define ETH_P_8021Q_BE	0x0081	/* htons(ETH_P_8021Q) */
#define ETH_P_8021AD_BE	0xA888	/* htons(ETH_P_8021AD) */
#define IP_MF_OFFSET_BE	0xFF3F	/* htons(IP_MF | IP_OFFSET) */

/* tcx return codes (linux/bpf.h of 6.6+; Debian 12's headers are 6.1). */
#ifndef TCX_NEXT
#define TCX_NEXT	-1
#define TCX_PASS	0
#define TCX_DROP	2
#endif

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define PROTO_TCP	6
#define PROTO_UDP	17
#define PROTO_ICMP	1

#define TH_FIN	0x01
#define TH_SYN	0x02
#define TH_RST	0x04
#define TH_ACK	0x10

#define MAX_FRONTENDS	131072
#define MAX_SERVICES	65536
#define MAX_BACKENDS	262144
#define MAX_CT		1048576
#define MAX_AFFINITY	262144
#define MAX_SRC_RANGES	65536
#define MAX_IFACES	64
#define MAX_SOCK_REV	1048576

/* Hash seed for the flow hash; Go's dataplane/flowhash uses the same. */
#define FLOW_HASH_SEED	0x5737a11c

/* service_val.flags */
#define SVC_F_DROP_EMPTY	(1 << 0) /* no backend: drop, not reject */
#define SVC_F_AFFINITY		(1 << 1) /* ClientIP session affinity */
#define SVC_F_SRC_RANGES	(1 << 2) /* loadBalancerSourceRanges apply */
#define SVC_F_ACTIVE		(1 << 3) /* set on every programmed service */

/* frontend_val.flags */
#define FE_F_EXTERNAL		(1 << 0) /* NodePort, LoadBalancer, externalIP */
#define FE_F_LOADBALANCER	(1 << 1) /* source ranges apply here */

/* backend_val.flags */
#define BE_F_LOCAL		(1 << 0) /* runs on this node: DNAT only */

/* ct_val.flags */
#define CT_F_REWRITE_SRC	(1 << 0)
#define CT_F_REWRITE_DST	(1 << 1)
#define CT_F_REVERSE		(1 << 2) /* a reply-direction entry */
#define CT_F_LOCAL		(1 << 3) /* forward entry to a local backend */
#define CT_F_EGRESS		(1 << 4) /* reply entry handled at tc egress */
#define CT_F_EW			(1 << 5) /* east-west: translated by tc (pod devices, uplink egress) */
#define CT_F_HAIRPIN		(1 << 6) /* client is its own backend: SNAT to the hairpin address, bounce */

/* ct_val.state */
#define CT_STATE_NEW		0
#define CT_STATE_ESTABLISHED	1
#define CT_STATE_CLOSING	2

/* Verdicts counted per service (stats map index = svc_id * SVC_STAT_MAX + verdict). */
#define SVC_STAT_LOCAL		0 /* DNAT to a local backend */
#define SVC_STAT_REMOTE		1 /* DNAT+SNAT to a remote backend */
#define SVC_STAT_REJECT		2 /* no backend: RST / ICMP unreachable */
#define SVC_STAT_DROP		3 /* no backend (Local policy) or source range */
#define SVC_STAT_MAX		4

/* Global counters (per CPU). Keep in sync with dataplane.GlobalCounter. */
#define G_PASS_NOT_IP		0
#define G_PASS_FRAGMENT		1
#define G_PASS_MALFORMED	2
#define G_PASS_NO_FRONTEND	3
#define G_REVERSE_NAT		4
#define G_CT_HIT		5
#define G_CT_NEW		6
#define G_FIB_NO_NEIGH		7
#define G_FIB_FAIL		8
#define G_SNAT_EXHAUSTED	9
#define G_CT_INSERT_FAIL	10
#define G_NO_IFCONFIG		11
#define G_REJECT_UNSUPPORTED	12
#define G_TC_REVERSE_NAT	13
#define G_SOCK_XLATE		14 /* connect/sendmsg steered to a backend */
#define G_EW_NEW		15 /* new east-west flow at tc */
#define G_EW_HIT		16 /* east-west conntrack hit at tc */
#define G_EW_REJECT		17 /* RST / ICMP answered at tc */
#define G_SOCK_REVNAT		18 /* recvmsg/getpeername answered with the frontend */
#define G_MAX			32

#define SNAT_PORT_TRIES		8

#endif
