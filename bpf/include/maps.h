/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map the programs share. VIP -> service id -> Maglev ring ->
 * backend id -> backend: integer indirection, so a backend change rewrites
 * one small ring, never the frontends. */
#ifndef STRAIT_MAPS_H
#define STRAIT_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "consts.h"
#include "structs.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FRONTENDS);
	__type(key, struct frontend_key);
	__type(value, struct frontend_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} frontends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct service_val);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend_val);
} backends SEC(".maps");

/* One inner array per service, sized per service (BPF_F_INNER_MAP) and
 * memory-mapped by userspace. Seen as 32-bit words (two per 8-byte
 * element, since array elements are 8-byte aligned anyway):
 *   word 0: control, (active half << 31) | ring size
 *   word 1: capacity of a half
 *   words 2 + half * capacity ...: backend ids
 * A new table is written into the inactive half and published with one
 * 32-bit store; a table that outgrows its capacity gets a new inner map,
 * swapped into the outer array whole. The datapath never sees a
 * half-written table. */
struct maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__array(values, struct maglev_inner);
} maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_CT);
	__type(key, struct ct_key);
	__type(value, struct ct_val);
} conntrack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_AFFINITY);
	__type(key, struct affinity_key);
	__type(value, struct affinity_val);
} affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_SOCK_REV);
	__type(key, struct sock_rev_key);
	__type(value, struct sock_rev_val);
} sock_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_AFFINITY);
	__type(key, struct sock_affinity_key);
	__type(value, struct affinity_val);
} sock_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, struct svc_backend_key);
	__type(value, __u8);
} svc_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_SRC_RANGES);
	__type(key, struct src_range_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} src_ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_IFACES);
	__type(key, __u32);
	__type(value, struct iface_val);
} ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SERVICES * SVC_STAT_MAX);
	__type(key, __u32);
	__type(value, struct stat_val);
} svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, G_MAX);
	__type(key, __u32);
	__type(value, __u64);
} global_stats SEC(".maps");

/* ct_now()'s cache of the coarse clock (see conntrack.h). One entry for
 * every CPU: it is written once a tick, and a plain array's value is
 * reached without the per-CPU pointer load. */
struct clock_cache {
	__u64 jiffies;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct clock_cache);
} clock_cache SEC(".maps");

static __always_inline void count_global(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&global_stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline void count_svc(__u32 svc_id, __u32 verdict, __u32 bytes)
{
	__u32 idx = svc_id * SVC_STAT_MAX + verdict;
	struct stat_val *v = bpf_map_lookup_elem(&svc_stats, &idx);
	if (v) {
		v->packets += 1;
		v->bytes += bytes;
	}
}

#endif
