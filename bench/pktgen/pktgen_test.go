package pktgen

import (
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/internal/netlab"
	"github.com/straitlb/strait/internal/pkt"
)

var (
	macA = pkt.MAC("02:00:00:00:00:01")
	macB = pkt.MAC("02:00:00:00:00:02")
	svc0 = netip.MustParseAddr("198.19.0.16")
)

func TestFrameSizesAndChecksums(t *testing.T) {
	for _, tc := range []struct {
		tr   Traffic
		want int
	}{
		{Traffic{DstBase: svc0, DPort: 80}, 54},
		{Traffic{Proto: UDP, DstBase: svc0, DPort: 53}, 42},
		{Traffic{DstBase: svc0, DPort: 80, Size: 64}, 64},
		{Traffic{Proto: UDP, DstBase: svc0, DPort: 53, Size: 512}, 512},
		{Traffic{DstBase: svc0, DPort: 80, Size: 1514, New: true}, 1514},
	} {
		b, err := tc.tr.Frame(macA, macB)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != tc.want {
			t.Errorf("%+v: %d bytes, want %d", tc.tr, len(b), tc.want)
		}
		if err := pkt.VerifyChecksums(b); err != nil {
			t.Errorf("%+v: %v", tc.tr, err)
		}
		if tc.tr.Proto != UDP {
			if flags := b[14+20+13]; (flags&pkt.SYN != 0) != tc.tr.New {
				t.Errorf("%+v: TCP flags %#x", tc.tr, flags)
			}
		}
	}
	if _, err := (Traffic{Proto: "sctp", DstBase: svc0}).Frame(macA, macB); err == nil {
		t.Error("sctp accepted")
	}
	if _, err := (Traffic{DstBase: svc0, Size: 9000}).Frame(macA, macB); err == nil {
		t.Error("jumbo frame accepted")
	}
}

func TestFlowOf(t *testing.T) {
	tr := Traffic{DstBase: svc0, DPort: 80, Flows: 100, Services: 7}
	src, sport, dst := FlowOf(tr, 103)
	if src != DefaultSrcBase || sport != 1024+3 || dst != netip.MustParseAddr("198.19.0.19") {
		t.Errorf("flow 103: %s:%d -> %s", src, sport, dst)
	}
	tr.New = true
	src, sport, _ = FlowOf(tr, 60001)
	if src != netip.MustParseAddr("100.64.0.2") || sport != 1025 {
		t.Errorf("new flow 60001: %s:%d", src, sport)
	}
	if got := addAddr(netip.MustParseAddr("10.0.0.255"), 1); got != netip.MustParseAddr("10.0.1.0") {
		t.Errorf("addAddr carry: %s", got)
	}
}

// The generator program rewrites flows exactly as FlowOf says, with valid
// checksums (a plain test run, output compared).
func TestPrivilegedGeneratorRewrites(t *testing.T) {
	netlab.RequirePrivileged(t)
	o, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	// One CPU: the program offsets each CPU's sequence.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	set.Set(0)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &old)
	for _, tr := range []Traffic{
		{DstBase: svc0, DPort: 80, Flows: 50, Services: 5, Size: 100},
		{Proto: UDP, DstBase: svc0, DPort: 53, New: true, Services: 3},
	} {
		in, err := tr.Frame(macA, macB)
		if err != nil {
			t.Fatal(err)
		}
		if err := Configure(o, tr, in); err != nil {
			t.Fatal(err)
		}
		if err := o.GenSeq.Put(uint32(0), make([]uint64, ebpf.MustPossibleCPU())); err != nil {
			t.Fatal(err)
		}
		in[20]++ // damage the page: the template must be rewritten
		in[22] = 1
		for i := range 70 {
			out := make([]byte, len(in))
			ret, err := o.BenchGen.Run(&ebpf.RunOptions{Data: in, DataOut: out})
			if err != nil {
				t.Fatal(err)
			}
			if ret != 3 { // XDP_TX
				t.Fatalf("verdict %d", ret)
			}
			if err := pkt.VerifyChecksums(out); err != nil {
				t.Fatalf("%+v packet %d: %v", tr, i, err)
			}
			src, sport, dst := FlowOf(tr, uint64(i))
			gotSrc := netip.AddrFrom4([4]byte(out[26:30]))
			gotDst := netip.AddrFrom4([4]byte(out[30:34]))
			gotSport := binary.BigEndian.Uint16(out[34:36])
			if gotSrc != src || gotDst != dst || gotSport != sport {
				t.Fatalf("%+v packet %d: %s:%d -> %s, want %s:%d -> %s", tr, i, gotSrc, gotSport, gotDst, src, sport, dst)
			}
			in = out // in live mode the page keeps what was done to it
		}
	}
}

// Live frames through a node that forwards in the kernel stack: every
// frame sent is forwarded back and counted by the sink.
func TestPrivilegedLiveFramesKernelForwarding(t *testing.T) {
	l := netlab.NewT(t)
	n, err := NewNodeLab(l)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := n.AttachSink(o); err != nil {
		t.Fatal(err)
	}
	if err := n.AttachNodePass(); err != nil {
		t.Fatal(err)
	}
	tr := Traffic{DstBase: netip.MustParseAddr("198.18.5.1"), DPort: 80, Flows: 64, Services: 4}
	frame, err := n.Frame(tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := Configure(o, tr, frame); err != nil {
		t.Fatal(err)
	}
	ro := n.RunOptions(frame)
	ro.Packets = 20000
	before, _ := ReadSink(o)
	res, err := Run(context.Background(), o.BenchGen, ro)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if os.Getenv("PKTGEN_DEBUG") != "" {
		for _, ns := range []*netlab.NS{n.Gen, n.Node} {
			out, _ := ns.Run("ip", "-s", "-s", "link")
			t.Log(out)
			out, _ = ns.Run("nstat", "-az")
			t.Log(out)
		}
	}
	after, err := ReadSink(o)
	if err != nil {
		t.Fatal(err)
	}
	got := after.Sub(before)
	t.Logf("sent %d in %s, sink %+v", res.Sent, res.Elapsed, got)
	if res.Sent != 20000 || got.Matched < res.Sent*9/10 {
		t.Fatalf("sent %d, forwarded %d", res.Sent, got.Matched)
	}
	if bad, err := n.Node.ChecksumErrors(); err != nil || !bad.IsZero() {
		t.Fatalf("checksum errors in the node: %+v %v", bad, err)
	}
}
