package bgpbench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/internal/netlab"
)

// This file times BGP UPDATEs on the wire: a packet socket in the tor
// namespace sees every TCP segment the node sends to FRR, stamped by the
// kernel as it arrives on the tor's interface. The node -> tor byte stream
// is reassembled and cut into BGP messages; each UPDATE's withdrawn routes
// and NLRI become events at the time of the segment that completed the
// message, before bgpd has read it.

// bgpMsgUpdate is the BGP UPDATE message type.
const bgpMsgUpdate = 2

// bgpStream cuts one TCP direction of a BGP session into messages and
// reports the IPv4 prefixes each UPDATE withdraws or announces.
type bgpStream struct {
	next   uint32 // next expected sequence number
	synced bool   // next is known (a SYN was seen)
	buf    []byte // bytes from next on that do not yet form a message
	// ooo holds segments that arrived ahead of next (by sequence number).
	ooo    map[uint32][]byte
	broken bool // desynchronised: ignore data until the next SYN
}

// maxOOO bounds the segments held ahead of a gap: past it the stream is
// declared broken (the capture lost data).
const maxOOO = 4096

// segment feeds one TCP segment. emit is called per prefix of each UPDATE
// the segment completes. It returns an error when the stream cannot be
// followed any more (then it stays broken until a SYN).
func (s *bgpStream) segment(seq uint32, syn bool, payload []byte, emit func(p netip.Prefix, add bool)) error {
	if syn {
		*s = bgpStream{next: seq + 1, synced: true}
		// A SYN carries no data in a BGP session.
		return nil
	}
	if !s.synced || s.broken || len(payload) == 0 {
		return nil
	}
	if err := s.add(seq, payload, emit); err != nil {
		s.broken, s.buf, s.ooo = true, nil, nil
		return err
	}
	return nil
}

func (s *bgpStream) add(seq uint32, payload []byte, emit func(netip.Prefix, bool)) error {
	d := int32(seq - s.next)
	switch {
	case d > 0:
		if s.ooo == nil {
			s.ooo = make(map[uint32][]byte)
		}
		if len(s.ooo) >= maxOOO {
			return fmt.Errorf("capture lost data: %d segments after a gap", len(s.ooo))
		}
		s.ooo[seq] = append([]byte(nil), payload...)
		return nil
	case d < 0:
		// A retransmission, maybe overlapping new data.
		if int(-d) >= len(payload) {
			return nil
		}
		payload = payload[-d:]
	}
	s.buf = append(s.buf, payload...)
	s.next += uint32(len(payload))
	for len(s.ooo) > 0 {
		progressed := false
		for q, p := range s.ooo {
			dq := int32(q - s.next)
			if dq > 0 {
				continue
			}
			delete(s.ooo, q)
			progressed = true
			if int(-dq) < len(p) {
				p = p[-dq:]
				s.buf = append(s.buf, p...)
				s.next += uint32(len(p))
			}
		}
		if !progressed {
			break
		}
	}
	return s.messages(emit)
}

// messages consumes the complete messages at the head of buf.
func (s *bgpStream) messages(emit func(netip.Prefix, bool)) error {
	for len(s.buf) >= 19 {
		for _, b := range s.buf[:16] {
			if b != 0xff {
				return errors.New("BGP stream out of step: bad marker")
			}
		}
		n := int(binary.BigEndian.Uint16(s.buf[16:18]))
		if n < 19 || n > 65535 {
			return fmt.Errorf("BGP stream out of step: message length %d", n)
		}
		if len(s.buf) < n {
			break
		}
		if s.buf[18] == bgpMsgUpdate {
			if err := parseUpdate(s.buf[19:n], emit); err != nil {
				return err
			}
		}
		s.buf = s.buf[n:]
	}
	if len(s.buf) == 0 {
		s.buf = s.buf[:0:0] // drop a large backing array
	}
	return nil
}

// parseUpdate reports the IPv4 withdrawn routes (add false) and NLRI (add
// true) of an UPDATE body (after the 19-byte header). Multiprotocol
// attributes are not read: the benchmark's routes are plain IPv4 unicast.
func parseUpdate(body []byte, emit func(netip.Prefix, bool)) error {
	if len(body) < 4 {
		return errors.New("short UPDATE")
	}
	wl := int(binary.BigEndian.Uint16(body))
	if 2+wl+2 > len(body) {
		return errors.New("UPDATE withdrawn routes overrun")
	}
	withdrawn := body[2 : 2+wl]
	al := int(binary.BigEndian.Uint16(body[2+wl:]))
	if 4+wl+al > len(body) {
		return errors.New("UPDATE path attributes overrun")
	}
	nlri := body[4+wl+al:]
	if err := parsePrefixes(withdrawn, func(p netip.Prefix) { emit(p, false) }); err != nil {
		return err
	}
	return parsePrefixes(nlri, func(p netip.Prefix) { emit(p, true) })
}

// parsePrefixes decodes IPv4 (length, prefix) pairs (RFC 4271 4.3).
func parsePrefixes(b []byte, emit func(netip.Prefix)) error {
	for len(b) > 0 {
		bits := int(b[0])
		n := (bits + 7) / 8
		if bits > 32 || 1+n > len(b) {
			return fmt.Errorf("bad IPv4 prefix encoding (length %d)", bits)
		}
		var a [4]byte
		copy(a[:], b[1:1+n])
		p, err := netip.AddrFrom4(a).Prefix(bits)
		if err != nil {
			return err
		}
		emit(p)
		b = b[1+n:]
	}
	return nil
}

