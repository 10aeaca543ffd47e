/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Socket-level balancing (cgroup sock_addr hooks): connect() and an
 * unconnected UDP sendmsg() to a frontend are steered to a backend before
 * any packet exists, so the flow needs no per-packet NAT and no conntrack.
 * recvmsg() and getpeername() translate the backend back to the frontend
 * through sock_rev, keyed by socket cookie and backend.
 *
 * Backend choice: session affinity keyed by the network namespace (the
 * socket's source address is not known before connect), else the
 * service's Maglev ring indexed by a hash of the socket cookie and the
 * frontend port. A socket therefore keeps its backend for every datagram
 * while the ring is unchanged.
 *
 * What the hooks leave alone, the per-packet path (tc) handles: services
 * without a usable backend (it answers with a RST or an ICMP port
 * unreachable, or drops, from where the real source address is known) and
 * LoadBalancer frontends with source ranges (the source address is not
 * known here). */
#ifndef STRAIT_SOCK_H
#define STRAIT_SOCK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "maps.h"
#include "jhash.h"
#include "lb.h"
#include "conntrack.h"

#define SOCK_ALLOW 1

static __always_inline int sock_pick(__u32 svc_id, const struct service_val *svc, __u64 netns,
				     __u64 cookie, __be16 dport, __u64 now,
				     __u32 *backend_id, struct backend_val **be)
{
	struct sock_affinity_key ak = { .netns_cookie = netns, .svc_id = svc_id };
	struct affinity_val *av;

	if (svc->flags & SVC_F_AFFINITY) {
		av = bpf_map_lookup_elem(&sock_affinity, &ak);
		if (affinity_hit(av, svc_id, svc, now, backend_id, be))
			return PICK_OK;
	}
	*backend_id = maglev_pick(svc_id, sock_hash(cookie, dport));
	*be = backend_get(*backend_id);
	if (!*be)
		return PICK_EMPTY;
	if (svc->flags & SVC_F_AFFINITY) {
		struct affinity_val nv = { .backend_id = *backend_id, .last_seen = now };

		bpf_map_update_elem(&sock_affinity, &ak, &nv, BPF_ANY);
	}
	return PICK_OK;
}

/* Steer ctx's destination to a backend when it is a frontend. */
static __always_inline void sock_xlate(struct bpf_sock_addr *ctx, __u8 proto)
{
	struct frontend_key fk = {
		.addr = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
		.proto = proto,
	};
	struct frontend_val *fe;
	struct service_val *svc;
	struct backend_val *be = 0;
	__u32 svc_id, backend_id = 0;
	__u64 cookie;

	fe = bpf_map_lookup_elem(&frontends, &fk);
	if (!fe)
		return;
	svc_id = fe->svc_id;
	svc = bpf_map_lookup_elem(&services, &svc_id);
	if (!svc)
		return;
	if ((svc->flags & SVC_F_SRC_RANGES) && (fe->flags & FE_F_LOADBALANCER))
		return;	/* the per-packet path knows the source address */
	cookie = bpf_get_socket_cookie(ctx);
	if (sock_pick(svc_id, svc, bpf_get_netns_cookie(ctx), cookie, fk.port,
		      bpf_ktime_get_coarse_ns(), &backend_id, &be) != PICK_OK || !be)
		return;	/* reject or drop happens per packet */

	struct sock_rev_key rk = { .cookie = cookie, .addr = be->addr, .port = be->port };
	struct sock_rev_val rv = { .addr = fk.addr, .port = fk.port, .svc_id = svc_id };

	if (bpf_map_update_elem(&sock_rev, &rk, &rv, BPF_ANY))
		count_global(G_CT_INSERT_FAIL);
	ctx->user_ip4 = be->addr;
	ctx->user_port = be->port;
	count_global(G_SOCK_XLATE);
	count_svc(svc_id, (be->flags & BE_F_LOCAL) ? SVC_STAT_LOCAL : SVC_STAT_REMOTE, 0);
}

/* Answer with the frontend a socket was steered away from. */
static __always_inline void sock_revnat(struct bpf_sock_addr *ctx)
{
	struct sock_rev_key rk = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
	};
	struct sock_rev_val *rv = bpf_map_lookup_elem(&sock_rev, &rk);

	if (!rv)
		return;
	ctx->user_ip4 = rv->addr;
	ctx->user_port = rv->port;
	count_global(G_SOCK_REVNAT);
}

static __always_inline __u8 sock_proto(struct bpf_sock_addr *ctx)
{
	if (ctx->type == 1 /* SOCK_STREAM */)
		return ctx->protocol == 0 || ctx->protocol == PROTO_TCP ? PROTO_TCP : 0;
	if (ctx->type == 2 /* SOCK_DGRAM */)
		return ctx->protocol == 0 || ctx->protocol == PROTO_UDP ? PROTO_UDP : 0;
	return 0;
}

#endif
