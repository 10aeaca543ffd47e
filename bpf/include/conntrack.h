/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection tracking on an LRU hash. An entry is live while the time since
 * it was last seen is within the timeout of its protocol and TCP state;
 * last_seen is refreshed at most once a second to keep cache lines quiet.
 *
 * Time is CLOCK_MONOTONIC at tick resolution (bpf_ktime_get_coarse_ns),
 * read through a per-CPU cache keyed by jiffies: the coarse clock moves
 * only at a tick, and bpf_jiffies64 is inlined by the verifier (one load)
 * where the helper call costs more than the conntrack lookup's share of a
 * packet. A cached value may trail another CPU's reading by a tick, so
 * ages are compared signed: a last_seen slightly in the future is fresh. */
#ifndef STRAIT_CONNTRACK_H
#define STRAIT_CONNTRACK_H

#include "maps.h"
#include "parse.h"

#define NSEC_PER_SEC 1000000000ULL

static __always_inline struct lb_config *get_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&config, &zero);
}

/* The current time in bpf_ktime_get_coarse_ns() units. */
static __always_inline __u64 ct_now(void)
{
	__u32 zero = 0;
	struct clock_cache *c = bpf_map_lookup_elem(&clock_cache, &zero);
	__u64 j = bpf_jiffies64();

	if (unlikely(!c))
		return bpf_ktime_get_coarse_ns();
	if (unlikely(c->jiffies != j)) {
		/* ns first: a reader preempted in between (sock hooks run
		 * preemptible) sees a matching jiffies only with its ns. */
		c->ns = bpf_ktime_get_coarse_ns();
		c->jiffies = j;
	}
	return c->ns;
}

/* now - then > limit, for times that may be a tick out of order. */
static __always_inline int ct_older(__u64 now, __u64 then, __u64 limit)
{
	return (__s64)(now - then) > (__s64)limit;
}

static __always_inline __u64 ct_timeout(const struct lb_config *cfg, __u8 proto, __u8 state)
{
	__u32 s;

	if (proto != PROTO_TCP)
		s = cfg->ct_udp;
	else if (state == CT_STATE_ESTABLISHED)
		s = cfg->ct_tcp_established;
	else if (state == CT_STATE_CLOSING)
		s = cfg->ct_tcp_closing;
	else
		s = cfg->ct_tcp_syn;
	return (__u64)s * NSEC_PER_SEC;
}

static __always_inline int ct_expired(const struct lb_config *cfg, __u8 proto,
				      const struct ct_val *v, __u64 now)
{
	return ct_older(now, v->last_seen, ct_timeout(cfg, proto, v->state));
}

static __always_inline void ct_key_of(const struct pkt *p, struct ct_key *k)
{
	k->saddr = p->saddr;
	k->daddr = p->daddr;
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
}

static __always_inline __u8 ct_next_state(__u8 state, const struct pkt *p)
{
	if (p->proto != PROTO_TCP)
		return CT_STATE_ESTABLISHED;
	if (p->tcp_flags & (TH_FIN | TH_RST))
		return CT_STATE_CLOSING;
	if (state == CT_STATE_NEW && (p->tcp_flags & TH_ACK) &&
	    !(p->tcp_flags & TH_SYN))
		return CT_STATE_ESTABLISHED;
	return state;
}

/* Refresh an entry that a packet matched. */
static __always_inline void ct_touch(struct ct_val *v, const struct pkt *p, __u64 now)
{
	__u8 state = v->state, next;

	/* Most packets: established, no FIN or RST (UDP has no flags), so
	 * ct_next_state keeps the state. */
	if (likely(state == CT_STATE_ESTABLISHED && !(p->tcp_flags & (TH_FIN | TH_RST))))
		next = state;
	else
		next = ct_next_state(state, p);
	if (unlikely(next != state)) {
		v->state = next;
		v->last_seen = now;
	} else if (unlikely(ct_older(now, v->last_seen, NSEC_PER_SEC))) {
		v->last_seen = now;
	}
}

#endif