// tcpSegment is what the capture needs from an IPv4/TCP packet.
type tcpSegment struct {
	src, dst         netip.Addr
	srcPort, dstPort uint16
	seq              uint32
	syn              bool
	payload          []byte
}

// parseIPv4TCP decodes an IPv4 packet carrying TCP (no Ethernet header).
func parseIPv4TCP(pkt []byte) (tcpSegment, bool) {
	var s tcpSegment
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != unix.IPPROTO_TCP {
		return s, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if ihl < 20 || total < ihl || total > len(pkt) {
		return s, false
	}
	if binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 {
		return s, false // a fragment
	}
	tcp := pkt[ihl:total]
	if len(tcp) < 20 {
		return s, false
	}
	off := int(tcp[12]>>4) * 4
	if off < 20 || off > len(tcp) {
		return s, false
	}
	s.src = netip.AddrFrom4([4]byte(pkt[12:16]))
	s.dst = netip.AddrFrom4([4]byte(pkt[16:20]))
	s.srcPort = binary.BigEndian.Uint16(tcp[0:2])
	s.dstPort = binary.BigEndian.Uint16(tcp[2:4])
	s.seq = binary.BigEndian.Uint32(tcp[4:8])
	s.syn = tcp[13]&0x02 != 0
	s.payload = tcp[off:]
	return s, true
}

// capture follows the BGP bytes one address sends into a namespace.
type capture struct {
	f    *os.File
	tl   *timeline
	from netip.Addr
	done chan struct{}

	mu      sync.Mutex
	err     error // first stream error (data lost or out of step)
	streams map[[2]uint16]*bgpStream
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// captureBGP opens a packet socket on dev in ns and records in tl every
// prefix that from's BGP UPDATEs (to or from port 179) withdraw or
// announce, at the kernel's receive time.
func captureBGP(ns *netlab.NS, dev string, from netip.Addr, tl *timeline) (*capture, error) {
	idx, err := ns.LinkIndex(dev)
	if err != nil {
		return nil, err
	}
	var fd int
	err = ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_IP)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	if err := setupCaptureSocket(fd, idx, from); err != nil {
		unix.Close(fd)
		return nil, err
	}
	c := &capture{
		f:       os.NewFile(uintptr(fd), "bgp-capture"),
		tl:      tl,
		from:    from,
		done:    make(chan struct{}),
		streams: make(map[[2]uint16]*bgpStream),
	}
	go c.loop()
	return c, nil
}

func setupCaptureSocket(fd, ifindex int, from netip.Addr) error {
	// Accept only TCP from `from` (SOCK_DGRAM: offset 0 is the IP header).
	src := binary.BigEndian.Uint32(from.AsSlice())
	filter := []unix.SockFilter{
		{Code: 0x30, K: 9},          // ldb [9] (protocol)
		{Code: 0x15, Jf: 3, K: 6},   // jeq #6 (TCP)
		{Code: 0x20, K: 12},         // ld [12] (source)
		{Code: 0x15, Jf: 1, K: src}, // jeq #from
		{Code: 0x06, K: 0x40000},    // ret #262144
		{Code: 0x06, K: 0},          // ret #0
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fmt.Errorf("attach filter: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
		return fmt.Errorf("SO_RCVBUFFORCE: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	// Packets queued before the filter was attached may be anything: bind
	// after it, so that only filtered packets of this device arrive.
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifindex}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return nil
}

func (c *capture) loop() {
	defer close(c.done)
	rc, err := c.f.SyscallConn()
	if err != nil {
		c.fail(err)
		return
	}
	buf := make([]byte, 1<<17)
	oob := make([]byte, 128)
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_TRUNC)
			return rerr != unix.EAGAIN
		})
		now := time.Now()
		if err != nil {
			return // closed
		}
		if rerr != nil {
			c.fail(fmt.Errorf("recvmsg: %w", rerr))
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if n > len(buf) {
			c.fail(fmt.Errorf("captured packet of %d bytes truncated", n))
			continue
		}
		c.packet(buf[:n], packetTime(oob[:oobn], now))
	}
}

// packetTime returns the SCM_TIMESTAMPNS stamp of a received packet, or
// fallback when there is none or it is implausible (not within a second
// of fallback, e.g. a stamp from another clock).
func packetTime(oob []byte, fallback time.Time) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fallback
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_TIMESTAMPNS || len(m.Data) < int(unsafe.Sizeof(unix.Timespec{})) {
			continue
		}
		ts := *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
		t := time.Unix(ts.Unix())
		if d := fallback.Sub(t); d >= 0 && d < time.Second {
			return t
		}
	}
	return fallback
}

func (c *capture) packet(pkt []byte, at time.Time) {
	seg, ok := parseIPv4TCP(pkt)
	if !ok || seg.src != c.from || (seg.srcPort != 179 && seg.dstPort != 179) {
		return
	}
	key := [2]uint16{seg.srcPort, seg.dstPort}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[key]
	if s == nil {
		s = &bgpStream{}
		c.streams[key] = s
	}
	err := s.segment(seg.seq, seg.syn, seg.payload, func(p netip.Prefix, add bool) { c.tl.record(p, add, at) })
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("port %d -> %d: %w", seg.srcPort, seg.dstPort, err)
	}
}

func (c *capture) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

// Err returns the first error that made the capture miss data.
func (c *capture) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// drops returns the packets the kernel dropped for lack of buffer space.
func (c *capture) drops() (uint32, error) {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var st *unix.TpacketStats
	var serr error
	if err := rc.Control(func(fd uintptr) {
		st, serr = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	return st.Drops, nil
}

// close stops the capture and waits for its reader.
func (c *capture) close() {
	c.f.Close()
	<-c.done
}
