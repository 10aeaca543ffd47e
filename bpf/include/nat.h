/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Address and port rewriting with incremental checksum updates. The XDP
 * variant writes packet memory directly (frames from the wire carry full
 * checksums); the skb variant uses the kernel's csum helpers, which also
 * handle CHECKSUM_PARTIAL packets from local sockets. */
#ifndef STRAIT_NAT_H
#define STRAIT_NAT_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "csum.h"
#include "parse.h"

/* Returns a pointer to the L4 checksum field, or NULL when the packet has
 * none to update (UDP with checksum 0). */
static __always_inline __u16 *l4_csum(struct pkt *p, void *data_end)
{
	if (p->proto == PROTO_TCP) {
		struct tcphdr *th = p->l4;

		if ((void *)(th + 1) > data_end)
			return 0;
		return &th->check;
	}
	struct udphdr *uh = p->l4;

	if ((void *)(uh + 1) > data_end || uh->check == 0)
		return 0;
	return &uh->check;
}

/* Rewrite a parsed frame's destination (CT_F_REWRITE_DST: to v->daddr,
 * v->dport) and/or source (CT_F_REWRITE_SRC: to v->saddr, v->sport), and
 * update each checksum once with the sum of the differences (RFC 1624
 * eqn. 3 over every changed word). One's-complement sums of non-negative
 * terms fold to the same representative whatever the grouping, so the
 * result is bit for bit that of one update per field. p's addresses and
 * ports follow. */
static __always_inline void xdp_nat(struct pkt *p, void *data_end, const struct ct_val *v)
{
	struct iphdr *ip = p->ip;
	__be16 *ports = p->l4;
	__u8 flags = v->flags;
	__u64 ipd = 0, portd = 0;
	__u16 *l4sum;

	if (unlikely((void *)(ports + 2) > data_end))
		return;
	if (flags & CT_F_REWRITE_DST) {
		__be32 addr = v->daddr;
		__be16 port = v->dport;

		ipd += (__u32)~p->daddr + (__u64)addr;
		portd += (__u16)~p->dport + (__u32)port;
		ip->daddr = addr;
		ports[1] = port;
		p->daddr = addr;
		p->dport = port;
	}
	if (flags & CT_F_REWRITE_SRC) {
		__be32 addr = v->saddr;
		__be16 port = v->sport;

		ipd += (__u32)~p->saddr + (__u64)addr;
		portd += (__u16)~p->sport + (__u32)port;
		ip->saddr = addr;
		ports[0] = port;
		p->saddr = addr;
		p->sport = port;
	}
	ip->check = csum_fold64((__u16)~ip->check + ipd);
	l4sum = l4_csum(p, data_end);
	if (likely(l4sum != 0)) {
		__u16 sum = csum_fold64((__u16)~*l4sum + ipd + portd);

		if (unlikely(p->proto == PROTO_UDP && sum == 0))
			sum = 0xffff;
		*l4sum = sum;
	}
}

static __always_inline int skb_rewrite(struct __sk_buff *skb, struct pkt *p, int src,
				       __be32 addr, __be16 port)
{
	__u32 ip_off = p->l3_off;
	__u32 addr_off = ip_off + (src ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr));
	__u32 port_off = p->l4_off + (src ? 0 : 2);
	__u32 csum_off = p->l4_off + (p->proto == PROTO_TCP ? offsetof(struct tcphdr, check)
							    : offsetof(struct udphdr, check));
	__u64 l4flags = p->proto == PROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__be32 old_addr = src ? p->saddr : p->daddr;
	__be16 old_port = src ? p->sport : p->dport;

	if (bpf_l4_csum_replace(skb, csum_off, old_addr, addr, l4flags | BPF_F_PSEUDO_HDR | 4) ||
	    bpf_l4_csum_replace(skb, csum_off, old_port, port, l4flags | 2) ||
	    bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check), old_addr, addr, 4) ||
	    bpf_skb_store_bytes(skb, addr_off, &addr, 4, 0) ||
	    bpf_skb_store_bytes(skb, port_off, &port, 2, 0))
		return -1;
	if (src) {
		p->saddr = addr;
		p->sport = port;
	} else {
		p->daddr = addr;
		p->dport = port;
	}
	return 0;
}

#endif
