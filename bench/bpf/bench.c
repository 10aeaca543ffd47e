// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The benchmark harness's own XDP programs:
 *
 *   bench_gen    the packet generator, run by BPF_PROG_RUN in live-frames
 *                mode: rewrites each frame's flow (source address and port,
 *                destination address) from a per-CPU sequence, fixes the
 *                checksums incrementally and returns XDP_TX, so the frame
 *                leaves by the device it was injected on.
 *   bench_sink   attached to the receiving device: counts IPv4 frames (and
 *                those whose destination is in a configured prefix) per CPU
 *                and drops them; anything else (ARP) passes.
 *   bench_calib  the reference program for micro-benchmarks: parse
 *                Ethernet/IPv4/TCP-or-UDP, one hash lookup on the 5-tuple,
 *                swap MACs, XDP_TX (XDP_PASS on a miss).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct gen_cfg {
	__u32 flows;		/* distinct flows per CPU sequence; 0: never repeat */
	__u32 services;		/* destinations: dst_base + flow % services */
	__u32 dst_base;		/* host order */
	__u32 src_base;		/* host order */
	__u32 sport_base;	/* first source port */
	__u32 sport_span;	/* source ports per source address */
	/* The template's headers (Ethernet, IPv4, then TCP or UDP), written
	 * over every frame first: in live-frames mode a page keeps whatever
	 * the receiver did to it (a forwarder rewrites MACs and TTL) when it
	 * is recycled, so nothing of the previous use may survive. */
	__u8 hdr[56];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_cfg);
} gen_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gen_seq SEC(".maps");

struct sink_cfg {
	__u32 match_net;	/* network order */
	__u32 match_mask;	/* network order */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sink_cfg);
} sink_config SEC(".maps");

/* 0: IPv4 frames, 1: of which matched, 2: bytes of matched. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} sink_count SEC(".maps");

struct calib_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct calib_key);
	__type(value, __u64);
} calib_map SEC(".maps");

/* RFC 1624 incremental update of a one's-complement checksum; all values
 * as loaded from the packet (the sum is byte-order independent). */
static __always_inline __u16 csum_upd32(__u16 check, __u32 from, __u32 to)
{
	__u32 s = (__u16)~check;

	s += (~from & 0xffff) + ((~from >> 16) & 0xffff);
	s += (to & 0xffff) + (to >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

static __always_inline __u16 csum_upd16(__u16 check, __u16 from, __u16 to)
{
	__u32 s = (__u16)~check;

	s += (__u16)~from;
	s += to;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 zero = 0;
	struct gen_cfg *cfg;
	__u64 *seq, n, f;
	__u16 *check, *sportp;
	__u32 src, dst, svcs;
	__u16 sport;

	if (data + 42 > data_end)
		return XDP_ABORTED;
	cfg = bpf_map_lookup_elem(&gen_config, &zero);
	seq = bpf_map_lookup_elem(&gen_seq, &zero);
	if (!cfg || !seq)
		return XDP_ABORTED;
	__builtin_memcpy(data, cfg->hdr, 42);
	if (ip->protocol == IPPROTO_TCP) {
		if (data + 54 > data_end)
			return XDP_ABORTED;
		__builtin_memcpy(data + 42, cfg->hdr + 42, 12);
	}
	n = (*seq)++;
	/* Each CPU walks the flows from its own offset. */
	n += (__u64)bpf_get_smp_processor_id() * 1000003;
	f = cfg->flows ? n % cfg->flows : n;
	svcs = cfg->services ? cfg->services : 1;
	dst = bpf_htonl(cfg->dst_base + (__u32)(f % svcs));
	if (cfg->sport_span) {
		sport = bpf_htons(cfg->sport_base + (__u16)(f % cfg->sport_span));
		src = bpf_htonl(cfg->src_base + (__u32)(f / cfg->sport_span));
	} else {
		sport = bpf_htons(cfg->sport_base);
		src = bpf_htonl(cfg->src_base);
	}

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(tcp + 1) > data_end)
			return XDP_ABORTED;
		check = &tcp->check;
		sportp = &tcp->source;
	} else {
		struct udphdr *udp = (void *)(ip + 1);

		if ((void *)(udp + 1) > data_end)
			return XDP_ABORTED;
		check = &udp->check;
		sportp = &udp->source;
	}
	if (ip->protocol == IPPROTO_TCP || *check != 0) {
		__u16 c = *check;

		c = csum_upd32(c, ip->saddr, src);
		c = csum_upd32(c, ip->daddr, dst);
		c = csum_upd16(c, *sportp, sport);
		if (ip->protocol == IPPROTO_UDP && c == 0)
			c = 0xffff;
		*check = c;
	}
	ip->check = csum_upd32(csum_upd32(ip->check, ip->saddr, src), ip->daddr, dst);
	ip->saddr = src;
	ip->daddr = dst;
	*sportp = sport;
	return XDP_TX;
}

SEC("xdp")
int bench_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 k = 0;
	struct sink_cfg *cfg;
	__u64 *v;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	v = bpf_map_lookup_elem(&sink_count, &k);
	if (v)
		(*v)++;
	cfg = bpf_map_lookup_elem(&sink_config, &k);
	if (cfg && (ip->daddr & cfg->match_mask) == cfg->match_net) {
		k = 1;
		v = bpf_map_lookup_elem(&sink_count, &k);
		if (v)
			(*v)++;
		k = 2;
		v = bpf_map_lookup_elem(&sink_count, &k);
		if (v)
			*v += data_end - data;
	}
	return XDP_DROP;
}

SEC("xdp")
int bench_calib(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct calib_key key = {};
	unsigned char tmp[ETH_ALEN];

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x3fff))
		return XDP_PASS;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(tcp + 1) > data_end)
			return XDP_PASS;
		key.sport = tcp->source;
		key.dport = tcp->dest;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);

		if ((void *)(udp + 1) > data_end)
			return XDP_PASS;
		key.sport = udp->source;
		key.dport = udp->dest;
	} else {
		return XDP_PASS;
	}
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.proto = ip->protocol;
	if (!bpf_map_lookup_elem(&calib_map, &key))
		return XDP_PASS;
	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
