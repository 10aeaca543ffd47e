package pkt

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TCP flag bits for Frame.Flags.
const (
	FIN = 1 << 0
	SYN = 1 << 1
	RST = 1 << 2
	PSH = 1 << 3
	ACK = 1 << 4
)

// Frame describes one Ethernet frame carrying IPv4.
type Frame struct {
	SrcMAC, DstMAC net.HardwareAddr
	VLAN           uint16 // 0 = untagged
	Src, Dst       netip.Addr
	TTL            uint8
	Proto          uint8 // 6, 17 or 1
	SPort, DPort   uint16
	Flags          uint8 // TCP flags
	Seq, Ack       uint32
	Window         uint16
	// NoUDPChecksum sends UDP with checksum 0.
	NoUDPChecksum bool
	Payload       []byte
	// ICMP fields (Proto 1).
	ICMPType, ICMPCode uint8
}

// MAC parses a MAC address or panics (tests only).
func MAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// Bytes serialises the frame with every checksum computed.
func (f Frame) Bytes() []byte {
	ttl := f.TTL
	if ttl == 0 {
		ttl = 64
	}
	eth := &layers.Ethernet{SrcMAC: f.SrcMAC, DstMAC: f.DstMAC, EthernetType: layers.EthernetTypeIPv4}
	ls := []gopacket.SerializableLayer{eth}
	if f.VLAN != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: f.VLAN, Type: layers.EthernetTypeIPv4})
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Protocol: layers.IPProtocol(f.Proto),
		SrcIP: f.Src.AsSlice(), DstIP: f.Dst.AsSlice()}
	ls = append(ls, ip)
	switch f.Proto {
	case 6:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(f.SPort), DstPort: layers.TCPPort(f.DPort),
			Seq: f.Seq, Ack: f.Ack, Window: f.Window,
			FIN: f.Flags&FIN != 0, SYN: f.Flags&SYN != 0, RST: f.Flags&RST != 0,
			PSH: f.Flags&PSH != 0, ACK: f.Flags&ACK != 0}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tcp)
	case 17:
		udp := &layers.UDP{SrcPort: layers.UDPPort(f.SPort), DstPort: layers.UDPPort(f.DPort)}
		_ = udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, udp)
	case 1:
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(f.ICMPType, f.ICMPCode)})
	}
	ls = append(ls, gopacket.Payload(f.Payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		panic(fmt.Sprintf("serialise frame: %v", err))
	}
	out := buf.Bytes()
	l3 := 14
	if f.VLAN != 0 {
		l3 += 4
	}
	// No Ethernet padding: frames on veths and in test runs carry none.
	out = out[:l3+(int(out[l3+2])<<8|int(out[l3+3]))]
	if f.Proto == 17 && f.NoUDPChecksum {
		out[l3+26], out[l3+27] = 0, 0
	}
	return out
}

// Summary decodes a frame into a one-line description and verifies every
// checksum from scratch; a bad checksum is an error.
func Summary(b []byte) (string, error) {
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		return "", fmt.Errorf("decode frame: %w", el.Error())
	}
	ipL, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ipL == nil {
		return "", fmt.Errorf("not IPv4")
	}
	if err := VerifyChecksums(b); err != nil {
		return "", err
	}
	s := fmt.Sprintf("%s > %s", ipL.SrcIP, ipL.DstIP)
	if t, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		s = fmt.Sprintf("tcp %s:%d > %s:%d", ipL.SrcIP, t.SrcPort, ipL.DstIP, t.DstPort)
	}
	if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
		s = fmt.Sprintf("udp %s:%d > %s:%d", ipL.SrcIP, u.SrcPort, ipL.DstIP, u.DstPort)
	}
	return s, nil
}
