/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Sending a rewritten frame on: a FIB lookup in the node's namespace gives
 * the next hop's MAC and the egress device; same device means XDP_TX,
 * another means XDP_REDIRECT. */
#ifndef STRAIT_FWD_H
#define STRAIT_FWD_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "maps.h"
#include "parse.h"

#ifndef AF_INET
#define AF_INET 2
#endif

static __always_inline int fib_forward(struct xdp_md *ctx, struct pkt *p)
{
	struct bpf_fib_lookup fib = {};
	struct iphdr *ip = p->ip;
	void *data_end = (void *)(long)ctx->data_end;
	int rc;

	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = p->proto;
	fib.sport = p->sport;
	fib.dport = p->dport;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = p->saddr;
	fib.ipv4_dst = p->daddr;
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* The agent keeps managed neighbour entries for backend next
		 * hops; a miss here is the first packet before resolution.
		 * Drop it: the client retransmits. */
		count_global(G_FIB_NO_NEIGH);
		return XDP_DROP;
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		count_global(G_FIB_FAIL);
		return XDP_DROP;
	}
	if (ip->ttl <= 1)
		return XDP_PASS;	/* let the stack send time exceeded */
	/* TTL decrement: the checksum's high byte carries TTL. */
	__u32 check = ip->check;
	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xFFFF));
	ip->ttl--;

	__builtin_memcpy(p->eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, fib.smac, ETH_ALEN);
	if (fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib.ifindex, 0);
}

#endif
