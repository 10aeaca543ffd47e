// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Strait's datapath entry points. XDP on the uplink balances traffic that
 * arrives from outside the node; tc on the uplink's egress reverse
 * translates replies of locally delivered flows. Both share every map. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "include/consts.h"
#include "include/structs.h"
#include "include/maps.h"
#include "include/parse.h"
#include "include/csum.h"
#include "include/jhash.h"
#include "include/nat.h"
#include "include/conntrack.h"
#include "include/lb.h"
#include "include/reject.h"
#include "include/fwd.h"
#include "include/ew.h"
#include "include/sock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int pass_reason(int rc)
{
	switch (rc) {
	case PARSE_NOT_IP:
		count_global(G_PASS_NOT_IP);
		break;
	case PARSE_FRAGMENT:
		count_global(G_PASS_FRAGMENT);
		break;
	case PARSE_MALFORMED:
		count_global(G_PASS_MALFORMED);
		break;
	default:
		count_global(G_PASS_NO_FRONTEND);
	}
	return XDP_PASS;
}

/* Apply a conntrack entry's translation and send the frame on. */
static __always_inline int xdp_apply(struct xdp_md *ctx, struct pkt *p, const struct ct_val *v)
{
	void *data_end = (void *)(long)ctx->data_end;

	if (v->flags & (CT_F_REWRITE_DST | CT_F_REWRITE_SRC))
		xdp_nat(p, data_end, v);
	if (v->flags & (CT_F_LOCAL | CT_F_EW))
		return XDP_PASS;
	return fib_forward(ctx, p);
}

/* Reserve a SNAT port for a flow to a remote backend by inserting the
 * reverse entry with BPF_NOEXIST: a port is taken exactly when the insert
 * succeeds, so two flows never share one. */
static __always_inline int snat_reserve(const struct lb_config *cfg, const struct pkt *p,
					__be32 snat_addr, const struct backend_val *be,
					struct ct_val *rev, __u64 now, __be16 *port_out)
{
	__u32 range = cfg->snat_port_max - cfg->snat_port_min + 1;
	__u32 h = jhash_3words(p->saddr, ((__u32)p->sport << 16) | p->dport, be->addr, FLOW_HASH_SEED);
	struct ct_key rk = {
		.saddr = be->addr,
		.daddr = snat_addr,
		.sport = be->port,
		.proto = p->proto,
	};

	if (cfg->snat_port_min == 0 || cfg->snat_port_max < cfg->snat_port_min)
		return -1;
	for (int i = 0; i < SNAT_PORT_TRIES; i++) {
		__be16 port = bpf_htons(cfg->snat_port_min + (h + i * 7919) % range);
		struct ct_val *old;

		rk.dport = port;
		if (bpf_map_update_elem(&conntrack, &rk, rev, BPF_NOEXIST) == 0) {
			*port_out = port;
			return 0;
		}
		old = bpf_map_lookup_elem(&conntrack, &rk);
		if (old && ct_expired(cfg, p->proto, old, now) &&
		    bpf_map_update_elem(&conntrack, &rk, rev, BPF_ANY) == 0) {
			*port_out = port;
			return 0;
		}
	}
	return -1;
}

