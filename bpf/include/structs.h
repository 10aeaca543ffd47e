/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map keys and values. These are the single source of truth: bpf2go
 * generates the Go types from them (-type). Addresses and ports are in
 * network byte order (__be32/__be16); everything else is host order. */
#ifndef STRAIT_STRUCTS_H
#define STRAIT_STRUCTS_H

#include <linux/types.h>

struct frontend_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct frontend_val {
	__u32 svc_id;
	__u32 flags;
};

struct service_val {
	__u32 ring_size;	/* slots in this service's Maglev ring; 0 = no backend */
	__u32 flags;		/* SVC_F_* */
	__u32 affinity_timeout;	/* seconds */
	__u32 backend_count;
};

struct backend_val {
	__be32 addr;
	__be16 port;
	__u8 flags;		/* BE_F_* */
	__u8 pad;
};

/* Connection tracking: a key is a packet's 5-tuple as seen on the wire. */
struct ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* What to rewrite a matching packet to. Forward entries (client ->
 * frontend) rewrite the destination to the backend and, for remote
 * backends, the source to the node's SNAT address and port. Reverse entries
 * (the reply as it arrives) rewrite the source back to the frontend and, for
 * SNATed flows, the destination back to the client. */
struct ct_val {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u32 svc_id;
	__u32 backend_id;
	__u8 flags;		/* CT_F_* */
	__u8 state;		/* CT_STATE_* */
	__u16 pad;
	__u64 last_seen;	/* bpf_ktime_get_coarse_ns() */
};

struct affinity_key {
	__be32 client;
	__u32 svc_id;
};

struct affinity_val {
	__u32 backend_id;
	__u32 pad;
	__u64 last_seen;
};

/* Membership of a backend in a service, checked before an affinity
 * entry is honoured. */
struct svc_backend_key {
	__u32 svc_id;
	__u32 backend_id;
};

/* Source ranges: LPM key (prefixlen counts svc_id's 32 bits plus the
 * address bits). */
struct src_range_key {
	__u32 prefixlen;
	__be32 svc_id;		/* big endian so it is the prefix's leading bits */
	__be32 addr;
};

/* Per-device settings, keyed by ifindex. */
struct iface_val {
	__be32 snat_addr;	/* source address for SNAT out of this device */
	__u32 flags;
};

struct lb_config {
	__u32 snat_port_min;
	__u32 snat_port_max;
	__u32 ct_tcp_syn;	/* timeouts, seconds */
	__u32 ct_tcp_established;
	__u32 ct_tcp_closing;
	__u32 ct_udp;
	__be32 hairpin_addr;	/* source of a tc-path hairpin flow (pod -> own service) */
	__u32 pad;
};

/* Socket-level balancing: what a socket (by cookie) was steered to, so
 * recvmsg and getpeername can answer with the frontend. */
struct sock_rev_key {
	__u64 cookie;
	__be32 addr;		/* backend */
	__be16 port;
	__u16 pad;
};

struct sock_rev_val {
	__be32 addr;		/* frontend */
	__be16 port;
	__u16 pad;
	__u32 svc_id;
	__u32 pad2;
};

/* Session affinity at socket level: the client is its network namespace
 * (a socket's source address is not known at connect time). */
struct sock_affinity_key {
	__u64 netns_cookie;
	__u32 svc_id;
	__u32 pad;
};

struct stat_val {
	__u64 packets;
	__u64 bytes;
};

#endif
