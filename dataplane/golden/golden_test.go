package golden

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/straitlb/strait/dataplane/flowhash"
	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/dataplane/loader/loadertest"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/dataplane/testrun"
	"github.com/straitlb/strait/internal/pkt"
	"github.com/straitlb/strait/model"
)

var (
	client  = netip.MustParseAddr("198.51.100.10")
	denied  = netip.MustParseAddr("198.51.100.200")
	lbLocal = netip.MustParseAddr("203.0.113.10")
	lbRem   = netip.MustParseAddr("203.0.113.11")
	lbEmpty = netip.MustParseAddr("203.0.113.20")
	lbDrop  = netip.MustParseAddr("203.0.113.30")
	lbSrc   = netip.MustParseAddr("203.0.113.40")
	lbUDP   = netip.MustParseAddr("203.0.113.50")
	podA    = netip.MustParseAddr("198.18.1.10")
	podSrc  = netip.MustParseAddr("198.18.1.40")
	podDNS  = netip.MustParseAddr("198.18.1.53")
	podRem  = netip.MustParseAddr("198.18.2.10")
)

const snatMin, snatMax = 61000, 65535

func svc(name string, fes []model.Frontend, bes ...model.Backend) model.Service {
	return model.Service{Name: model.ServiceName{Namespace: "golden", Name: name}, Frontends: fes, Backends: bes}
}

func fe(a netip.Addr, port uint16, p model.Protocol, k model.FrontendKind) model.Frontend {
	return model.Frontend{Addr: a, Port: port, Proto: p, Kind: k}
}

func goldenState() model.State {
	tcp, udp := model.TCP, model.UDP
	drop := svc("drop", []model.Frontend{fe(lbDrop, 80, tcp, model.LoadBalancer)})
	drop.IfEmpty = model.Drop
	src := svc("src", []model.Frontend{fe(lbSrc, 80, tcp, model.LoadBalancer), fe(NodeIP, 30040, tcp, model.NodePort)},
		model.Backend{Addr: podSrc, Port: 80, Local: true})
	src.SourceRanges = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/25")}
	s := model.State{Services: []model.Service{
		svc("local", []model.Frontend{fe(NodeIP, 30080, tcp, model.NodePort), fe(lbLocal, 80, tcp, model.LoadBalancer)},
			model.Backend{Addr: podA, Port: 8080, Local: true}),
		svc("remote", []model.Frontend{fe(lbRem, 80, tcp, model.LoadBalancer)},
			model.Backend{Addr: podRem, Port: 8080}),
		svc("remote-udp", []model.Frontend{fe(lbRem, 53, udp, model.LoadBalancer)},
			model.Backend{Addr: podRem, Port: 5353}),
		svc("empty", []model.Frontend{fe(lbEmpty, 80, tcp, model.LoadBalancer)}),
		svc("empty-udp", []model.Frontend{fe(lbEmpty, 53, udp, model.LoadBalancer)}),
		drop,
		src,
		svc("dns", []model.Frontend{fe(lbUDP, 53, udp, model.LoadBalancer)},
			model.Backend{Addr: podDNS, Port: 5353, Local: true}),
	}}
	s.Canonicalize()
	return s
}

// in builds a frame arriving from the router.
func in(src netip.Addr, sport uint16, dst netip.Addr, dport uint16, proto uint8, flags uint8) pkt.Frame {
	return pkt.Frame{SrcMAC: RouterMAC, DstMAC: NodeMAC, Src: src, Dst: dst, SPort: sport, DPort: dport,
		Proto: proto, Flags: flags, Seq: 1000, Ack: 0, Window: 64240, Payload: nil}
}

// snatPort is the datapath's first choice of SNAT port (snat_reserve).
func snatPort(src netip.Addr, sport, dport uint16, backend netip.Addr) uint16 {
	h := flowhash.JHash3(flowhash.Raw32(src), uint32(flowhash.Raw16(sport))<<16|uint32(flowhash.Raw16(dport)),
		flowhash.Raw32(backend), flowhash.Seed)
	return uint16(snatMin + h%(snatMax-snatMin+1))
}

type step struct {
	name    string
	tc      bool // run the tc egress program instead of XDP
	in      []byte
	verdict uint32
	out     []byte // nil: the frame must come out unchanged
}