static __always_inline int xdp_new_flow(struct xdp_md *ctx, struct pkt *p,
					const struct lb_config *cfg,
					const struct frontend_val *fe, __u64 now)
{
	__u32 svc_id = fe->svc_id, backend_id = 0;
	struct backend_val *be = 0;
	int rc;

	switch (new_flow_pick(p, fe, now, &backend_id, &be)) {
	case NEW_NO_SERVICE:
		return XDP_PASS;
	case NEW_DROP:
		return XDP_DROP;
	case NEW_REJECT:
		if (p->proto == PROTO_TCP)
			rc = reject_tcp(ctx, p);
		else
			rc = reject_udp(ctx, p);
		if (rc == XDP_DROP)
			count_global(G_REJECT_UNSUPPORTED);
		return rc;
	}
	if (!be)
		return XDP_PASS;

	struct ct_key fk;
	struct ct_key rk;
	struct ct_val fwd = {
		.daddr = be->addr,
		.dport = be->port,
		.svc_id = svc_id,
		.backend_id = backend_id,
		.flags = CT_F_REWRITE_DST,
		.state = ct_next_state(CT_STATE_NEW, p),
		.last_seen = now,
	};
	struct ct_val rev = {
		.saddr = p->daddr,
		.sport = p->dport,
		.svc_id = svc_id,
		.backend_id = backend_id,
		.flags = CT_F_REWRITE_SRC | CT_F_REVERSE,
		.state = fwd.state,
		.last_seen = now,
	};

	ct_key_of(p, &fk);
	if (be->flags & BE_F_LOCAL) {
		/* Replies leave through the uplink's egress (tc). */
		fwd.flags |= CT_F_LOCAL;
		rev.flags |= CT_F_EGRESS;
		rk.saddr = be->addr;
		rk.daddr = p->saddr;
		rk.sport = be->port;
		rk.dport = p->sport;
		rk.proto = p->proto;
		rk.pad[0] = rk.pad[1] = rk.pad[2] = 0;
		if (bpf_map_update_elem(&conntrack, &rk, &rev, BPF_ANY)) {
			count_global(G_CT_INSERT_FAIL);
			return XDP_DROP;
		}
		count_svc(svc_id, SVC_STAT_LOCAL, p->len);
	} else {
		__u32 ifindex = ctx->ingress_ifindex;
		struct iface_val *ifc = bpf_map_lookup_elem(&ifaces, &ifindex);
		__be16 port;

		if (!ifc || ifc->snat_addr == 0) {
			count_global(G_NO_IFCONFIG);
			return XDP_PASS;
		}
		rev.daddr = p->saddr;
		rev.dport = p->sport;
		rev.flags |= CT_F_REWRITE_DST;
		if (snat_reserve(cfg, p, ifc->snat_addr, be, &rev, now, &port)) {
			count_global(G_SNAT_EXHAUSTED);
			return XDP_DROP;
		}
		fwd.saddr = ifc->snat_addr;
		fwd.sport = port;
		fwd.flags |= CT_F_REWRITE_SRC;
		count_svc(svc_id, SVC_STAT_REMOTE, p->len);
	}
	if (bpf_map_update_elem(&conntrack, &fk, &fwd, BPF_ANY)) {
		count_global(G_CT_INSERT_FAIL);
		return XDP_DROP;
	}
	count_global(G_CT_NEW);
	return xdp_apply(ctx, p, &fwd);
}

/* Everything but an established flow: a new flow to a frontend, or a
 * packet to pass. A function of its own, so the established path's code
 * is not spread around (and its registers not spilled for) this one. */
static __noinline int xdp_miss(struct xdp_md *ctx, struct pkt *p, struct lb_config *cfg, __u64 now)
{
	struct frontend_val *fe = frontend_of(p);

	if (!fe)
		return pass_reason(PARSE_OTHER_L4);
	return xdp_new_flow(ctx, p, cfg, fe, now);
}

SEC("xdp")
int strait_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct lb_config *cfg;
	struct pkt p;
	struct ct_val *ct;
	__u64 now;
	int rc;

	rc = parse_packet(data, data_end, data_end - data, &p);
	if (rc != PARSE_OK)
		return pass_reason(rc);
	cfg = get_config();
	if (unlikely(!cfg))
		return XDP_PASS;
	now = ct_now();

	/* One lookup serves established flows in both directions. */
	ct = bpf_map_lookup_elem(&conntrack, &p.key);
	/* Entries for tc: replies leaving by the uplink's egress, and
	 * east-west forward entries (a reply of an east-west flow to a
	 * remote backend arrives here: its reverse entry is ours). */
	if (likely(ct && !(ct->flags & CT_F_EGRESS) &&
		   (ct->flags & (CT_F_EW | CT_F_REVERSE)) != CT_F_EW &&
		   !ct_expired(cfg, p.proto, ct, now))) {
		ct_touch(ct, &p, now);
		if (ct->flags & CT_F_REVERSE) {
			count_global(G_REVERSE_NAT);
		} else {
			count_global(G_CT_HIT);
			count_svc(ct->svc_id, (ct->flags & CT_F_LOCAL) ? SVC_STAT_LOCAL : SVC_STAT_REMOTE, p.len);
		}
		return xdp_apply(ctx, &p, ct);
	}
	return xdp_miss(ctx, &p, cfg, now);
}

/* The common start of the tc programs: parse (headers pulled linear),
 * read the config and look the packet's 5-tuple up in conntrack. *ct is
 * NULL when there is no live entry. Returns 0 for packets to leave alone. */
