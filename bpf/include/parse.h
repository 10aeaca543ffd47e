/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Header parsing with explicit bounds checks. Ethernet with at most one
 * 802.1Q/802.1ad tag, IPv4 without fragments, TCP or UDP. Anything else is
 * reported so the caller can pass it to the stack untouched. */
#ifndef STRAIT_PARSE_H
#define STRAIT_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "structs.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "struct pkt's proto_pad assumes little endian"
#endif

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct pkt {
	struct ethhdr *eth;
	struct iphdr *ip;
	void *l4;
	__u32 l3_off;		/* 14, or 18 with a VLAN tag */
	__u32 l4_off;
	__u32 len;		/* frame length */
	/* The 5-tuple, laid out as its conntrack key (padding zero), so the
	 * lookup needs no copy. NAT updates it: after a rewrite it is the
	 * packet's new tuple. */
	union {
		struct ct_key key;
		struct {
			__be32 saddr;
			__be32 daddr;
			__be16 sport;
			__be16 dport;
			union {
				__u32 proto_pad;	/* proto, padding zero: one store */
				struct {
					__u8 proto;
					__u8 key_pad[3];
				};
			};
		};
	};
	__u8 tcp_flags;
	__u8 vlan;
	__u16 pad;
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IP,
	PARSE_FRAGMENT,
	PARSE_MALFORMED,
	PARSE_OTHER_L4,
};

/* frame_len is the whole frame's length: data_end - data for XDP, skb->len
 * for tc, where only the headers need to be linear (the payload may sit in
 * paged fragments). */
static __always_inline int parse_packet(void *data, void *data_end, __u32 frame_len,
					struct pkt *p)
{
	struct ethhdr *eth = data;
	__u32 l3_off = sizeof(*eth);
	__u8 vlan = 0, l4proto, vihl;
	__be16 proto;

	if (unlikely((void *)(eth + 1) > data_end))
		return PARSE_MALFORMED;
	proto = eth->h_proto;
	if (unlikely(proto == ETH_P_8021Q_BE || proto == ETH_P_8021AD_BE)) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end)
			return PARSE_MALFORMED;
		proto = vh->proto;
		l3_off += sizeof(*vh);
		vlan = 1;
	}
	p->vlan = vlan;
	if (unlikely(proto != ETH_P_IP_BE))
		return PARSE_NOT_IP;

	struct iphdr *ip = data + l3_off;
	if (unlikely((void *)(ip + 1) > data_end))
		return PARSE_MALFORMED;
	/* Version 4 and a header length of at least 5 words: 0x45..0x4f. */
	vihl = *(__u8 *)ip;
	if (unlikely((__u8)(vihl - 0x45) > 0x0a))
		return PARSE_MALFORMED;
	__u32 ihl = (vihl & 0x0f) * 4;
	__u32 tot = bpf_ntohs(ip->tot_len);
	/* frame_len covers the IP header (checked above for XDP; skb->len
	 * is at least the linear part for tc), so l3_off + tot cannot wrap. */
	if (unlikely(tot < ihl || l3_off + tot > frame_len))
		return PARSE_MALFORMED;
	if (unlikely(ip->frag_off & IP_MF_OFFSET_BE))
		return PARSE_FRAGMENT;

	void *l4 = (void *)ip + ihl;
	l4proto = ip->protocol;
	p->eth = eth;
	p->ip = ip;
	p->l4 = l4;
	p->l3_off = l3_off;
	p->l4_off = l3_off + ihl;
	p->len = frame_len;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto_pad = l4proto;
	p->tcp_flags = 0;

	if (l4proto == PROTO_TCP) {
		struct tcphdr *th = l4;

		if (unlikely((void *)(th + 1) > data_end || th->doff < 5 ||
			     ihl + th->doff * 4 > tot))
			return PARSE_MALFORMED;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		return PARSE_OK;
	}
	if (l4proto == PROTO_UDP) {
		struct udphdr *uh = l4;

		if (unlikely((void *)(uh + 1) > data_end || ihl + sizeof(*uh) > tot))
			return PARSE_MALFORMED;
		p->sport = uh->source;
		p->dport = uh->dest;
		return PARSE_OK;
	}
	return PARSE_OTHER_L4;
}

#endif