func with(f pkt.Frame, mod func(*pkt.Frame)) pkt.Frame { mod(&f); return f }

func steps() []step {
	const tcp, udp = 6, 17
	syn := in(client, 40000, NodeIP, 30080, tcp, pkt.SYN)
	synOut := with(syn, func(f *pkt.Frame) { f.Dst, f.DPort = podA, 8080 })
	ack := with(syn, func(f *pkt.Frame) {
		f.Flags = pkt.ACK
		f.Seq = 1001
		f.Ack = 5001
		f.Payload = []byte("GET / HTTP/1.1\r\n\r\n")
	})
	ackOut := with(ack, func(f *pkt.Frame) { f.Dst, f.DPort = podA, 8080 })
	reply := pkt.Frame{SrcMAC: RouterMAC, DstMAC: NodeMAC, Src: podA, SPort: 8080, Dst: client, DPort: 40000,
		Proto: tcp, Flags: pkt.SYN | pkt.ACK, Seq: 5000, Ack: 1001, Window: 65160}
	replyOut := with(reply, func(f *pkt.Frame) { f.Src, f.SPort = NodeIP, 30080 })

	vsyn := with(in(client, 40001, lbLocal, 80, tcp, pkt.SYN), func(f *pkt.Frame) { f.VLAN = 100 })
	vsynOut := with(vsyn, func(f *pkt.Frame) { f.Dst, f.DPort = podA, 8080 })

	port := snatPort(client, 40002, 80, podRem)
	rsyn := in(client, 40002, lbRem, 80, tcp, pkt.SYN)
	rsynOut := with(rsyn, func(f *pkt.Frame) {
		f.SrcMAC, f.DstMAC = NodeMAC, Node2MAC
		f.Src, f.SPort, f.Dst, f.DPort = NodeIP, port, podRem, 8080
		f.TTL = 63
	})
	rreply := pkt.Frame{SrcMAC: Node2MAC, DstMAC: NodeMAC, Src: podRem, SPort: 8080, Dst: NodeIP, DPort: port,
		Proto: tcp, Flags: pkt.SYN | pkt.ACK, Seq: 9000, Ack: 1001, Window: 65160}
	rreplyOut := with(rreply, func(f *pkt.Frame) {
		f.SrcMAC, f.DstMAC = NodeMAC, RouterMAC
		f.Src, f.SPort, f.Dst, f.DPort = lbRem, 80, client, 40002
		f.TTL = 63
	})
	uport := snatPort(client, 5000, 53, podRem)
	usend := with(in(client, 5000, lbRem, 53, udp, 0), func(f *pkt.Frame) { f.Payload = []byte("remote query") })
	usendOut := with(usend, func(f *pkt.Frame) {
		f.SrcMAC, f.DstMAC = NodeMAC, Node2MAC
		f.Src, f.SPort, f.Dst, f.DPort = NodeIP, uport, podRem, 5353
		f.TTL = 63
	})

	rstIn := in(client, 40003, lbEmpty, 80, tcp, pkt.SYN)
	rstOut := pkt.Frame{SrcMAC: NodeMAC, DstMAC: RouterMAC, Src: lbEmpty, SPort: 80, Dst: client, DPort: 40003,
		Proto: tcp, Flags: pkt.RST | pkt.ACK, Seq: 0, Ack: 1001}
	ackToEmpty := with(in(client, 40004, lbEmpty, 80, tcp, pkt.ACK), func(f *pkt.Frame) { f.Ack = 777; f.Payload = []byte("data") })
	ackToEmptyOut := pkt.Frame{SrcMAC: NodeMAC, DstMAC: RouterMAC, Src: lbEmpty, SPort: 80, Dst: client, DPort: 40004,
		Proto: tcp, Flags: pkt.RST, Seq: 777}
	udpEmpty := with(in(client, 5001, lbEmpty, 53, udp, 0), func(f *pkt.Frame) { f.Payload = []byte("is anyone there") })
	udpEmptyBytes := udpEmpty.Bytes()
	icmpOut := pkt.Frame{SrcMAC: NodeMAC, DstMAC: RouterMAC, Src: lbEmpty, Dst: client, Proto: 1,
		ICMPType: 3, ICMPCode: 3, Payload: udpEmptyBytes[14 : 14+28]}

	dnsIn := with(in(client, 5002, lbUDP, 53, udp, 0), func(f *pkt.Frame) { f.NoUDPChecksum = true; f.Payload = []byte("q") })
	dnsOut := with(dnsIn, func(f *pkt.Frame) { f.Dst, f.DPort = podDNS, 5353 })
	dnsCsum := with(in(client, 5003, lbUDP, 53, udp, 0), func(f *pkt.Frame) { f.Payload = []byte("query") })
	dnsCsumOut := with(dnsCsum, func(f *pkt.Frame) { f.Dst, f.DPort = podDNS, 5353 })

	srcOK := in(client, 40005, lbSrc, 80, tcp, pkt.SYN)
	srcOKOut := with(srcOK, func(f *pkt.Frame) { f.Dst = podSrc })
	srcNodePort := in(denied, 40006, NodeIP, 30040, tcp, pkt.SYN)
	srcNodePortOut := with(srcNodePort, func(f *pkt.Frame) { f.Dst, f.DPort = podSrc, 80 })

	b := func(f pkt.Frame) []byte { return f.Bytes() }
	synBytes := b(syn)
	return []step{
		{name: "arp passes", in: arpFrame(), verdict: testrun.XDPPass},
		{name: "ipv6 passes", in: ipv6Frame(), verdict: testrun.XDPPass},
		{name: "truncated vlan tag", in: mutate(synBytes[:16], func(p []byte) { p[12], p[13] = 0x81, 0x00 }), verdict: testrun.XDPPass},
		{name: "truncated ip header", in: synBytes[:14+12], verdict: testrun.XDPPass},
		{name: "ihl below 5", in: mutate(synBytes, func(p []byte) { p[14] = 0x44 }), verdict: testrun.XDPPass},
		{name: "tot_len beyond frame", in: mutate(synBytes, func(p []byte) { p[16], p[17] = 0x05, 0xdc }), verdict: testrun.XDPPass},
		{name: "truncated tcp header", in: truncIP(synBytes, 14+20+12), verdict: testrun.XDPPass},
		{name: "tcp doff below 5", in: mutate(synBytes, func(p []byte) { p[14+20+12] = 0x40 }), verdict: testrun.XDPPass},
		{name: "fragment passes", in: mutate(synBytes, func(p []byte) { p[14+6] = 0x20; fixIPCsum(p, 14) }), verdict: testrun.XDPPass},
		{name: "icmp to frontend passes", in: b(pkt.Frame{SrcMAC: RouterMAC, DstMAC: NodeMAC, Src: client, Dst: lbLocal, Proto: 1, ICMPType: 8}), verdict: testrun.XDPPass},
		{name: "unknown frontend passes", in: b(in(client, 40000, NodeIP, 22, tcp, pkt.SYN)), verdict: testrun.XDPPass},
		{name: "nodeport to local backend: DNAT and pass", in: synBytes, verdict: testrun.XDPPass, out: b(synOut)},
		{name: "established flow keeps its translation", in: b(ack), verdict: testrun.XDPPass, out: b(ackOut)},
		{name: "tc egress: local backend reply gets the frontend back", tc: true, in: b(reply), verdict: testrun.TCXNext, out: b(replyOut)},
		{name: "tc egress: unrelated packet untouched", tc: true, in: b(with(reply, func(f *pkt.Frame) { f.DPort = 40999 })), verdict: testrun.TCXNext},
		{name: "vlan tagged LB to local backend", in: b(vsyn), verdict: testrun.XDPPass, out: b(vsynOut)},
		{name: "LB to remote backend: DNAT+SNAT and TX", in: b(rsyn), verdict: testrun.XDPTX, out: b(rsynOut)},
		{name: "remote backend reply reverse translated", in: b(rreply), verdict: testrun.XDPTX, out: b(rreplyOut)},
		{name: "udp to remote backend", in: b(usend), verdict: testrun.XDPTX, out: b(usendOut)},
		{name: "no backend: tcp RST", in: b(rstIn), verdict: testrun.XDPTX, out: b(rstOut)},
		{name: "no backend: RST for ACK uses its ack number", in: b(ackToEmpty), verdict: testrun.XDPTX, out: b(ackToEmptyOut)},
		{name: "no backend: RST is never answered", in: b(in(client, 40007, lbEmpty, 80, tcp, pkt.RST)), verdict: testrun.XDPDrop},
		{name: "no backend: udp ICMP port unreachable", in: udpEmptyBytes, verdict: testrun.XDPTX, out: b(icmpOut)},
		{name: "no local backend under Local policy: drop", in: b(in(client, 40008, lbDrop, 80, tcp, pkt.SYN)), verdict: testrun.XDPDrop},
		{name: "udp without checksum stays without", in: b(dnsIn), verdict: testrun.XDPPass, out: b(dnsOut)},
		{name: "udp with checksum updated", in: b(dnsCsum), verdict: testrun.XDPPass, out: b(dnsCsumOut)},
		{name: "source range allows", in: b(srcOK), verdict: testrun.XDPPass, out: b(srcOKOut)},
		{name: "source range denies on the LB IP", in: b(in(denied, 40006, lbSrc, 80, tcp, pkt.SYN)), verdict: testrun.XDPDrop},
		{name: "source ranges do not apply to the NodePort", in: b(srcNodePort), verdict: testrun.XDPPass, out: b(srcNodePortOut)},
	}
}

