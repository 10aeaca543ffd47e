package micro

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"go.uber.org/zap"

	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/internal/pkt"
	"github.com/straitlb/strait/model"
)

// Result is one measured path. Figures are medians over interleaved blocks
// (see Options.Blocks).
type Result struct {
	Name   string  `json:"name"`
	Scale  string  `json:"scale,omitempty"`
	Method string  `json:"method"`  // "repeat" or "single"
	Ns     float64 `json:"ns"`      // per packet, no-op included
	NoopNs float64 `json:"noop_ns"` // the no-op measured the same way
	Ratio  float64 `json:"ratio"`   // Ns / NoopNs
	// RefNs is the reference program (bench_calib: parse, one hash
	// lookup, XDP_TX) measured the same way, interleaved with the path,
	// on the same frames (every one a hit in its table); RatioRef = Ns /
	// RefNs. NetRatioRef compares the programs' own costs, the no-op's
	// taken off both: (Ns - NoopNs) / (RefNs - NoopNs).
	RefNs       float64 `json:"ref_ns,omitempty"`
	RatioRef    float64 `json:"ratio_ref,omitempty"`
	NetRatioRef float64 `json:"net_ratio_ref,omitempty"`
	// With a pre-filled conntrack table, the reference once more with its
	// table as large as conntrack and as full (RefFullNs), and the ratios
	// to it.
	RefFullNs       float64 `json:"ref_full_ns,omitempty"`
	RatioRefFull    float64 `json:"ratio_ref_full,omitempty"`
	NetRatioRefFull float64 `json:"net_ratio_ref_full,omitempty"`
	Packets         int     `json:"packets"`
}

func (r Result) String() string {
	s := fmt.Sprintf("%-28s %-7s %8.1f ns/pkt  no-op %6.1f ns  ratio %5.2f", r.Name, r.Method, r.Ns, r.NoopNs, r.Ratio)
	if r.RefNs > 0 {
		s += fmt.Sprintf("  ref %6.1f ns  ratio %5.2f (net %5.2f)", r.RefNs, r.RatioRef, r.NetRatioRef)
	}
	if r.RefFullNs > 0 {
		s += fmt.Sprintf("  full-table ref %6.1f ns  ratio %5.2f (net %5.2f)", r.RefFullNs, r.RatioRefFull, r.NetRatioRefFull)
	}
	if r.Scale != "" {
		s += "  [" + r.Scale + "]"
	}
	return s + fmt.Sprintf("  (%d packets)", r.Packets)
}

// Options size the run.
type Options struct {
	Repeat  int // repetitions for "repeat" (default 1e6)
	Singles int // runs for "single" (default 20000)
	// Blocks splits both into this many blocks (default 10), run in
	// turn with the no-op's and the reference's blocks, so that the
	// machine's drift (other load on a shared host) hits every program
	// alike; each figure is the median over the blocks.
	Blocks int
	// Services is the number of services programmed (at least the two
	// measured ones; the rest are fillers with BackendsPerService local
	// backends each, default 10). Conntrack pre-fills that many
	// conntrack entries before measuring.
	Services           int
	BackendsPerService int
	Conntrack          int
	// Ref, if set, is the reference program (bench_calib) with its map;
	// every figure is then also given as a ratio to it.
	Ref *Reference
}

var (
	vip    = netip.MustParseAddr("203.0.113.70")
	client = netip.MustParseAddr("198.51.100.10")
	mac1   = pkt.MAC("02:00:00:00:00:01")
	mac2   = pkt.MAC("02:00:00:00:00:11")
)

// NewNoop builds the calibration program: return XDP_PASS.
func NewNoop() (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
	})
	if err != nil {
		return nil, fmt.Errorf("load no-op program: %w", err)
	}
	return p, nil
}

// State is the micro-benchmark's services: "self" maps a frontend to a
// local backend with the same address and port, so a DNATed packet is
// unchanged and repeats hit the same conntrack entry; "new" has ten local
// backends.
func State() model.State {
	var bes []model.Backend
	for i := range 10 {
		bes = append(bes, model.Backend{Addr: netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}), Port: 8080, Local: true})
	}
	s := model.State{Services: []model.Service{
		{
			Name:      model.ServiceName{Namespace: "micro", Name: "self"},
			Frontends: []model.Frontend{{Addr: vip, Port: 80, Proto: model.TCP, Kind: model.LoadBalancer}},
			Backends:  []model.Backend{{Addr: vip, Port: 80, Local: true}},
		},
		{
			Name:      model.ServiceName{Namespace: "micro", Name: "new"},
			Frontends: []model.Frontend{{Addr: vip, Port: 81, Proto: model.TCP, Kind: model.LoadBalancer}},
			Backends:  bes,
		},
	}}
	s.Canonicalize()
	return s
}

