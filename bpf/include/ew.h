/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The per-packet east-west path at tc: packets from pods (ingress of the
 * pods' host-side devices) and from host processes (egress of the uplink)
 * to a frontend, for whatever socket-level balancing did not translate.
 * DNAT with connection tracking, no SNAT (pod and node addresses are
 * routable), except for a hairpin flow (a pod reaching itself), whose
 * source becomes the hairpin address so the reply leaves the pod.
 *
 * Entries are flagged CT_F_EW. The reverse entry (backend -> client) is
 * used by the tc program on the backend's host device (local backend) or
 * by XDP on the uplink (remote backend), which rewrites and passes it to
 * the stack. */
#ifndef STRAIT_EW_H
#define STRAIT_EW_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "parse.h"
#include "csum.h"
#include "nat.h"
#include "conntrack.h"
#include "lb.h"
#include "reject.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef BPF_FIB_LOOKUP_SKIP_NEIGH
#define BPF_FIB_LOOKUP_SKIP_NEIGH (1U << 2)
#endif

/* Where a tc program runs. */
enum ew_hook {
	EW_FROM_POD = 0,	/* ingress of a pod's host-side device */
	EW_FROM_HOST,		/* egress of the uplink: host processes */
};

static __always_inline int skb_swap_macs(struct __sk_buff *skb, __u32 off)
{
	__u8 macs[12], sw[12];

	if (bpf_skb_load_bytes(skb, off, macs, 12))
		return -1;
	__builtin_memcpy(sw, macs + 6, 6);
	__builtin_memcpy(sw + 6, macs, 6);
	return bpf_skb_store_bytes(skb, off, sw, 12, 0);
}

struct rst_pkt {
	struct iphdr ip;
	struct tcphdr th;
};

/* Turn the packet into a TCP RST answering it (RFC 9293 3.10.7.1). */
static __always_inline int skb_reject_tcp(struct __sk_buff *skb, struct pkt *p)
{
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = p->ip;
	struct tcphdr *th = p->l4;
	struct rst_pkt r = {};
	__u32 l3 = p->l3_off;

	if (p->tcp_flags & TH_RST)
		return -1;
	if ((void *)(ip + 1) > data_end || (void *)(th + 1) > data_end)
		return -1;
	__u32 seglen = bpf_ntohs(ip->tot_len) - ip->ihl * 4 - th->doff * 4;
	if (p->tcp_flags & TH_SYN)
		seglen++;
	if (p->tcp_flags & TH_FIN)
		seglen++;
	ip_fill(&r.ip, p->daddr, p->saddr, PROTO_TCP, 40);
	r.th.source = p->dport;
	r.th.dest = p->sport;
	r.th.doff = 5;
	r.th.rst = 1;
	if (p->tcp_flags & TH_ACK) {
		r.th.seq = th->ack_seq;
	} else {
		r.th.ack = 1;
		r.th.ack_seq = bpf_htonl(bpf_ntohl(th->seq) + seglen);
	}
	r.th.check = csum_fold(csum_pseudo(p->daddr, p->saddr, PROTO_TCP, 20) +
			       csum_words((__u16 *)&r.th, 10));
	if (l3 != 14 && l3 != 18)
		return -1;
	if (skb_swap_macs(skb, 0))
		return -1;
	if (bpf_skb_change_tail(skb, l3 + sizeof(r), 0))
		return -1;
	return bpf_skb_store_bytes(skb, l3, &r, sizeof(r), 0) ? -1 : 0;
}

struct icmp_pkt {
	struct iphdr ip;
	struct icmp4hdr icmp;
	__u8 quote[28];		/* the datagram's IP header and first 8 bytes */
};

/* Turn a UDP datagram into the ICMP port unreachable answering it. */
static __always_inline int skb_reject_udp(struct __sk_buff *skb, struct pkt *p)
{
	struct icmp_pkt r = {};
	__u32 l3 = p->l3_off;

	if (l3 != 14 && l3 != 18)
		return -1;
	if (bpf_skb_load_bytes(skb, l3, r.quote, sizeof(r.quote)))
		return -1;
	if ((r.quote[0] & 0x0f) != 5)
		return -1;	/* IP options: not quoted, dropped (counted) */
	ip_fill(&r.ip, p->daddr, p->saddr, PROTO_ICMP, sizeof(r));
	r.icmp.type = ICMP_DEST_UNREACH;
	r.icmp.code = ICMP_PORT_UNREACH;
	r.icmp.checksum = csum_fold(csum_words((__u16 *)&r.icmp, 18));
	if (skb_swap_macs(skb, 0))
		return -1;
	if (bpf_skb_change_tail(skb, l3 + sizeof(r), 0))
		return -1;
	return bpf_skb_store_bytes(skb, l3, &r, sizeof(r), 0) ? -1 : 0;
}

/* Send the (rewritten) packet back where it came from: out of the pod's
 * device towards the pod, or into the host's stack. */
static __always_inline int ew_bounce(struct __sk_buff *skb, enum ew_hook hook)
{
	if (hook == EW_FROM_POD)
		return bpf_redirect(skb->ifindex, 0);
	return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
}

/* Forward a packet whose destination a host-egress translation changed:
 * the route chosen before (towards the uplink) is no longer right. The FIB
 * gives the new egress device; bpf_redirect_neigh without a next hop
 * routes the packet again on that device (replacing its stale route, which
 * matters for a packet queued on an unresolved neighbour) and fills in the
 * MAC addresses from the neighbour table. */
static __always_inline int ew_reroute(struct __sk_buff *skb, struct pkt *p)
{
	struct bpf_fib_lookup fib = {};
	int rc;

	fib.family = AF_INET;
	fib.l4_protocol = p->proto;
	fib.sport = p->sport;
	fib.dport = p->dport;
	fib.tot_len = skb->len - p->l3_off;
	fib.ipv4_src = p->saddr;
	fib.ipv4_dst = p->daddr;
	fib.ifindex = skb->ifindex;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		count_global(G_FIB_FAIL);
		return TCX_DROP;
	}
	return bpf_redirect_neigh(fib.ifindex, 0, 0, 0);
}

