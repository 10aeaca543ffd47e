package micro

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"go.uber.org/zap"

	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/internal/pkt"
	"github.com/straitlb/strait/model"
)

// Result is one measured path.
type Result struct {
	Name   string  `json:"name"`
	Scale  string  `json:"scale,omitempty"`
	Method string  `json:"method"`  // "repeat" or "single"
	Ns     float64 `json:"ns"`      // per packet, no-op included for "repeat"
	NoopNs float64 `json:"noop_ns"` // the no-op measured the same way
	Ratio  float64 `json:"ratio"`   // Ns / NoopNs
	// RefNs is the reference program (bench_calib: parse, one hash
	// lookup, XDP_TX) measured the same way; RatioRef = Ns / RefNs.
	RefNs    float64 `json:"ref_ns,omitempty"`
	RatioRef float64 `json:"ratio_ref,omitempty"`
	Packets  int     `json:"packets"`
}

func (r Result) String() string {
	s := fmt.Sprintf("%-28s %-7s %8.1f ns/pkt  no-op %6.1f ns  ratio %5.2f", r.Name, r.Method, r.Ns, r.NoopNs, r.Ratio)
	if r.RefNs > 0 {
		s += fmt.Sprintf("  ref %6.1f ns  ratio %5.2f", r.RefNs, r.RatioRef)
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

func repeat(p *ebpf.Program, data []byte, n int) (float64, error) {
	_, d, err := p.Benchmark(data, n, nil)
	if err != nil {
		return 0, fmt.Errorf("benchmark: %w", err)
	}
	return float64(d.Nanoseconds()), nil
}

// single runs prog once on each of frames (cycling) n times and returns the
// mean of the kernel's own timing of each run (BPF_PROG_TEST_RUN measures
// inside the kernel, so syscall overhead is left out; a timer read per run
// remains, and the no-op measured the same way carries it too).
func single(prog *ebpf.Program, frames [][]byte, n int) (float64, error) {
	var total time.Duration
	for i := range n {
		_, d, err := prog.Benchmark(frames[i%len(frames)], 1, nil)
		if err != nil {
			return 0, fmt.Errorf("benchmark: %w", err)
		}
		total += d
	}
	return float64(total.Nanoseconds()) / float64(n), nil
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

// measure runs prog and the no-op on ps: established and miss with the
// repeat method, new flows (and optionally established) with single runs.
// It also returns the no-op's cost by each method.
func measure(prog, noop *ebpf.Program, o Options, ps paths) (out []Result, noopRepeat, noopSingle float64, err error) {
	if _, _, err = prog.Benchmark(ps.syn, 1, nil); err != nil {
		return nil, 0, 0, err
	}
	if noopRepeat, err = repeat(noop, ps.est, o.Repeat); err != nil {
		return nil, 0, 0, err
	}
	add := func(name, method string, ns, base float64, n int) {
		out = append(out, Result{Name: ps.prefix + name, Method: method, Ns: ns, NoopNs: base, Ratio: ns / base, Packets: n})
	}
	for _, c := range []struct {
		name  string
		frame []byte
	}{{"established flow", ps.est}, {"not a service (pass)", ps.miss}} {
		ns, err := repeat(prog, c.frame, o.Repeat)
		if err != nil {
			return nil, 0, 0, err
		}
		add(c.name, "repeat", ns, noopRepeat, o.Repeat)
	}
	if noopSingle, err = single(noop, ps.news, o.Singles); err != nil {
		return nil, 0, 0, err
	}
	if ps.estSingle {
		ns, err := single(prog, [][]byte{ps.est}, o.Singles)
		if err != nil {
			return nil, 0, 0, err
		}
		add("established flow", "single", ns, noopSingle, o.Singles)
	}
	ns, err := single(prog, ps.news, o.Singles)
	if err != nil {
		return nil, 0, 0, err
	}
	add(ps.newName, "single", ns, noopSingle, o.Singles)
	return out, noopRepeat, noopSingle, nil
}

// Run programs State into dp's maps and measures.
func Run(log *zap.Logger, dp *loader.Datapath, o Options) ([]Result, error) {
	if o.Repeat == 0 {
		o.Repeat = 1000000
	}
	if o.Singles == 0 {
		o.Singles = 20000
	}
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
	}
	est := frame(40000, 80, pkt.ACK)
	out, noopNs, noop1, err := measure(xdp, noop, o, paths{
		syn: frame(40000, 80, pkt.SYN), est: est, estSingle: true, news: frames,
		miss:    pkt.Frame{SrcMAC: mac1, DstMAC: mac2, Src: client, Dst: netip.MustParseAddr("192.0.2.250"), SPort: 1, DPort: 22, Proto: 6, Flags: pkt.ACK}.Bytes(),
		newName: "new flow (CT miss+insert)",
	})
	if err != nil {
		return nil, err
	}
	if o.Ref != nil {
		if err := o.Ref.Insert(append([][]byte{est}, frames...)); err != nil {
			return nil, err
		}
		refRepeat, err := repeat(o.Ref.Prog, est, o.Repeat)
		if err != nil {
			return nil, err
		}
		refSingle, err := single(o.Ref.Prog, frames, o.Singles)
		if err != nil {
			return nil, err
		}
		for i := range out {
			out[i].RefNs = refRepeat
			if out[i].Method == "single" {
				out[i].RefNs = refSingle
			}
			out[i].RatioRef = out[i].Ns / out[i].RefNs
		}
		out = append(out,
			Result{Name: "reference (parse+hash+TX)", Method: "repeat", Ns: refRepeat, NoopNs: noopNs, Ratio: refRepeat / noopNs, RefNs: refRepeat, RatioRef: 1, Packets: o.Repeat},
			Result{Name: "reference (parse+hash+TX)", Method: "single", Ns: refSingle, NoopNs: noop1, Ratio: refSingle / noop1, RefNs: refSingle, RatioRef: 1, Packets: o.Singles})
	}
	for i := range out {
		out[i].Scale = ScaleName(o)
	}
	return out, nil
}