func frame(sport, dport uint16, flags uint8) []byte {
	return pkt.Frame{SrcMAC: mac1, DstMAC: mac2, Src: client, Dst: vip, SPort: sport, DPort: dport, Proto: 6, Flags: flags}.Bytes()
}

// subject is one program measured on frames by one method.
type subject struct {
	prog   *ebpf.Program
	frames [][]byte // repeat: frames[0]; single: each in turn
	single bool
	blocks []float64
}

// interleave measures the subjects block by block, each subject's block b
// after the others' (the order rotating), n packets per subject in all.
// single: n test runs of one repetition each, in blocks of n/blocks, each
// timed by the kernel (BPF_PROG_TEST_RUN measures inside the kernel, so
// syscall overhead is left out; a timer read per run remains, and the
// no-op measured the same way carries it too); frames are used in turn,
// so distinct frames are each run once when there are n of them. repeat:
// one test run of n/blocks repetitions per block.
func interleave(ss []*subject, n, blocks int) error {
	per := max(n/blocks, 1)
	for b := range blocks {
		for j := range ss {
			s := ss[(b+j)%len(ss)]
			if !s.single {
				_, d, err := s.prog.Benchmark(s.frames[0], per, nil)
				if err != nil {
					return fmt.Errorf("benchmark: %w", err)
				}
				s.blocks = append(s.blocks, float64(d.Nanoseconds()))
				continue
			}
			var total time.Duration
			for i := range per {
				_, d, err := s.prog.Benchmark(s.frames[(b*per+i)%len(s.frames)], 1, nil)
				if err != nil {
					return fmt.Errorf("benchmark: %w", err)
				}
				total += d
			}
			s.blocks = append(s.blocks, float64(total.Nanoseconds())/float64(per))
		}
	}
	return nil
}

func (s *subject) median() float64 {
	x := slices.Clone(s.blocks)
	slices.Sort(x)
	if len(x) == 0 {
		return 0
	}
	if len(x)%2 == 1 {
		return x[len(x)/2]
	}
	return (x[len(x)/2-1] + x[len(x)/2]) / 2
}

// paths are the frames one program is measured with.
type paths struct {
	prefix    string   // of the result names
	syn       []byte   // creates the established flow
	est       []byte   // a packet of that flow
	estSingle bool     // also measure est with single runs
	miss      []byte   // not for a service
	news      [][]byte // distinct new flows
	newName   string
}

// refs are the reference programs a path is compared with: the reference
// and, at scale, the reference with a conntrack-sized full table.
type refs struct {
	ref, full *ebpf.Program
	fullName  string
}

