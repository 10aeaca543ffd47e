package bgpbench

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bgpMsg frames a BGP message body.
func bgpMsg(typ byte, body []byte) []byte {
	m := make([]byte, 19, 19+len(body))
	for i := range 16 {
		m[i] = 0xff
	}
	binary.BigEndian.PutUint16(m[16:], uint16(19+len(body)))
	m[18] = typ
	return append(m, body...)
}

func encPrefixes(ps ...string) []byte {
	var b []byte
	for _, s := range ps {
		p := netip.MustParsePrefix(s)
		a := p.Addr().As4()
		b = append(b, byte(p.Bits()))
		b = append(b, a[:(p.Bits()+7)/8]...)
	}
	return b
}

// update builds an UPDATE withdrawing w and announcing a (with a dummy
// attribute block).
func update(w, a []string) []byte {
	wb, nb := encPrefixes(w...), encPrefixes(a...)
	attrs := []byte{0x40, 1, 1, 0} // ORIGIN IGP
	if len(a) == 0 {
		attrs = nil
	}
	body := binary.BigEndian.AppendUint16(nil, uint16(len(wb)))
	body = append(body, wb...)
	body = binary.BigEndian.AppendUint16(body, uint16(len(attrs)))
	body = append(body, attrs...)
	return bgpMsg(bgpMsgUpdate, append(body, nb...))
}

type seen struct {
	p   string
	add bool
}

func collectEmit(out *[]seen) func(netip.Prefix, bool) {
	return func(p netip.Prefix, add bool) { *out = append(*out, seen{p.String(), add}) }
}

func TestParseUpdate(t *testing.T) {
	var got []seen
	msg := update([]string{"198.18.0.1/32", "10.0.0.0/8"}, []string{"198.18.1.2/32", "0.0.0.0/0", "192.168.128.0/17"})
	if err := parseUpdate(msg[19:], collectEmit(&got)); err != nil {
		t.Fatal(err)
	}
	want := []seen{{"198.18.0.1/32", false}, {"10.0.0.0/8", false}, {"198.18.1.2/32", true}, {"0.0.0.0/0", true}, {"192.168.128.0/17", true}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, bad := range [][]byte{
		{0, 1},                    // short
		{0, 9, 32, 1, 2, 3, 4},    // withdrawn length overruns
		{0, 0, 0, 5, 1},           // attributes overrun
		{0, 2, 33, 1, 0, 0},       // /33
		{0, 0, 0, 0, 24, 10, 0},   // NLRI prefix cut short
		{0, 5, 32, 1, 2, 3, 0, 0}, // withdrawn prefix cut short
	} {
		if err := parseUpdate(bad, func(netip.Prefix, bool) {}); err == nil {
			t.Errorf("parseUpdate(%v) accepted", bad)
		}
	}
}

func TestBGPStream(t *testing.T) {
	open := bgpMsg(1, make([]byte, 10))
	keepalive := bgpMsg(4, nil)
	u1 := update(nil, []string{"198.18.0.1/32"})
	u2 := update([]string{"198.18.0.1/32"}, nil)
	u3 := update(nil, []string{"198.18.0.2/32", "198.18.0.3/32"})
	stream := slices.Concat(open, keepalive, u1, u2, u3)

	feed := func(segs [][2]int, order []int) []seen {
		t.Helper()
		var got []seen
		var s bgpStream
		const isn = 0xfffffff0 // wraps around mid-stream
		if err := s.segment(isn, true, nil, collectEmit(&got)); err != nil {
			t.Fatal(err)
		}
		for _, i := range order {
			seg := segs[i]
			if err := s.segment(isn+1+uint32(seg[0]), false, stream[seg[0]:seg[1]], collectEmit(&got)); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	want := []seen{{"198.18.0.1/32", true}, {"198.18.0.1/32", false}, {"198.18.0.2/32", true}, {"198.18.0.3/32", true}}

	// One byte at a time, in order.
	var bytes [][2]int
	var order []int
	for i := range stream {
		bytes = append(bytes, [2]int{i, i + 1})
		order = append(order, i)
	}
	if got := feed(bytes, order); !slices.Equal(got, want) {
		t.Fatalf("bytewise: got %v", got)
	}
	// Out of order with a retransmission overlapping new data.
	n := len(stream)
	segs := [][2]int{{0, 20}, {20, 50}, {50, n - 7}, {n - 7, n}, {10, 60}}
	if got := feed(segs, []int{0, 2, 3, 1, 4}); !slices.Equal(got, want) {
		t.Fatalf("reordered: got %v", got)
	}
	// Whole, then retransmitted whole: no duplicate events.
	if got := feed([][2]int{{0, n}}, []int{0, 0}); !slices.Equal(got, want) {
		t.Fatalf("retransmitted: got %v", got)
	}

	// A bad marker breaks the stream until the next SYN.
	var s bgpStream
	var got []seen
	s.segment(100, true, nil, collectEmit(&got))
	bad := slices.Clone(u1)
	bad[3] = 0
	if err := s.segment(101, false, bad, collectEmit(&got)); err == nil || !s.broken {
		t.Fatalf("bad marker: err %v broken %v", err, s.broken)
	}
	if err := s.segment(101+uint32(len(bad)), false, u1, collectEmit(&got)); err != nil || len(got) != 0 {
		t.Fatalf("broken stream: err %v events %v", err, got)
	}
	s.segment(500, true, nil, collectEmit(&got))
	if err := s.segment(501, false, u1, collectEmit(&got)); err != nil || len(got) != 1 {
		t.Fatalf("after SYN: err %v events %v", err, got)
	}
	// Data before any SYN is ignored (the message boundary is unknown).
	var late bgpStream
	if err := late.segment(7, false, u1, collectEmit(&got)); err != nil || len(got) != 1 {
		t.Fatalf("no SYN: err %v events %v", err, got)
	}
}

func TestBGPStreamGapLimit(t *testing.T) {
	var s bgpStream
	s.segment(0, true, nil, func(netip.Prefix, bool) {})
	var err error
	for i := 0; i <= maxOOO && err == nil; i++ {
		err = s.segment(uint32(100+10*i), false, make([]byte, 10), func(netip.Prefix, bool) {})
	}
	if err == nil || !s.broken {
		t.Fatalf("a gap that never fills: err %v", err)
	}
}

// ipv4TCP builds an IPv4/TCP packet.
func ipv4TCP(src, dst string, sport, dport uint16, seq uint32, flags byte, payload []byte) []byte {
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+20+len(payload)))
	ip[8], ip[9] = 64, unix.IPPROTO_TCP
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12], tcp[13] = 5<<4, flags
	return slices.Concat(ip, tcp, payload, []byte{0, 0}) // trailing padding
}

