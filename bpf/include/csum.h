/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Internet checksums: RFC 1624 incremental updates for NAT (nat.h) and full
 * computation for packets Strait builds itself (RST, ICMP). Words are summed
 * as loaded from the packet, so byte order never needs converting. */
#ifndef STRAIT_CSUM_H
#define STRAIT_CSUM_H

#include <linux/types.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>

static __always_inline __u16 csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* The folded, inverted one's-complement sum of any 64-bit sum of 16- and
 * 32-bit terms (2^32 and 2^16 are both 1 modulo 0xffff). Zero only when
 * the sum is zero, so grouping terms differently gives the same result. */
static __always_inline __u16 csum_fold64(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* Sum of n 16-bit words starting at p (not folded, not inverted). n must
 * be a constant so the loop unrolls. */
static __always_inline __u32 csum_words(const __u16 *p, const int n)
{
	__u32 s = 0;

#pragma unroll
	for (int i = 0; i < n; i++)
		s += p[i];
	return s;
}

static __always_inline __u32 csum_pseudo(__be32 saddr, __be32 daddr, __u8 proto, __u16 len)
{
	return (saddr & 0xffff) + (saddr >> 16) + (daddr & 0xffff) + (daddr >> 16) +
	       bpf_htons(proto) + bpf_htons(len);
}

/* A fresh IPv4 header without options, checksum computed. */
static __always_inline void ip_fill(struct iphdr *ip, __be32 saddr, __be32 daddr,
				    __u8 proto, __u16 tot_len)
{
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0;
	ip->tot_len = bpf_htons(tot_len);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = proto;
	ip->saddr = saddr;
	ip->daddr = daddr;
	ip->check = 0;
	ip->check = csum_fold(csum_words((__u16 *)ip, 10));
}

#endif
