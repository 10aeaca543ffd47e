package golden

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/straitlb/strait/dataplane/flowhash"
	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/dataplane/testrun"
	"github.com/straitlb/strait/internal/pkt"
	"github.com/straitlb/strait/model"
)

// East-west address plan on top of the fixture: ClusterIPs in
// 198.19.0.0/16, a client pod 198.18.1.20 behind pod0.
var (
	podClient = netip.MustParseAddr("198.18.1.20")
	cipLocal  = netip.MustParseAddr("198.19.0.10") // -> podA:8080 (local)
	cipRem    = netip.MustParseAddr("198.19.0.11") // -> podRem:8080 (remote)
	cipEmpty  = netip.MustParseAddr("198.19.0.20")
	cipDrop   = netip.MustParseAddr("198.19.0.30")
	cipSelf   = netip.MustParseAddr("198.19.0.40") // -> podClient:8080 (hairpin)
	hairpin   = program.DefaultHairpinAddr
	podMAC    = pkt.MAC("02:00:00:00:01:20")
	vethMAC   = pkt.MAC("02:00:00:00:01:01")
)

func ewState() model.State {
	tcp, udp := model.TCP, model.UDP
	drop := svc("ew-drop", []model.Frontend{fe(cipDrop, 80, tcp, model.ClusterIP)})
	drop.IfEmpty = model.Drop
	s := goldenState()
	s.Services = append(s.Services,
		svc("ew-local", []model.Frontend{fe(cipLocal, 80, tcp, model.ClusterIP), fe(cipLocal, 53, udp, model.ClusterIP)},
			model.Backend{Addr: podA, Port: 8080, Local: true}),
		svc("ew-remote", []model.Frontend{fe(cipRem, 80, tcp, model.ClusterIP)}, model.Backend{Addr: podRem, Port: 8080}),
		svc("ew-empty", []model.Frontend{fe(cipEmpty, 80, tcp, model.ClusterIP), fe(cipEmpty, 53, udp, model.ClusterIP)}),
		drop,
		svc("ew-self", []model.Frontend{fe(cipSelf, 80, tcp, model.ClusterIP)}, model.Backend{Addr: podClient, Port: 8080, Local: true}),
	)
	s.Canonicalize()
	return s
}

// fromPod builds a frame the pod sends to its host-side device.
func fromPod(src netip.Addr, sport uint16, dst netip.Addr, dport uint16, proto uint8, flags uint8) pkt.Frame {
	return pkt.Frame{SrcMAC: podMAC, DstMAC: vethMAC, Src: src, Dst: dst, SPort: sport, DPort: dport,
		Proto: proto, Flags: flags, Seq: 1000, Window: 64240}
}

type hook int

const (
	hookXDP    hook = iota // uplink XDP
	hookPod                // tc ingress of a pod device (pod0)
	hookEgress             // tc egress of the uplink
)

type ewStep struct {
	name    string
	hook    hook
	in      []byte
	verdict uint32
	out     []byte
}