func TestParseIPv4TCP(t *testing.T) {
	pkt := ipv4TCP("192.0.2.11", "192.0.2.1", 40000, 179, 1234, 0x18, []byte("hello"))
	seg, ok := parseIPv4TCP(pkt)
	if !ok || seg.src.String() != "192.0.2.11" || seg.dst.String() != "192.0.2.1" || seg.srcPort != 40000 ||
		seg.dstPort != 179 || seg.seq != 1234 || seg.syn || string(seg.payload) != "hello" {
		t.Fatalf("parseIPv4TCP = %+v, %v", seg, ok)
	}
	syn := ipv4TCP("192.0.2.11", "192.0.2.1", 40000, 179, 99, 0x02, nil)
	if seg, ok := parseIPv4TCP(syn); !ok || !seg.syn || len(seg.payload) != 0 {
		t.Fatalf("SYN = %+v, %v", seg, ok)
	}
	udp := slices.Clone(pkt)
	udp[9] = unix.IPPROTO_UDP
	frag := slices.Clone(pkt)
	frag[6] = 0x20 // more fragments
	for name, p := range map[string][]byte{"udp": udp, "fragment": frag, "short": pkt[:30], "ipv6": {0x60, 0, 0, 0}} {
		if _, ok := parseIPv4TCP(p); ok {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestCapturePacket(t *testing.T) {
	tl := newTimeline()
	c := &capture{tl: tl, from: netip.MustParseAddr("192.0.2.11"), streams: make(map[[2]uint16]*bgpStream)}
	at := time.Unix(1000, 0)
	u := update(nil, []string{"198.18.0.5/32"})
	c.packet(ipv4TCP("192.0.2.11", "192.0.2.1", 40000, 179, 10, 0x02, nil), at)
	c.packet(ipv4TCP("192.0.2.1", "192.0.2.11", 179, 40000, 10, 0x18, u), at) // other direction
	c.packet(ipv4TCP("192.0.2.11", "192.0.2.1", 40000, 22, 11, 0x18, u), at)  // not BGP
	c.packet(ipv4TCP("192.0.2.11", "192.0.2.1", 40000, 179, 11, 0x18, u), at.Add(time.Millisecond))
	got, ok := tl.first(Prefix(5), true, at)
	if !ok || !got.Equal(at.Add(time.Millisecond)) || c.Err() != nil {
		t.Fatalf("first = %v %v, err %v", got, ok, c.Err())
	}
	if _, ok := tl.first(Prefix(5), false, at); ok {
		t.Fatal("withdrawal recorded")
	}
}

func TestPacketTime(t *testing.T) {
	now := time.Unix(2000, 500)
	stamp := func(t time.Time) []byte {
		ts := unix.NsecToTimespec(t.UnixNano())
		b := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(ts))))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS
		h.SetLen(unix.CmsgLen(int(unsafe.Sizeof(ts))))
		*(*unix.Timespec)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = ts
		return b
	}
	if got := packetTime(stamp(now.Add(-3*time.Millisecond)), now); !got.Equal(now.Add(-3 * time.Millisecond)) {
		t.Fatalf("packetTime = %v", got)
	}
	if got := packetTime(stamp(now.Add(-time.Hour)), now); !got.Equal(now) {
		t.Fatalf("implausible stamp used: %v", got)
	}
	if got := packetTime(nil, now); !got.Equal(now) {
		t.Fatalf("no stamp: %v", got)
	}
}