func mutate(b []byte, f func([]byte)) []byte {
	c := bytes.Clone(b)
	f(c)
	return c
}

// truncIP cuts the frame to n bytes and fixes tot_len so only the L4
// header is short.
func truncIP(b []byte, n int) []byte {
	c := bytes.Clone(b[:n])
	tot := n - 14
	c[16], c[17] = byte(tot>>8), byte(tot)
	fixIPCsum(c, 14)
	return c
}

func fixIPCsum(p []byte, off int) {
	p[off+10], p[off+11] = 0, 0
	var s uint32
	for i := 0; i < 20; i += 2 {
		s += uint32(p[off+i])<<8 | uint32(p[off+i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	c := ^uint16(s)
	p[off+10], p[off+11] = byte(c>>8), byte(c)
}

func arpFrame() []byte {
	b := make([]byte, 42)
	copy(b, NodeMAC)
	copy(b[6:], RouterMAC)
	b[12], b[13] = 0x08, 0x06
	return b
}

func ipv6Frame() []byte {
	b := make([]byte, 14+40+20)
	copy(b, NodeMAC)
	copy(b[6:], RouterMAC)
	b[12], b[13] = 0x86, 0xdd
	b[14] = 0x60
	return b
}

// setup loads a private datapath, builds the fixture namespace and
// programs state.
func setup(t *testing.T, state model.State) (*Fixture, *loader.Datapath, *program.Programmer) {
	t.Helper()
	d := loadertest.Load(t, loadertest.PinDir(t))
	fx, err := NewFixture()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.NS.Close() })
	p, err := program.New(zaptest.NewLogger(t), d.Maps, program.Config{SNATPortMin: snatMin, SNATPortMax: snatMax})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetIfaces([]program.Iface{{Index: fx.Ifindex, SNATAddr: model.BackendKey{Addr: NodeIP}}}); err != nil {
		t.Fatal(err)
	}
	if res, err := p.Apply(state); err != nil || len(res.Failed) > 0 {
		t.Fatalf("apply: %v %v", err, res.Failed)
	}
	return fx, d, p
}

func TestPrivilegedGoldenPackets(t *testing.T) {
	fx, d, _ := setup(t, goldenState())
	objs := d.Objects()
	for _, s := range steps() {
		var verdict uint32
		var out []byte
		err := fx.NS.Do(func() (err error) {
			if s.tc {
				verdict, out, err = testrun.RunTC(objs.StraitTcEgress, s.in)
			} else {
				verdict, out, err = testrun.RunXDP(objs.StraitXdp, s.in, fx.Ifindex)
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := s.out
		if want == nil {
			want = s.in
		}
		if verdict != s.verdict {
			t.Errorf("%s: verdict %d, want %d", s.name, verdict, s.verdict)
			continue
		}
		if verdict == testrun.XDPDrop {
			continue
		}
		if !bytes.Equal(out, want) {
			gs, gerr := pkt.Summary(out)
			ws, _ := pkt.Summary(want)
			t.Errorf("%s: output differs\n got  %s (%v)\n%s\n want %s\n%s", s.name, gs, gerr, hex.Dump(out), ws, hex.Dump(want))
			continue
		}
		if s.out != nil {
			if err := pkt.VerifyChecksums(out); err != nil {
				t.Errorf("%s: %v", s.name, err)
			}
		}
	}
}