// measure runs prog, the no-op and the references on ps: established and
// miss with the repeat method, new flows (and optionally established) with
// single runs, every group interleaved.
func measure(prog, noop *ebpf.Program, r refs, o Options, ps paths) ([]Result, error) {
	if _, _, err := prog.Benchmark(ps.syn, 1, nil); err != nil {
		return nil, err
	}
	type row struct {
		name    string
		s       *subject
		noop    *subject
		ref     *subject
		full    *subject
		packets int
	}
	var rows []row
	group := func(single bool, n int, frames [][]byte, paths ...struct {
		name   string
		frames [][]byte
	}) error {
		mk := func(p *ebpf.Program, f [][]byte) *subject {
			return &subject{prog: p, frames: f, single: single}
		}
		nop := mk(noop, frames)
		ss := []*subject{nop}
		var ref, full *subject
		if r.ref != nil {
			ref = mk(r.ref, frames)
			ss = append(ss, ref)
		}
		if r.full != nil {
			full = mk(r.full, frames)
			ss = append(ss, full)
		}
		var mine []row
		for _, p := range paths {
			s := mk(prog, p.frames)
			ss = append(ss, s)
			mine = append(mine, row{name: p.name, s: s, noop: nop, ref: ref, full: full, packets: n})
		}
		if err := interleave(ss, n, o.Blocks); err != nil {
			return err
		}
		rows = append(rows, mine...)
		if ref != nil {
			rows = append(rows, row{name: "reference (parse+hash+TX)", s: ref, noop: nop, ref: ref, full: full, packets: n})
		}
		if full != nil {
			rows = append(rows, row{name: r.fullName, s: full, noop: nop, ref: ref, full: full, packets: n})
		}
		return nil
	}
	type path = struct {
		name   string
		frames [][]byte
	}
	est := [][]byte{ps.est}
	if err := group(false, o.Repeat, est, path{"established flow", est}, path{"not a service (pass)", [][]byte{ps.miss}}); err != nil {
		return nil, err
	}
	if ps.estSingle {
		if err := group(true, o.Singles, est, path{"established flow", est}); err != nil {
			return nil, err
		}
	}
	// The references' rows come from the established-flow groups; here
	// they only give the new flows' ratios.
	n := len(rows)
	if err := group(true, min(o.Singles, len(ps.news)), ps.news, path{ps.newName, ps.news}); err != nil {
		return nil, err
	}
	rows = rows[:n+1]

	// The paths first, then the references.
	slices.SortStableFunc(rows, func(a, b row) int {
		ra, rb := strings.HasPrefix(a.name, "reference"), strings.HasPrefix(b.name, "reference")
		switch {
		case ra == rb:
			return 0
		case rb:
			return -1
		}
		return 1
	})
	var out []Result
	for _, w := range rows {
		method := "repeat"
		if w.s.single {
			method = "single"
		}
		res := Result{Name: w.name, Method: method, Ns: w.s.median(), NoopNs: w.noop.median(), Packets: w.packets}
		if !strings.HasPrefix(w.name, "reference") {
			res.Name = ps.prefix + res.Name
		}
		res.Ratio = res.Ns / res.NoopNs
		if w.ref != nil {
			res.RefNs = w.ref.median()
			res.RatioRef = res.Ns / res.RefNs
			res.NetRatioRef = (res.Ns - res.NoopNs) / (res.RefNs - res.NoopNs)
		}
		if w.full != nil {
			res.RefFullNs = w.full.median()
			res.RatioRefFull = res.Ns / res.RefFullNs
			res.NetRatioRefFull = (res.Ns - res.NoopNs) / (res.RefFullNs - res.NoopNs)
		}
		out = append(out, res)
	}
	return out, nil
}

// Run programs State into dp's maps and measures.
func Run(log *zap.Logger, dp *loader.Datapath, o Options) ([]Result, error) {
	o = o.withDefaults()
	prog, err := program.New(log, dp.Maps, program.Config{})
	if err != nil {
		return nil, err
	}
	if res, err := prog.Apply(ScaledState(o.Services, o.BackendsPerService)); err != nil || len(res.Failed) > 0 {
		return nil, fmt.Errorf("program micro state: %v %v", err, res.Failed)
	}
	if err := PrefillConntrack(dp, o.Conntrack); err != nil {
		return nil, err
	}
	noop, err := NewNoop()
	if err != nil {
		return nil, err
	}
	defer noop.Close()
	xdp := dp.Objects().StraitXdp

	frames := make([][]byte, o.Singles)
	for i := range frames {
		frames[i] = frame(uint16(1024+i%60000), 81, pkt.SYN)
		if i >= 60000 {
			frames[i] = pkt.Frame{SrcMAC: mac1, DstMAC: mac2, Src: netip.AddrFrom4([4]byte{198, 51, 100, byte(11 + i/60000)}),
				Dst: vip, SPort: uint16(1024 + i%60000), DPort: 81, Proto: 6, Flags: pkt.SYN}.Bytes()
		}
	}
	est := frame(40000, 80, pkt.ACK)
	var r refs
	if o.Ref != nil {
		measured := append([][]byte{est}, frames...)
		if err := o.Ref.Insert(measured); err != nil {
			return nil, err
		}
		r.ref = o.Ref.Prog
		if o.Conntrack > 0 {
			full, err := loadFullReference(dp.Objects().Conntrack.MaxEntries(), o.Conntrack, measured)
			if err != nil {
				return nil, err
			}
			defer full.Close()
			r.full = full.Prog
			r.fullName = fmt.Sprintf("reference, %d-entry table", o.Conntrack+len(measured))
		}
	}
	out, err := measure(xdp, noop, r, o, paths{
		syn: frame(40000, 80, pkt.SYN), est: est, estSingle: true, news: frames,
		miss:    pkt.Frame{SrcMAC: mac1, DstMAC: mac2, Src: client, Dst: netip.MustParseAddr("192.0.2.250"), SPort: 1, DPort: 22, Proto: 6, Flags: pkt.ACK}.Bytes(),
		newName: "new flow (CT miss+insert)",
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Scale = ScaleName(o)
	}
	return out, nil
}

func (o Options) withDefaults() Options {
	if o.Repeat == 0 {
		o.Repeat = 1000000
	}
	if o.Singles == 0 {
		o.Singles = 20000
	}
	if o.Blocks == 0 {
		o.Blocks = 10
	}
	return o
}