func TestTimeline(t *testing.T) {
	tl := newTimeline()
	t0 := time.Unix(100, 0)
	p := Prefix(3)
	tl.record(p, true, t0.Add(30*time.Millisecond))
	tl.record(p, true, t0.Add(10*time.Millisecond)) // out of order
	tl.record(p, false, t0.Add(20*time.Millisecond))
	if at, ok := tl.first(p, true, t0); !ok || at != t0.Add(10*time.Millisecond) {
		t.Fatalf("first = %v %v", at, ok)
	}
	if at, ok := tl.first(p, true, t0.Add(11*time.Millisecond)); !ok || at != t0.Add(30*time.Millisecond) {
		t.Fatalf("first after = %v %v", at, ok)
	}
	if _, ok := tl.first(p, true, t0.Add(31*time.Millisecond)); ok {
		t.Fatal("first past the end")
	}
	for i := range 3 {
		tl.record(Prefix(i), true, t0.Add(time.Duration(i+1)*time.Second))
	}
	if at, ok := tl.last(3, true, t0); !ok || at != t0.Add(3*time.Second) {
		t.Fatalf("last = %v %v", at, ok)
	}
	if _, ok := tl.last(5, true, t0); ok {
		t.Fatal("last with missing prefixes")
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		tl.record(Prefix(9), false, t0)
	}()
	if at, ok := tl.wait(t.Context(), Prefix(9), false, t0, 5*time.Second); !ok || at != t0 {
		t.Fatalf("wait = %v %v", at, ok)
	}
	if _, ok := tl.wait(t.Context(), Prefix(10), false, t0, 10*time.Millisecond); ok {
		t.Fatal("wait for nothing")
	}
}

func TestParseTxRoutes(t *testing.T) {
	log := `2026/11/27 14:53:35.063870 BGP: [YCKEM-GB33T] 192.0.2.11(vm) rcvd 198.18.0.2/32 IPv4 unicast
2026/11/27 14:53:35.113927 BGP: [KR6T7-EW7AS] bgp_zebra_announce: p=198.18.0.2/32, extra is NULL, no label
2026/11/27 14:53:35.113939 BGP: [V15FP-4CPVK] Tx route add VRF 0 198.18.0.2/32 metric 0 tag 0 count 1 nhg 0
2026/11/27 14:53:35.572911 BGP: [G7K80-KF0HM] Tx route delete VRF 0 198.18.0.2/32
2026/11/27 14:53:36 BGP: Tx route delete VRF 0 198.18.0.3/32
2026/11/27 14:53:36.5 ZEBRA: [X] Tx route delete VRF 0 198.18.0.4/32
garbage Tx route add VRF 0 198.18.0.5/32
`
	tl := newTimeline()
	loc := time.FixedZone("x", 3600)
	n, err := parseTxRoutes(strings.NewReader(log), loc, tl)
	if err != nil || n != 3 {
		t.Fatalf("parseTxRoutes = %d, %v", n, err)
	}
	since := time.Date(2026, 11, 27, 0, 0, 0, 0, loc)
	for _, c := range []struct {
		p    int
		add  bool
		want time.Time
	}{
		{2, true, time.Date(2026, 11, 27, 14, 53, 35, 113939000, loc)},
		{2, false, time.Date(2026, 11, 27, 14, 53, 35, 572911000, loc)},
		{3, false, time.Date(2026, 11, 27, 14, 53, 36, 0, loc)},
	} {
		if at, ok := tl.first(Prefix(c.p), c.add, since); !ok || !at.Equal(c.want) {
			t.Errorf("prefix %d add %v: %v %v, want %v", c.p, c.add, at, ok, c.want)
		}
	}
	for _, p := range []int{4, 5} {
		if _, ok := tl.first(Prefix(p), false, since); ok {
			t.Errorf("prefix %d recorded", p)
		}
	}
}

