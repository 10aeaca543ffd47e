package lbmap

import (
	"errors"

	"github.com/straitlb/strait/dataplane/kern"
)

// ErrMapFull is wrapped by every error caused by a map at capacity.
var ErrMapFull = errors.New("map full")

// KV is one map, seen as a set of keys with values. For array maps a
// deleted key reads back as absent, as in a hash map.
type KV[K comparable, V comparable] interface {
	// Put inserts or replaces keys[i] -> vals[i]. On error some entries may
	// have been written.
	Put(keys []K, vals []V) error
	// Delete removes keys; absent keys are not an error.
	Delete(keys []K) error
	// All returns every present entry.
	All() (map[K]V, error)
	// Name is the map's name, for errors.
	Name() string
}

// Rings holds the Maglev ring of every service. Each ring is published
// whole: the datapath sees either the old ring or the new one.
type Rings interface {
	// Set replaces the rings of the given services. It returns the
	// services whose ring could not be set, each with its error.
	Set(rings map[uint32][]uint32) map[uint32]error
	Delete(ids []uint32) error
	// Get returns nil, nil when the service has no ring.
	Get(svcID uint32) ([]uint32, error)
	// SetFrom is Set with each ring built by build when it is written (a
	// nil ring leaves the service's ring as it is), so that no more than
	// a few rings are in memory at once.
	SetFrom(ids []uint32, build func(id uint32) []uint32) map[uint32]error
}

// Short names for the generated types.
type (
	FrontendKey   = kern.StraitFrontendKey
	FrontendVal   = kern.StraitFrontendVal
	ServiceVal    = kern.StraitServiceVal
	BackendVal    = kern.StraitBackendVal
	SvcBackendKey = kern.StraitSvcBackendKey
	SrcRangeKey   = kern.StraitSrcRangeKey
	IfaceVal      = kern.StraitIfaceVal
	Config        = kern.StraitLbConfig
	CtKey         = kern.StraitCtKey
	CtVal         = kern.StraitCtVal
	AffinityKey   = kern.StraitAffinityKey
	AffinityVal   = kern.StraitAffinityVal
	SockRevKey    = kern.StraitSockRevKey
	SockRevVal    = kern.StraitSockRevVal
)

// Maps is every map the programmer writes. Conntrack and affinity are
// written by the datapath and only read or pruned here.
type Maps struct {
	Frontends   KV[FrontendKey, FrontendVal]
	Services    KV[uint32, ServiceVal]
	Backends    KV[uint32, BackendVal]
	SvcBackends KV[SvcBackendKey, uint8]
	SrcRanges   KV[SrcRangeKey, uint8]
	Ifaces      KV[uint32, IfaceVal]
	Config      KV[uint32, Config]
	Conntrack   KV[CtKey, CtVal]
	Rings       Rings
}

// Capacities are the maps' sizes. The loader sets them on the real maps;
// the fake enforces the same limits.
type Capacities struct {
	Frontends, Services, Backends, Conntrack, Affinity, SrcRanges uint32
}

// DefaultCapacities match bpf/include/consts.h.
var DefaultCapacities = Capacities{
	Frontends: 131072,
	Services:  65536,
	Backends:  262144,
	Conntrack: 1 << 20,
	Affinity:  262144,
	SrcRanges: 65536,
}

// MaxIfaces matches MAX_IFACES.
const MaxIfaces = 64
