package micro

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"go.uber.org/zap"

	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/internal/pkt"
	"github.com/straitlb/strait/model"
)

var (
	tcCIP    = netip.MustParseAddr("198.19.9.1")
	tcClient = netip.MustParseAddr("198.18.9.10")
)

// NewNoopTC builds the tc calibration program: return TCX_NEXT.
func NewNoopTC() (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()},
	})
	if err != nil {
		return nil, fmt.Errorf("load no-op tc program: %w", err)
	}
	return p, nil
}

// TCState is State plus the east-west services: "tc-self" maps a ClusterIP
// to itself (repeats hit one conntrack entry, the packet unchanged),
// "tc-new" has ten backends.
func TCState() model.State {
	s := State()
	var bes []model.Backend
	for i := range 10 {
		bes = append(bes, model.Backend{Addr: netip.AddrFrom4([4]byte{198, 18, 9, byte(100 + i)}), Port: 8080, Local: true})
	}
	s.Services = append(s.Services,
		model.Service{Name: model.ServiceName{Namespace: "micro", Name: "tc-self"},
			Frontends: []model.Frontend{{Addr: tcCIP, Port: 80, Proto: model.TCP, Kind: model.ClusterIP}},
			Backends:  []model.Backend{{Addr: tcCIP, Port: 80, Local: true}}},
		model.Service{Name: model.ServiceName{Namespace: "micro", Name: "tc-new"},
			Frontends: []model.Frontend{{Addr: tcCIP, Port: 81, Proto: model.TCP, Kind: model.ClusterIP}},
			Backends:  bes},
	)
	s.Canonicalize()
	return s
}

func podFrame(dst netip.Addr, sport, dport uint16, flags uint8) []byte {
	return pkt.Frame{SrcMAC: mac1, DstMAC: mac2, Src: tcClient, Dst: dst, SPort: sport, DPort: dport, Proto: 6, Flags: flags}.Bytes()
}

// RunTC measures the per-packet east-west program (tc ingress of a pod's
// device) next to a no-op tc program measured the same way in the same
// run.
func RunTC(log *zap.Logger, dp *loader.Datapath, o Options) ([]Result, error) {
	o = o.withDefaults()
	prog, err := program.New(log, dp.Maps, program.Config{})
	if err != nil {
		return nil, err
	}
	if err := prog.SetIfaces(nil); err != nil {
		return nil, err
	}
	if res, err := prog.Apply(TCState()); err != nil || len(res.Failed) > 0 {
		return nil, fmt.Errorf("program micro state: %v %v", err, res.Failed)
	}
	noop, err := NewNoopTC()
	if err != nil {
		return nil, err
	}
	defer noop.Close()
	tc := dp.Objects().StraitTcPod

	frames := make([][]byte, o.Singles)
	for i := range frames {
		frames[i] = podFrame(tcCIP, uint16(1024+i%60000), 81, pkt.SYN)
	}
	out, err := measure(tc, noop, refs{}, o, paths{
		prefix: "tc: ", syn: podFrame(tcCIP, 40000, 80, pkt.SYN), est: podFrame(tcCIP, 40000, 80, pkt.ACK),
		miss: podFrame(netip.MustParseAddr("198.18.9.200"), 1, 8080, pkt.ACK), news: frames,
		newName: "new flow (CT miss+2 inserts)",
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