/* Apply an east-west entry (forward or reverse) to the packet. */
static __always_inline int ew_apply(struct __sk_buff *skb, struct pkt *p, const struct ct_val *v,
				    enum ew_hook hook)
{
	if ((v->flags & CT_F_REWRITE_DST) && skb_rewrite(skb, p, 0, v->daddr, v->dport))
		return TCX_DROP;
	if ((v->flags & CT_F_REWRITE_SRC) && skb_rewrite(skb, p, 1, v->saddr, v->sport))
		return TCX_DROP;
	if (v->flags & CT_F_HAIRPIN) {
		/* Back out of the pod's device it came in by. */
		if (skb_swap_macs(skb, 0))
			return TCX_DROP;
		return bpf_redirect(skb->ifindex, 0);
	}
	if (hook == EW_FROM_HOST && !(v->flags & CT_F_REVERSE))
		return ew_reroute(skb, p);
	return TCX_NEXT;
}

static __always_inline int ew_new_flow(struct __sk_buff *skb, struct pkt *p,
				       const struct lb_config *cfg, const struct frontend_val *fe,
				       __u64 now, enum ew_hook hook)
{
	__u32 svc_id = fe->svc_id, backend_id = 0;
	struct backend_val *be = 0;
	int rc;

	switch (new_flow_pick(p, fe, now, &backend_id, &be)) {
	case NEW_NO_SERVICE:
		return TCX_NEXT;
	case NEW_DROP:
		return TCX_DROP;
	case NEW_REJECT:
		if (p->proto == PROTO_TCP)
			rc = skb_reject_tcp(skb, p);
		else
			rc = skb_reject_udp(skb, p);
		if (rc) {
			count_global(G_REJECT_UNSUPPORTED);
			return TCX_DROP;
		}
		count_global(G_EW_REJECT);
		return ew_bounce(skb, hook);
	}
	if (!be)
		return TCX_NEXT;

	int hairpin = hook == EW_FROM_POD && be->addr == p->saddr;
	struct ct_key fk, rk = {
		.saddr = be->addr,
		.daddr = p->saddr,
		.sport = be->port,
		.dport = p->sport,
		.proto = p->proto,
	};
	struct ct_val fwd = {
		.daddr = be->addr,
		.dport = be->port,
		.svc_id = svc_id,
		.backend_id = backend_id,
		.flags = CT_F_REWRITE_DST | CT_F_EW,
		.state = ct_next_state(CT_STATE_NEW, p),
		.last_seen = now,
	};
	struct ct_val rev = {
		.saddr = p->daddr,
		.sport = p->dport,
		.svc_id = svc_id,
		.backend_id = backend_id,
		/* CT_F_LOCAL: XDP passes a remote backend's reply to the stack. */
		.flags = CT_F_REWRITE_SRC | CT_F_REVERSE | CT_F_EW | CT_F_LOCAL,
		.state = fwd.state,
		.last_seen = now,
	};

	if (hairpin) {
		if (cfg->hairpin_addr == 0)
			return TCX_DROP;
		rk.daddr = cfg->hairpin_addr;
		fwd.saddr = cfg->hairpin_addr;
		fwd.sport = p->sport;
		fwd.flags |= CT_F_REWRITE_SRC | CT_F_HAIRPIN;
		rev.daddr = p->saddr;
		rev.dport = p->sport;
		rev.flags |= CT_F_REWRITE_DST | CT_F_HAIRPIN;
	}
	ct_key_of(p, &fk);
	if (bpf_map_update_elem(&conntrack, &rk, &rev, BPF_ANY) ||
	    bpf_map_update_elem(&conntrack, &fk, &fwd, BPF_ANY)) {
		count_global(G_CT_INSERT_FAIL);
		return TCX_DROP;
	}
	count_global(G_EW_NEW);
	count_svc(svc_id, (be->flags & BE_F_LOCAL) ? SVC_STAT_LOCAL : SVC_STAT_REMOTE, p->len);
	return ew_apply(skb, p, &fwd, hook);
}

