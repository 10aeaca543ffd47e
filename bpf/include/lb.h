/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Backend selection for a new flow: source ranges, session affinity, then
 * the service's Maglev ring indexed by the flow hash. Userspace computed
 * every table; this code only looks up. */
#ifndef STRAIT_LB_H
#define STRAIT_LB_H

#include "maps.h"
#include "jhash.h"
#include "parse.h"
#include "conntrack.h"

enum pick_result {
	PICK_OK = 0,
	PICK_EMPTY,		/* no usable backend */
	PICK_SRC_DENIED,	/* client outside loadBalancerSourceRanges */
};

/* The frontend a packet is addressed to, if any. */
static __always_inline struct frontend_val *frontend_of(const struct pkt *p)
{
	struct frontend_key fk = {
		.addr = p->daddr,
		.port = p->dport,
		.proto = p->proto,
	};

	return bpf_map_lookup_elem(&frontends, &fk);
}

static __always_inline int src_allowed(__u32 svc_id, __be32 saddr)
{
	struct src_range_key k = {
		.prefixlen = 64,
		.svc_id = bpf_htonl(svc_id),
		.addr = saddr,
	};

	return bpf_map_lookup_elem(&src_ranges, &k) != 0;
}

/* See struct maglev_inner in maps.h for the ring layout. */
static __always_inline __u32 maglev_pick(__u32 svc_id, __u32 hash)
{
	void *ring = bpf_map_lookup_elem(&maglev, &svc_id);
	__u32 k_hdr = 0, *hdr, *pair, ctl, size, word, elem;

	if (!ring)
		return 0;
	hdr = bpf_map_lookup_elem(ring, &k_hdr);
	if (!hdr)
		return 0;
	ctl = *(volatile __u32 *)hdr;
	size = ctl & 0x7fffffff;
	if (size == 0)
		return 0;
	word = 2 + (ctl >> 31) * hdr[1] + hash % size;
	elem = word >> 1;
	pair = bpf_map_lookup_elem(ring, &elem);
	if (!pair)
		return 0;
	return pair[word & 1];
}

static __always_inline struct backend_val *backend_get(__u32 id)
{
	struct backend_val *b;

	if (id == 0)
		return 0;
	b = bpf_map_lookup_elem(&backends, &id);
	if (!b || b->addr == 0)
		return 0;
	return b;
}

/* An affinity entry that is still fresh and names a current member of the
 * service: refresh it and use its backend. */
static __always_inline int affinity_hit(struct affinity_val *av, __u32 svc_id,
					const struct service_val *svc, __u64 now,
					__u32 *backend_id, struct backend_val **be)
{
	struct svc_backend_key mk = { .svc_id = svc_id };

	if (!av || ct_older(now, av->last_seen, (__u64)svc->affinity_timeout * NSEC_PER_SEC))
		return 0;
	mk.backend_id = av->backend_id;
	if (!bpf_map_lookup_elem(&svc_backends, &mk))
		return 0;
	*be = backend_get(av->backend_id);
	if (!*be)
		return 0;
	*backend_id = av->backend_id;
	av->last_seen = now;
	return 1;
}

static __always_inline int pick_backend(const struct pkt *p, __u32 svc_id,
					const struct service_val *svc, __u32 fe_flags,
					__u64 now, __u32 *backend_id, struct backend_val **be)
{
	struct affinity_key ak = {};
	struct affinity_val *av;

	if ((svc->flags & SVC_F_SRC_RANGES) && (fe_flags & FE_F_LOADBALANCER) &&
	    !src_allowed(svc_id, p->saddr))
		return PICK_SRC_DENIED;

	if (svc->flags & SVC_F_AFFINITY) {
		ak.client = p->saddr;
		ak.svc_id = svc_id;
		av = bpf_map_lookup_elem(&affinity, &ak);
		if (affinity_hit(av, svc_id, svc, now, backend_id, be))
			return PICK_OK;
	}

	*backend_id = maglev_pick(svc_id, flow_hash(p->saddr, p->sport, p->dport, p->proto));
	*be = backend_get(*backend_id);
	if (!*be)
		return PICK_EMPTY;

	if (svc->flags & SVC_F_AFFINITY) {
		struct affinity_val nv = { .backend_id = *backend_id, .last_seen = now };

		bpf_map_update_elem(&affinity, &ak, &nv, BPF_ANY);
	}
	return PICK_OK;
}

/* What to do with a new flow to frontend fe: the decision both the XDP and
 * the tc paths take, counted per service. On NEW_FORWARD, backend_id and
 * be say where. */
enum new_flow {
	NEW_FORWARD = 0,
	NEW_NO_SERVICE,
	NEW_DROP,	/* source range denied, or no backend under a Local policy */
	NEW_REJECT,	/* no backend: the caller answers RST / ICMP */
};

static __always_inline int new_flow_pick(const struct pkt *p, const struct frontend_val *fe,
					 __u64 now, __u32 *backend_id, struct backend_val **be)
{
	__u32 svc_id = fe->svc_id;
	struct service_val *svc = bpf_map_lookup_elem(&services, &svc_id);
	int rc;

	if (!svc)
		return NEW_NO_SERVICE;
	rc = pick_backend(p, svc_id, svc, fe->flags, now, backend_id, be);
	if (rc == PICK_SRC_DENIED) {
		count_svc(svc_id, SVC_STAT_DROP, p->len);
		return NEW_DROP;
	}
	if (rc != PICK_OK || !*be) {
		if (svc->flags & SVC_F_DROP_EMPTY) {
			count_svc(svc_id, SVC_STAT_DROP, p->len);
			return NEW_DROP;
		}
		count_svc(svc_id, SVC_STAT_REJECT, p->len);
		return NEW_REJECT;
	}
	return NEW_FORWARD;
}

#endif
