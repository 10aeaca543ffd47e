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
		src := [4]byte{100, 64 + byte(k>>22&0x3f), byte(k >> 14), byte(k >> 6)}
		dst := [4]byte{172, 16, byte(k >> 8), byte(k)}
		keys = append(keys, kern.StraitCtKey{
			Saddr: binary.LittleEndian.Uint32(src[:]), Daddr: binary.LittleEndian.Uint32(dst[:]),
			Sport: htons(uint16(1024 + k&63)), Dport: htons(80), Proto: 6,
		})
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

func htons(v uint16) uint16 { return v>>8 | v<<8 }

// Reference is the calibration program: parse Ethernet/IPv4/L4, one hash
// lookup on the 5-tuple, swap MACs, XDP_TX.
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