/* A SYN that is not for a frontend opens a new connection on its 5-tuple:
 * an east-west reverse entry for the same tuple (a service flow that ended
 * recently and used the same ports) would mistranslate its replies. The
 * entry of a flow still opening (state NEW) is kept: that SYN may be the
 * translated SYN of that very flow, seen again on the uplink's egress. */
static __always_inline void ew_forget_stale(const struct pkt *p)
{
	struct ct_key rk = {
		.saddr = p->daddr,
		.daddr = p->saddr,
		.sport = p->dport,
		.dport = p->sport,
		.proto = p->proto,
	};
	struct ct_val *v;

	if (p->proto != PROTO_TCP || (p->tcp_flags & (TH_SYN | TH_ACK)) != TH_SYN)
		return;
	v = bpf_map_lookup_elem(&conntrack, &rk);
	if (v && (v->flags & (CT_F_EW | CT_F_REVERSE)) == (CT_F_EW | CT_F_REVERSE) &&
	    v->state != CT_STATE_NEW)
		bpf_map_delete_elem(&conntrack, &rk);
}

/* Pull the headers the parser reads into the linear area. */
static __always_inline void skb_pull_headers(struct __sk_buff *skb)
{
	__u32 need = sizeof(struct ethhdr) + 4 + 60 + sizeof(struct tcphdr);

	if (need > skb->len)
		need = skb->len;
	if ((void *)(long)skb->data + need > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, need);
}

#endif