static __always_inline int tc_begin(struct __sk_buff *skb, struct pkt *p, struct lb_config **cfg,
				    __u64 *now, struct ct_val **ct)
{
	skb_pull_headers(skb);
	if (parse_packet((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, p) != PARSE_OK)
		return 0;
	*cfg = get_config();
	if (!*cfg)
		return 0;
	*now = ct_now();
	*ct = bpf_map_lookup_elem(&conntrack, &p->key);
	if (*ct && ct_expired(*cfg, p->proto, *ct, *now))
		*ct = 0;
	return 1;
}

/* A packet without a live entry: a new east-west flow if it is addressed
 * to a frontend. */
static __always_inline int tc_new_flow(struct __sk_buff *skb, struct pkt *p, const struct lb_config *cfg,
				       __u64 now, enum ew_hook hook)
{
	struct frontend_val *fe = frontend_of(p);

	if (!fe) {
		ew_forget_stale(p);
		return TCX_NEXT;
	}
	return ew_new_flow(skb, p, cfg, fe, now, hook);
}

/* Egress of the uplink. Replies from local backends of XDP-balanced flows
 * get the frontend's address back before they leave the node. Packets of
 * host processes (and of pods on devices without the pod program) to a
 * frontend take the east-west path: DNAT, then a redirect to the backend's
 * route; a frontend without backends answers into the host's stack. */
SEC("tc")
int strait_tc_egress(struct __sk_buff *skb)
{
	struct lb_config *cfg;
	struct pkt p;
	struct ct_val *ct;
	__u64 now;

	if (!tc_begin(skb, &p, &cfg, &now, &ct))
		return TCX_NEXT;
	if (ct) {
		if (ct->flags & CT_F_EGRESS) {
			ct_touch(ct, &p, now);
			if ((ct->flags & CT_F_REWRITE_SRC) && skb_rewrite(skb, &p, 1, ct->saddr, ct->sport))
				return TCX_DROP;
			count_global(G_TC_REVERSE_NAT);
			return TCX_NEXT;
		}
		if ((ct->flags & (CT_F_EW | CT_F_REVERSE)) == CT_F_EW) {
			ct_touch(ct, &p, now);
			count_global(G_EW_HIT);
			return ew_apply(skb, &p, ct, EW_FROM_HOST);
		}
	}
	return tc_new_flow(skb, &p, cfg, now, EW_FROM_HOST);
}

/* Ingress of a pod's host-side device: packets from the pod. East-west
 * entries in either direction (a pod client's flow, or a local backend's
 * reply), else a new flow to a frontend. */
SEC("tc")
int strait_tc_pod(struct __sk_buff *skb)
{
	struct lb_config *cfg;
	struct pkt p;
	struct ct_val *ct;
	__u64 now;

	if (!tc_begin(skb, &p, &cfg, &now, &ct))
		return TCX_NEXT;
	if (ct && (ct->flags & CT_F_EW)) {
		ct_touch(ct, &p, now);
		count_global((ct->flags & CT_F_REVERSE) ? G_TC_REVERSE_NAT : G_EW_HIT);
		return ew_apply(skb, &p, ct, EW_FROM_POD);
	}
	return tc_new_flow(skb, &p, cfg, now, EW_FROM_POD);
}

/* Socket-level balancing (see include/sock.h). Every hook allows the
 * operation (returns 1): a service without backends is answered by the
 * per-packet path. */
SEC("cgroup/connect4")
int strait_connect4(struct bpf_sock_addr *ctx)
{
	__u8 proto = sock_proto(ctx);

	if (proto)
		sock_xlate(ctx, proto);
	return SOCK_ALLOW;
}

SEC("cgroup/sendmsg4")
int strait_sendmsg4(struct bpf_sock_addr *ctx)
{
	if (sock_proto(ctx) == PROTO_UDP)
		sock_xlate(ctx, PROTO_UDP);
	return SOCK_ALLOW;
}

SEC("cgroup/recvmsg4")
int strait_recvmsg4(struct bpf_sock_addr *ctx)
{
	if (sock_proto(ctx) == PROTO_UDP)
		sock_revnat(ctx);
	return SOCK_ALLOW;
}

SEC("cgroup/getpeername4")
int strait_getpeername4(struct bpf_sock_addr *ctx)
{
	if (sock_proto(ctx))
		sock_revnat(ctx);
	return SOCK_ALLOW;
}
