package micro

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	benchkern "github.com/straitlb/strait/bench/kern"
	"github.com/straitlb/strait/dataplane/kern"
	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/model"
)

// ScaleName describes the programmed size of a run.
func ScaleName(o Options) string {
	n := max(o.Services, 2)
	s := fmt.Sprintf("%d services", n)
	if n > 2 {
		s += fmt.Sprintf(" / %d backends", 10+1+(n-2)*bps(o))
	}
	if o.Conntrack > 0 {
		s += fmt.Sprintf(" / %d conntrack", o.Conntrack)
	}
	return s
}

func bps(o Options) int {
	if o.BackendsPerService > 0 {
		return o.BackendsPerService
	}
	return 10
}

// ScaledState is State plus services-2 filler services (ClusterIP
// 172.16.0.0 + i, port 80) with b local backends each (in 10.0.0.0/8).
func ScaledState(services, b int) model.State {
	s := State()
	if b <= 0 {
		b = 10
	}
	for i := range max(services-2, 0) {
		var bes []model.Backend
		for j := range b {
			n := uint32(i*b+j) + 1
			bes = append(bes, model.Backend{Addr: netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}), Port: 8080, Local: true})
		}
		s.Services = append(s.Services, model.Service{
			Name:      model.ServiceName{Namespace: "fill", Name: fmt.Sprintf("svc-%05d", i)},
			Frontends: []model.Frontend{{Addr: netip.AddrFrom4([4]byte{172, 16 + byte(i>>16), byte(i >> 8), byte(i)}), Port: 80, Proto: model.TCP, Kind: model.ClusterIP}},
			Backends:  bes,
		})
	}
	s.Canonicalize()
	return s
}

// PrefillConntrack inserts n live forward entries for flows no benchmark
// packet has (clients in 100.64.0.0/10).
func PrefillConntrack(dp *loader.Datapath, n int) error {
	if n <= 0 {
		return nil
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return err
	}
	now := uint64(ts.Nano())
	const batch = 65536
	keys := make([]kern.StraitCtKey, 0, batch)
	vals := make([]kern.StraitCtVal, 0, batch)
	ct := dp.Objects().Conntrack
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		if _, err := ct.BatchUpdate(keys, vals, nil); err != nil {
			return fmt.Errorf("prefill conntrack: %w", err)
		}
		keys, vals = keys[:0], vals[:0]
		return nil
	}
	for k := range n {
		saddr, daddr, sport := prefillTuple(k)
		keys = append(keys, kern.StraitCtKey{Saddr: saddr, Daddr: daddr, Sport: sport, Dport: htons(80), Proto: 6})
		vals = append(vals, kern.StraitCtVal{Daddr: binary.LittleEndian.Uint32([]byte{10, 0, 0, 1}), Dport: htons(8080),
			SvcId: 1, BackendId: 1, Flags: 1<<1 | 1<<3, State: 1, LastSeen: now})
		if len(keys) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// prefillTuple is the k-th pre-filled flow (TCP to port 80), as stored in
// a key: addresses and port in network byte order.
func prefillTuple(k int) (saddr, daddr uint32, sport uint16) {
	src := [4]byte{100, 64 + byte(k>>22&0x3f), byte(k >> 14), byte(k >> 6)}
	dst := [4]byte{172, 16, byte(k >> 8), byte(k)}
	return binary.LittleEndian.Uint32(src[:]), binary.LittleEndian.Uint32(dst[:]), htons(uint16(1024 + k&63))
}

func htons(v uint16) uint16 { return v>>8 | v<<8 }

// Reference is the calibration program: parse Ethernet/IPv4/L4, one hash
// lookup on the 5-tuple, swap MACs, XDP_TX. Its table (calib_map) is a
// preallocated BPF_MAP_TYPE_HASH of 65,536 entries with the same 16-byte
// key as conntrack (5-tuple, padding zero) and an 8-byte value; conntrack
// is a BPF_MAP_TYPE_LRU_HASH (1,048,576 entries by default) with a
// 32-byte value. Both are looked up by the same inlined hash-table code.
type Reference struct {
	Prog *ebpf.Program
	objs *benchkern.BenchObjects
}

// LoadReference loads bench_calib.
func LoadReference() (*Reference, error) {
	var o benchkern.BenchObjects
	if err := benchkern.LoadBenchObjects(&o, nil); err != nil {
		return nil, fmt.Errorf("load reference program: %w", err)
	}
	return &Reference{Prog: o.BenchCalib, objs: &o}, nil
}

// loadFullReference loads a second reference whose table is as large as
// conntrack (capacity entries, more if needed) and holds the n pre-filled
// flows plus the measured frames, as conntrack does at scale.
func loadFullReference(capacity uint32, n int, frames [][]byte) (*Reference, error) {
	spec, err := benchkern.LoadBench()
	if err != nil {
		return nil, fmt.Errorf("load reference spec: %w", err)
	}
	spec.Maps["calib_map"].MaxEntries = max(capacity, uint32(n+len(frames)))
	var o benchkern.BenchObjects
	if err := spec.LoadAndAssign(&o, nil); err != nil {
		return nil, fmt.Errorf("load reference program: %w", err)
	}
	r := &Reference{Prog: o.BenchCalib, objs: &o}
	const batch = 65536
	keys := make([]benchkern.BenchCalibKey, 0, batch)
	vals := make([]uint64, 0, batch)
	for k := range n {
		saddr, daddr, sport := prefillTuple(k)
		keys = append(keys, benchkern.BenchCalibKey{Saddr: saddr, Daddr: daddr, Sport: sport, Dport: htons(80), Proto: 6})
		vals = append(vals, 1)
		if len(keys) == batch || k == n-1 {
			if _, err := o.CalibMap.BatchUpdate(keys, vals, nil); err != nil {
				r.Close()
				return nil, fmt.Errorf("fill reference table: %w", err)
			}
			keys, vals = keys[:0], vals[:0]
		}
	}
	if err := r.Insert(frames); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close releases the program.
func (r *Reference) Close() error { return r.objs.Close() }

// Insert makes the frames' 5-tuples hits.
func (r *Reference) Insert(frames [][]byte) error {
	for _, f := range frames {
		k := benchkern.BenchCalibKey{
			Saddr: binary.LittleEndian.Uint32(f[26:30]), Daddr: binary.LittleEndian.Uint32(f[30:34]),
			Sport: binary.LittleEndian.Uint16(f[34:36]), Dport: binary.LittleEndian.Uint16(f[36:38]), Proto: f[23],
		}
		if err := r.objs.CalibMap.Put(k, uint64(1)); err != nil {
			return fmt.Errorf("reference map: %w", err)
		}
	}
	return nil
}
