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
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 vlan;
	__u8 pad;
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
	__be16 proto;

	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	proto = eth->h_proto;
	p->vlan = 0;
	if (proto == ETH_P_8021Q_BE || proto == ETH_P_8021AD_BE) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end)
			return PARSE_MALFORMED;
		proto = vh->proto;
		l3_off += sizeof(*vh);
		p->vlan = 1;
	}
	if (proto != ETH_P_IP_BE)
		return PARSE_NOT_IP;

	struct iphdr *ip = data + l3_off;
	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	__u32 ihl = ip->ihl * 4;
	__u32 tot = bpf_ntohs(ip->tot_len);
	if (tot < ihl || tot > frame_len - l3_off)
		return PARSE_MALFORMED;
	if (ip->frag_off & IP_MF_OFFSET_BE)
		return PARSE_FRAGMENT;

	void *l4 = (void *)ip + ihl;
	p->eth = eth;
	p->ip = ip;
	p->l4 = l4;
	p->l3_off = l3_off;
	p->l4_off = l3_off + ihl;
	p->len = frame_len;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto = ip->protocol;
	p->tcp_flags = 0;

	if (ip->protocol == PROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || th->doff < 5 ||
		    ihl + th->doff * 4 > tot)
			return PARSE_MALFORMED;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		return PARSE_OK;
	}
	if (ip->protocol == PROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end || ihl + sizeof(*uh) > tot)
			return PARSE_MALFORMED;
		p->sport = uh->source;
		p->dport = uh->dest;
		return PARSE_OK;
	}
	return PARSE_OTHER_L4;
}

#endif