func ewSteps() []ewStep {
	const tcp, udp = 6, 17
	b := func(f pkt.Frame) []byte { return f.Bytes() }

	syn := fromPod(podClient, 40000, cipLocal, 80, tcp, pkt.SYN)
	synOut := with(syn, func(f *pkt.Frame) { f.Dst, f.DPort = podA, 8080 })
	ack := with(syn, func(f *pkt.Frame) { f.Flags, f.Seq, f.Ack, f.Payload = pkt.ACK, 1001, 5001, []byte("GET /") })
	ackOut := with(ack, func(f *pkt.Frame) { f.Dst, f.DPort = podA, 8080 })
	// The local backend's reply, as it enters the host from podA's device.
	reply := pkt.Frame{SrcMAC: podMAC, DstMAC: vethMAC, Src: podA, SPort: 8080, Dst: podClient, DPort: 40000,
		Proto: tcp, Flags: pkt.SYN | pkt.ACK, Seq: 5000, Ack: 1001, Window: 65160}
	replyOut := with(reply, func(f *pkt.Frame) { f.Src, f.SPort = cipLocal, 80 })

	usend := with(fromPod(podClient, 5000, cipLocal, 53, udp, 0), func(f *pkt.Frame) { f.Payload = []byte("query") })
	usendOut := with(usend, func(f *pkt.Frame) { f.Dst, f.DPort = podA, 8080 })

	rsyn := fromPod(podClient, 40001, cipRem, 80, tcp, pkt.SYN)
	rsynOut := with(rsyn, func(f *pkt.Frame) { f.Dst, f.DPort = podRem, 8080 })
	// The remote backend's reply arrives on the uplink: XDP translates
	// and passes it to the stack, which routes it to the client pod.
	rreply := pkt.Frame{SrcMAC: Node2MAC, DstMAC: NodeMAC, Src: podRem, SPort: 8080, Dst: podClient, DPort: 40001,
		Proto: tcp, Flags: pkt.SYN | pkt.ACK, Seq: 9000, Ack: 1001, Window: 65160}
	rreplyOut := with(rreply, func(f *pkt.Frame) { f.Src, f.SPort = cipRem, 80 })

	hsyn := fromPod(podClient, 40002, cipSelf, 80, tcp, pkt.SYN)
	hsynOut := with(hsyn, func(f *pkt.Frame) {
		f.SrcMAC, f.DstMAC = vethMAC, podMAC
		f.Src, f.Dst, f.DPort = hairpin, podClient, 8080
	})
	hreply := pkt.Frame{SrcMAC: podMAC, DstMAC: vethMAC, Src: podClient, SPort: 8080, Dst: hairpin, DPort: 40002,
		Proto: tcp, Flags: pkt.SYN | pkt.ACK, Seq: 7000, Ack: 1001, Window: 65160}
	hreplyOut := with(hreply, func(f *pkt.Frame) {
		f.SrcMAC, f.DstMAC = vethMAC, podMAC
		f.Src, f.SPort, f.Dst, f.DPort = cipSelf, 80, podClient, 40002
	})

	esyn := fromPod(podClient, 40003, cipEmpty, 80, tcp, pkt.SYN)
	esynOut := pkt.Frame{SrcMAC: vethMAC, DstMAC: podMAC, Src: cipEmpty, SPort: 80, Dst: podClient, DPort: 40003,
		Proto: tcp, Flags: pkt.RST | pkt.ACK, Ack: 1001}
	eudp := with(fromPod(podClient, 5001, cipEmpty, 53, udp, 0), func(f *pkt.Frame) { f.Payload = []byte("x") })
	eudpBytes := eudp.Bytes()
	eudpOut := pkt.Frame{SrcMAC: vethMAC, DstMAC: podMAC, Src: cipEmpty, Dst: podClient, Proto: 1,
		ICMPType: 3, ICMPCode: 3, Payload: eudpBytes[14 : 14+28]}

	// A host process: leaves by the uplink towards the default gateway.
	host := pkt.Frame{SrcMAC: NodeMAC, DstMAC: RouterMAC, Src: NodeIP, SPort: 41000, Dst: cipLocal, DPort: 80,
		Proto: tcp, Flags: pkt.SYN, Seq: 1000, Window: 64240}
	hostOut := with(host, func(f *pkt.Frame) { f.Dst, f.DPort = podA, 8080 })
	hostEmpty := with(host, func(f *pkt.Frame) { f.Dst, f.SPort = cipEmpty, 41001 })
	hostEmptyOut := pkt.Frame{SrcMAC: RouterMAC, DstMAC: NodeMAC, Src: cipEmpty, SPort: 80, Dst: NodeIP, DPort: 41001,
		Proto: tcp, Flags: pkt.RST | pkt.ACK, Ack: 1001}
	hostReply := pkt.Frame{SrcMAC: podMAC, DstMAC: vethMAC, Src: podA, SPort: 8080, Dst: NodeIP, DPort: 41000,
		Proto: tcp, Flags: pkt.SYN | pkt.ACK, Seq: 3000, Ack: 1001, Window: 65160}
	hostReplyOut := with(hostReply, func(f *pkt.Frame) { f.Src, f.SPort = cipLocal, 80 })

	other := fromPod(podClient, 40004, podRem, 8080, tcp, pkt.SYN)

	return []ewStep{
		{"pod: unrelated packet untouched", hookPod, b(other), testrun.TCXNext, nil},
		{"pod to ClusterIP, local backend: DNAT", hookPod, b(syn), testrun.TCXNext, b(synOut)},
		{"pod: established flow keeps its translation", hookPod, b(ack), testrun.TCXNext, b(ackOut)},
		{"pod: local backend's reply gets the ClusterIP back", hookPod, b(reply), testrun.TCXNext, b(replyOut)},
		{"pod: udp to ClusterIP", hookPod, b(usend), testrun.TCXNext, b(usendOut)},
		{"pod to ClusterIP, remote backend: DNAT only", hookPod, b(rsyn), testrun.TCXNext, b(rsynOut)},
		{"xdp: remote backend's reply translated and passed", hookXDP, b(rreply), testrun.XDPPass, b(rreplyOut)},
		{"pod to its own service: hairpin SNAT and bounce", hookPod, b(hsyn), testrun.TCXRedirect, b(hsynOut)},
		{"hairpin reply translated and bounced", hookPod, b(hreply), testrun.TCXRedirect, b(hreplyOut)},
		{"pod to empty service: RST back to the pod", hookPod, b(esyn), testrun.TCXRedirect, b(esynOut)},
		{"pod udp to empty service: ICMP port unreachable", hookPod, eudpBytes, testrun.TCXRedirect, b(eudpOut)},
		{"pod to Local-policy service without local endpoints: drop", hookPod, b(fromPod(podClient, 40005, cipDrop, 80, tcp, pkt.SYN)), testrun.TCXDrop, nil},
		{"pod to LB with source ranges, denied", hookPod, b(fromPod(podClient, 40006, lbSrc, 80, tcp, pkt.SYN)), testrun.TCXDrop, nil},
		{"host process to ClusterIP: DNAT and reroute", hookEgress, b(host), testrun.TCXRedirect, b(hostOut)},
		{"local backend's reply to the host process", hookPod, b(hostReply), testrun.TCXNext, b(hostReplyOut)},
		{"host process to empty service: RST into the host", hookEgress, b(hostEmpty), testrun.TCXRedirect, b(hostEmptyOut)},
	}
}

