// Package lbipam allocates LoadBalancer IPs for Services whose
// loadBalancerClass is unset or Strait's, from LoadBalancerIPPools: requested
// addresses and pools, sharing keys, release on delete or type change, and
// restore from the Services' status so addresses never move. The allocator
// is pure; the controller watches Services and pools, holds a Lease so only
// one agent allocates at a time, writes status.loadBalancer.ingress and
// reports problems as Events on the Service.
package lbipam
