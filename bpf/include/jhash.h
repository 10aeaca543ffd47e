/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Bob Jenkins' lookup3 final mix, as the kernel's jhash_3words. The Go
 * package dataplane/flowhash implements the same function; the differential
 * test checks they agree. */
#ifndef STRAIT_JHASH_H
#define STRAIT_JHASH_H

#include <linux/types.h>

#define JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 rol32(__u32 w, __u32 s)
{
	return (w << s) | (w >> (32 - s));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	initval += JHASH_INITVAL + (3 << 2);
	a += initval;
	b += initval;
	c += initval;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

/* The flow hash leaves out the destination address: a NodePort flow hashes
 * the same on every node, so nodes with the same backend set pick the same
 * backend. Arguments are raw values as loaded from the packet. */
static __always_inline __u32 flow_hash(__be32 saddr, __be16 sport, __be16 dport, __u8 proto)
{
	return jhash_3words(saddr, ((__u32)sport << 16) | dport, proto, FLOW_HASH_SEED);
}

/* Socket-level balancing hashes the socket cookie (unique per socket, never
 * reused while the node runs) and the frontend port. */
static __always_inline __u32 sock_hash(__u64 cookie, __be16 dport)
{
	return jhash_3words((__u32)cookie, (__u32)(cookie >> 32), dport, FLOW_HASH_SEED);
}

#endif
