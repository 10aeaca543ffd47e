package pkt

import (
	"net/netip"
	"testing"
)

func TestBytesHaveValidChecksums(t *testing.T) {
	for _, f := range []Frame{
		{Proto: 6, Flags: SYN, Seq: 7, SPort: 40000, DPort: 80},
		{Proto: 17, SPort: 5353, DPort: 53, Payload: []byte("hello")},
		{Proto: 17, SPort: 5353, DPort: 53, Payload: []byte("odd"), VLAN: 7},
		{Proto: 1, ICMPType: 8},
	} {
		f.SrcMAC, f.DstMAC = MAC("02:00:00:00:00:01"), MAC("02:00:00:00:00:02")
		f.Src, f.Dst = netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.10")
		b := f.Bytes()
		if err := VerifyChecksums(b); err != nil {
			t.Errorf("proto %d: %v", f.Proto, err)
		}
		l3 := 14
		if f.VLAN != 0 {
			l3 += 4
		}
		ttl := append([]byte(nil), b...)
		ttl[l3+8]--
		if err := VerifyChecksums(ttl); err == nil {
			t.Errorf("proto %d: corrupted IP header passed verification", f.Proto)
		}
		l4 := append([]byte(nil), b...)
		l4[l3+20+4] ^= 0x5a // inside every L4 header
		if err := VerifyChecksums(l4); err == nil {
			t.Errorf("proto %d: corrupted L4 header passed verification", f.Proto)
		}
	}
}

func TestNoUDPChecksum(t *testing.T) {
	f := Frame{Proto: 17, SPort: 1, DPort: 2, NoUDPChecksum: true, Payload: []byte("x"),
		SrcMAC: MAC("02:00:00:00:00:01"), DstMAC: MAC("02:00:00:00:00:02"),
		Src: netip.MustParseAddr("198.51.100.10"), Dst: netip.MustParseAddr("203.0.113.10")}
	b := f.Bytes()
	if b[14+20+6] != 0 || b[14+20+7] != 0 {
		t.Fatal("checksum not zero")
	}
	if err := VerifyChecksums(b); err != nil {
		t.Fatal(err)
	}
}