func ewSetup(t *testing.T) (*Fixture, *loader.Datapath, *program.Programmer, int) {
	t.Helper()
	fx, d, p := setup(t, ewState())
	var podIdx int
	if err := fx.NS.Do(func() error {
		var err error
		podIdx, err = ifindex("pod0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return fx, d, p, podIdx
}

// TestPrivilegedGoldenEastWest runs the per-packet east-west path: tc on a
// pod's host device, tc on the uplink's egress (host processes) and XDP
// for replies of remote backends.
func TestPrivilegedGoldenEastWest(t *testing.T) {
	fx, d, _, podIdx := ewSetup(t)
	objs := d.Objects()
	for _, s := range ewSteps() {
		var verdict uint32
		var out []byte
		err := fx.NS.Do(func() (err error) {
			switch s.hook {
			case hookPod:
				verdict, out, err = testrun.RunTCOn(objs.StraitTcPod, s.in, podIdx)
			case hookEgress:
				verdict, out, err = testrun.RunTCOn(objs.StraitTcEgress, s.in, fx.Ifindex)
			default:
				verdict, out, err = testrun.RunXDP(objs.StraitXdp, s.in, fx.Ifindex)
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if verdict != s.verdict {
			t.Errorf("%s: verdict %d, want %d", s.name, verdict, s.verdict)
			continue
		}
		if verdict == testrun.TCXDrop {
			continue
		}
		want := s.out
		if want == nil {
			want = s.in
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

// TestPrivilegedGoldenAffinity: ClientIP affinity on the XDP path and on
// the tc path. New flows from one client stick to the backend of the first
// one, although their own hash picks another; once the entry is older than
// the timeout, a new flow goes to its own hash pick.
func TestPrivilegedGoldenAffinity(t *testing.T) {
	fx, d, p, podIdx := ewSetup(t)
	objs := d.Objects()
	vip := netip.MustParseAddr("203.0.113.70")
	cip := netip.MustParseAddr("198.19.0.70")
	var bes []model.Backend
	var keys []model.BackendKey
	for i := range 4 {
		b := model.Backend{Addr: netip.AddrFrom4([4]byte{198, 18, 1, byte(100 + i)}), Port: 8080, Local: true}
		bes = append(bes, b)
		keys = append(keys, b.Key())
	}
	aff := svc("affinity", []model.Frontend{fe(vip, 80, model.TCP, model.LoadBalancer), fe(cip, 80, model.TCP, model.ClusterIP)}, bes...)
	aff.AffinityTimeout = 10 * time.Second
	st := ewState()
	st.Services = append(st.Services, aff)
	st.Canonicalize()
	if res, err := p.Apply(st); err != nil || len(res.Failed) > 0 {
		t.Fatalf("apply: %v %v", err, res.Failed)
	}
	for _, tc := range []struct {
		name   string
		client netip.Addr
		dst    netip.Addr
		frame  func(sport uint16) pkt.Frame
		run    func(frame []byte) (uint32, []byte, error)
	}{
		{"xdp", client, vip, func(sport uint16) pkt.Frame { return in(client, sport, vip, 80, 6, pkt.SYN) },
			func(f []byte) (uint32, []byte, error) { return testrun.RunXDP(objs.StraitXdp, f, fx.Ifindex) }},
		{"tc", podClient, cip, func(sport uint16) pkt.Frame { return fromPod(podClient, sport, cip, 80, 6, pkt.SYN) },
			func(f []byte) (uint32, []byte, error) { return testrun.RunTCOn(objs.StraitTcPod, f, podIdx) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pickOf := func(sport uint16) netip.Addr {
				t.Helper()
				var out []byte
				err := fx.NS.Do(func() (err error) { _, out, err = tc.run(tc.frame(sport).Bytes()); return err })
				if err != nil {
					t.Fatal(err)
				}
				return netip.AddrFrom4([4]byte(out[14+16 : 14+20]))
			}
			hashPick := func(sport uint16) netip.Addr {
				return expectedBackend(keys, tc.client, sport, 80, model.TCP).Addr
			}
			first := pickOf(20000)
			if first != hashPick(20000) {
				t.Fatalf("first flow went to %s, its hash pick is %s", first, hashPick(20000))
			}
			differ := 0
			for sport := uint16(20001); sport < 20040; sport++ {
				if got := pickOf(sport); got != first {
					t.Fatalf("flow from port %d went to %s, affinity says %s", sport, got, first)
				}
				if hashPick(sport) != first {
					differ++
				}
			}
			if differ == 0 {
				t.Fatal("every flow's own hash pick was the affinity backend: the test proves nothing")
			}
			// Age the entry beyond the timeout.
			m := objs.Affinity
			if tc.name == "tc" || tc.name == "xdp" {
				var k lbmap.AffinityKey
				var v lbmap.AffinityVal
				it := m.Iterate()
				n := 0
				for it.Next(&k, &v) {
					if k.Client != flowhash.Raw32(tc.client) {
						continue
					}
					v.LastSeen -= uint64(11 * time.Second)
					if err := m.Put(k, v); err != nil {
						t.Fatal(err)
					}
					n++
				}
				if n != 1 {
					t.Fatalf("%d affinity entries for %s, want 1", n, tc.client)
				}
			}
			for sport := uint16(20100); sport < 20200; sport++ {
				if hashPick(sport) == first {
					continue
				}
				if got := pickOf(sport); got != hashPick(sport) {
					t.Fatalf("after the timeout, flow from port %d went to %s, its hash pick is %s", sport, got, hashPick(sport))
				}
				return
			}
			t.Fatal("no port with a different hash pick")
		})
	}
}

func ifindex(name string) (int, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}
