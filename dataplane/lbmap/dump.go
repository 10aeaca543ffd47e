package lbmap

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/straitlb/strait/dataplane/flowhash"
)

// Snapshot is the programmer-owned content of every map, read back.
type Snapshot struct {
	Frontends   map[FrontendKey]FrontendVal
	Services    map[uint32]ServiceVal
	Backends    map[uint32]BackendVal
	SvcBackends map[SvcBackendKey]uint8
	SrcRanges   map[SrcRangeKey]uint8
	Ifaces      map[uint32]IfaceVal
	Config      map[uint32]Config
	// Rings of the services that frontends point to or that have a ring size.
	Rings map[uint32][]uint32
}

// Read reads every programmer-owned map.
func Read(m Maps) (*Snapshot, error) {
	var s Snapshot
	var err error
	if s.Frontends, err = m.Frontends.All(); err != nil {
		return nil, err
	}
	if s.Services, err = m.Services.All(); err != nil {
		return nil, err
	}
	if s.Backends, err = m.Backends.All(); err != nil {
		return nil, err
	}
	if s.SvcBackends, err = m.SvcBackends.All(); err != nil {
		return nil, err
	}
	if s.SrcRanges, err = m.SrcRanges.All(); err != nil {
		return nil, err
	}
	if s.Ifaces, err = m.Ifaces.All(); err != nil {
		return nil, err
	}
	if s.Config, err = m.Config.All(); err != nil {
		return nil, err
	}
	ids := make(map[uint32]bool)
	for _, fe := range s.Frontends {
		ids[fe.SvcId] = true
	}
	for id := range s.Services {
		ids[id] = true
	}
	s.Rings = make(map[uint32][]uint32)
	for id := range ids {
		r, err := m.Rings.Get(id)
		if err != nil {
			return nil, err
		}
		if r != nil {
			s.Rings[id] = r
		}
	}
	return &s, nil
}

func sortedKeys[K comparable, V comparable](m map[K]V, less func(a, b K) int) []K {
	ks := slices.Collect(maps.Keys(m))
	slices.SortFunc(ks, less)
	return ks
}

func flagNames(v uint32, names ...string) string {
	var out []string
	for i, n := range names {
		if v&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ",")
}

// Format renders a snapshot as sorted, stable text: one line per entry,
// rings summarised as the slot count of each backend.
func (s *Snapshot) Format() string {
	var b strings.Builder
	for _, k := range sortedKeys(s.Config, cmp.Compare[uint32]) {
		c := s.Config[k]
		fmt.Fprintf(&b, "config snat_ports=%d-%d ct_tcp_syn=%ds ct_tcp_established=%ds ct_tcp_closing=%ds ct_udp=%ds\n",
			c.SnatPortMin, c.SnatPortMax, c.CtTcpSyn, c.CtTcpEstablished, c.CtTcpClosing, c.CtUdp)
	}
	for _, k := range sortedKeys(s.Ifaces, cmp.Compare[uint32]) {
		fmt.Fprintf(&b, "iface %d snat=%s\n", k, flowhash.AddrFromRaw32(s.Ifaces[k].SnatAddr))
	}
	for _, k := range sortedKeys(s.Frontends, func(a, b FrontendKey) int {
		return FrontendModelKey(a).Compare(FrontendModelKey(b))
	}) {
		v := s.Frontends[k]
		fmt.Fprintf(&b, "frontend %s svc=%d flags=%s\n", FrontendModelKey(k), v.SvcId,
			flagNames(v.Flags, "external", "loadbalancer"))
	}
	for _, id := range sortedKeys(s.Services, cmp.Compare[uint32]) {
		v := s.Services[id]
		fmt.Fprintf(&b, "service %d ring=%d backends=%d flags=%s affinity=%ds\n", id, v.RingSize, v.BackendCount,
			flagNames(v.Flags, "drop-empty", "affinity", "src-ranges", "active"), v.AffinityTimeout)
		if r := s.Rings[id]; r != nil {
			counts := make(map[uint32]int)
			for _, be := range r {
				counts[be]++
			}
			var parts []string
			for _, be := range sortedKeys(counts, cmp.Compare[uint32]) {
				parts = append(parts, fmt.Sprintf("%d:%d", be, counts[be]))
			}
			fmt.Fprintf(&b, "ring %d slots=%d %s\n", id, len(r), strings.Join(parts, " "))
		}
	}
	for _, id := range sortedKeys(s.Backends, cmp.Compare[uint32]) {
		v := s.Backends[id]
		fmt.Fprintf(&b, "backend %d %s flags=%s\n", id, BackendKeyOf(v), flagNames(uint32(v.Flags), "local"))
	}
	for _, k := range sortedKeys(s.SvcBackends, func(a, b SvcBackendKey) int {
		return cmp.Or(cmp.Compare(a.SvcId, b.SvcId), cmp.Compare(a.BackendId, b.BackendId))
	}) {
		fmt.Fprintf(&b, "member svc=%d backend=%d\n", k.SvcId, k.BackendId)
	}
	for _, k := range sortedKeys(s.SrcRanges, func(a, b SrcRangeKey) int {
		ai, ap := SrcRangeOf(a)
		bi, bp := SrcRangeOf(b)
		return cmp.Or(cmp.Compare(ai, bi), ap.Addr().Compare(bp.Addr()), cmp.Compare(ap.Bits(), bp.Bits()))
	}) {
		id, p := SrcRangeOf(k)
		fmt.Fprintf(&b, "src-range svc=%d %s\n", id, p)
	}
	return b.String()
}

// Dump reads and formats every programmer-owned map.
func Dump(m Maps) (string, error) {
	s, err := Read(m)
	if err != nil {
		return "", err
	}
	return s.Format(), nil
}