func TestCollect(t *testing.T) {
	t0 := time.Unix(5000, 0)
	ms := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Millisecond))) }
	wire, table := newTimeline(), newTimeline()
	var changes []change
	// Change i starts at 1000*i ms; its UPDATE arrives 0.5 ms later, bgpd
	// hands it to zebra 50 ms after that and the kernel has it 10 ms later.
	for i := range 4 {
		s := float64(1000 * i)
		c := change{prefix: Prefix(i), add: i < 2, start: ms(s), returned: ms(s + 0.2), kernel: ms(s + 60.5)}
		changes = append(changes, c)
		wire.record(c.prefix, c.add, ms(s+0.5))
		table.record(c.prefix, c.add, ms(s+50.5))
	}
	add, del, notes := collect(changes, wire, table)
	if len(notes) != 0 {
		t.Fatalf("notes %v", notes)
	}
	for _, p := range []points{add, del} {
		want := func(got []time.Duration, ms float64) {
			t.Helper()
			d := time.Duration(ms * float64(time.Millisecond))
			if len(got) != 2 || got[0] != d || got[1] != d {
				t.Errorf("got %v, want 2 x %v", got, d)
			}
		}
		want(p.call, 0.2)
		want(p.receipt, 0.5)
		want(p.table, 50.5)
		want(p.kernel, 60.5)
		want(p.inBGPD, 50)
		want(p.inZebra, 10)
	}

	// A table time after the kernel time discredits the whole log.
	table.record(Prefix(4), true, ms(4100))
	changes = append(changes, change{prefix: Prefix(4), add: true, start: ms(4000), returned: ms(4000.2), kernel: ms(4060)})
	add, _, notes = collect(changes, wire, table)
	if len(add.table) != 0 || len(add.inZebra) != 0 || len(add.kernel) != 3 || len(add.receipt) != 2 || len(notes) != 2 {
		t.Fatalf("bad log: table %v receipt %v notes %q", add.table, add.receipt, notes)
	}
}

func TestJudge(t *testing.T) {
	ms := time.Millisecond
	r := Result{Prefixes: 10000, Speakers: []SpeakerResult{
		{Kind: KindStrait, Add: Stats{N: 50, P99: 63 * ms}, WithdrawReceipt: Stats{N: 50, P99: 2 * ms}, Bulk: 1100 * ms},
		{Kind: KindGoBGP, Add: Stats{N: 50, P99: 61 * ms}},
	}}
	ts := Judge(r)
	if len(ts) != 3 || !ts[0].Met || ts[0].Value != 2*ms || !ts[1].Met || ts[1].Value != 2*ms || ts[2].Met || ts[2].Value != 1100*ms {
		t.Fatalf("Judge = %+v", ts)
	}
	r.Speakers[0].WithdrawReceipt = Stats{N: 50, P99: 11 * ms}
	r.Speakers[0].Add.P99 = 72 * ms
	if ts := Judge(r); ts[0].Met || ts[1].Met {
		t.Fatalf("Judge = %+v", ts)
	}
	r.Speakers[0].WithdrawReceipt = Stats{}
	if ts := Judge(r); ts[1].Met || !strings.Contains(ts[1].Name, "not measured") {
		t.Fatalf("unmeasured: %+v", ts[1])
	}
	if ts := Judge(Result{Speakers: r.Speakers[1:]}); ts != nil {
		t.Fatalf("no Strait: %+v", ts)
	}
	r.Targets = Judge(r)
	if s := r.String(); !strings.Contains(s, "target: ") || !strings.Contains(s, "not measured") {
		t.Fatalf("String:\n%s", s)
	}
}
