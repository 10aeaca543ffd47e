/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Answers for a frontend with no usable backend, built in place and sent
 * back with XDP_TX: a TCP RST (RFC 9293 section 3.10.7.1) or an ICMP port
 * unreachable quoting the datagram's IP header and first 8 bytes. Packets
 * with IP options are dropped instead (counted). */
#ifndef STRAIT_REJECT_H
#define STRAIT_REJECT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "csum.h"
#include "parse.h"

#define ICMP_DEST_UNREACH	3
#define ICMP_PORT_UNREACH	3

struct icmp4hdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u32 unused;
};

static __always_inline void swap_macs(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

/* Returns XDP_TX with the frame rewritten, or XDP_DROP. */
static __always_inline int reject_tcp(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3 = p->l3_off;

	if (p->tcp_flags & TH_RST)
		return XDP_DROP;
	if (l3 != 14 && l3 != 18)
		return XDP_DROP;
	struct iphdr *ip = data + l3;
	struct tcphdr *th = (void *)(ip + 1);
	if ((void *)(th + 1) > data_end || ip->ihl != 5)
		return XDP_DROP;

	__u32 seglen = bpf_ntohs(ip->tot_len) - 20 - th->doff * 4;
	__be32 saddr = ip->saddr, daddr = ip->daddr;
	__be16 sport = th->source, dport = th->dest;
	__be32 seq = th->seq, ack_seq = th->ack_seq;
	__u8 flags = p->tcp_flags;

	if (flags & TH_SYN)
		seglen++;
	if (flags & TH_FIN)
		seglen++;

	swap_macs(data);
	ip_fill(ip, daddr, saddr, PROTO_TCP, 40);

	__builtin_memset(th, 0, sizeof(*th));
	th->source = dport;
	th->dest = sport;
	th->doff = 5;
	th->rst = 1;
	if (flags & TH_ACK) {
		th->seq = ack_seq;
	} else {
		th->ack = 1;
		th->ack_seq = bpf_htonl(bpf_ntohl(seq) + seglen);
	}
	th->check = csum_fold(csum_pseudo(daddr, saddr, PROTO_TCP, 20) +
			      csum_words((__u16 *)th, 10));

	int delta = (int)(l3 + 40) - (int)(data_end - data);
	if (delta && bpf_xdp_adjust_tail(ctx, delta))
		return XDP_DROP;
	return XDP_TX;
}

#define ICMP_GROW (sizeof(struct iphdr) + sizeof(struct icmp4hdr))

static __always_inline int reject_udp(struct xdp_md *ctx, struct pkt *p)
{
	__u32 l3 = p->l3_off;

	if (p->ip->ihl != 5)
		return XDP_DROP;
	if (bpf_xdp_adjust_head(ctx, -(int)ICMP_GROW))
		return XDP_DROP;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/* New layout: [eth][ip 20][icmp 8][original ip 20][original udp 8]. */
	if (l3 == 18) {
		if (data + ICMP_GROW + 18 + 28 > data_end)
			return XDP_DROP;
		__builtin_memcpy(data, data + ICMP_GROW, 18);
	} else if (l3 == 14) {
		if (data + ICMP_GROW + 14 + 28 > data_end)
			return XDP_DROP;
		__builtin_memcpy(data, data + ICMP_GROW, 14);
	} else {
		return XDP_DROP;
	}

	struct ethhdr *eth = data;
	struct iphdr *ip = data + l3;
	struct icmp4hdr *icmp = (void *)(ip + 1);
	struct iphdr *orig = (void *)(icmp + 1);
	if ((void *)orig + 28 > data_end)
		return XDP_DROP;

	swap_macs(eth);
	ip_fill(ip, orig->daddr, orig->saddr, PROTO_ICMP, 56);
	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_PORT_UNREACH;
	icmp->checksum = 0;
	icmp->unused = 0;
	icmp->checksum = csum_fold(csum_words((__u16 *)icmp, 18));

	int delta = (int)(l3 + 56) - (int)(data_end - data);
	if (delta && bpf_xdp_adjust_tail(ctx, delta))
		return XDP_DROP;
	return XDP_TX;
}

#endif
