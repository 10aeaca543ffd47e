package netlab_test

import (
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/straitlb/strait/internal/netlab"
)

func TestPrivilegedPrimitives(t *testing.T) {
	lab := netlab.NewT(t)
	a, err := lab.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := lab.AddNS("b")
	if err != nil {
		t.Fatal(err)
	}
	if lab.NS("a") != a || a.Name() != lab.Prefix()+"-a" {
		t.Fatalf("NS lookup: %v, name %q", lab.NS("a"), a.Name())
	}
	if _, err := lab.AddNS("a"); err == nil {
		t.Error("AddNS accepted a duplicate name")
	}
	if _, err := lab.IfName("this-is-far-too-long"); err == nil {
		t.Error("IfName accepted a name over 15 bytes")
	}
	aDev, bDev, br := lab.Name("a"), lab.Name("b"), lab.Name("br")
	err = lab.AddVeth(
		netlab.VethEnd{NS: a, Name: aDev, Addr: netip.MustParsePrefix("192.0.2.1/24")},
		netlab.VethEnd{NS: b, Name: bDev})
	if err != nil {
		t.Fatal(err)
	}
	// b: bridge holding its veth end, address on the bridge, and a second
	// address behind it reached through a gateway route from a.
	for _, err := range []error{
		b.AddBridge(br),
		b.SetMaster(bDev, br),
		b.AddAddr(br, netip.MustParsePrefix("192.0.2.2/24")),
		b.AddAddr("lo", netip.MustParsePrefix("198.51.100.1/32")),
		a.AddRoute(netip.MustParsePrefix("198.51.100.0/24"), netip.MustParseAddr("192.0.2.2"), ""),
		a.AddMultipathRoute(netip.MustParsePrefix("203.0.113.0/24"),
			netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")),
		b.EnableForwarding(),
		a.DisableTxChecksum(aDev),
		b.DisableTxChecksum(bDev),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if v, err := b.Sysctl("net.ipv4.ip_forward"); err != nil || v != "1" {
		t.Errorf("ip_forward in b = %q, %v; want 1", v, err)
	}
	if v, err := a.Sysctl("net/ipv4/ip_forward"); err != nil || v != "0" {
		t.Errorf("ip_forward in a = %q, %v; want 0", v, err)
	}
	if on, err := a.TxChecksum(aDev); err != nil || on {
		t.Errorf("tx checksum on %s = %v, %v; want off", aDev, on, err)
	}
	if on, err := b.TxChecksum(br); err != nil || !on {
		t.Errorf("tx checksum on bridge %s = %v, %v; want untouched (on)", br, on, err)
	}

	// Do runs in the namespace: the link exists there and not here.
	var inside *net.Interface
	if err := a.Do(func() (err error) { inside, err = net.InterfaceByName(aDev); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(aDev); err == nil {
		t.Errorf("%s is visible outside its namespace", aDev)
	}
	idx, err := a.LinkIndex(aDev)
	if err != nil || idx != inside.Index {
		t.Errorf("LinkIndex = %d, %v; want %d", idx, err, inside.Index)
	}
	mac, err := a.HardwareAddr(aDev)
	if err != nil || mac.String() != inside.HardwareAddr.String() {
		t.Errorf("HardwareAddr = %v, %v; want %v", mac, err, inside.HardwareAddr)
	}
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("Do did not re-raise the panic: %v", p)
			}
		}()
		a.Do(func() error { panic("boom") })
	}()

	// Commands run inside the namespace.
	out, err := a.Run("ip", "-o", "-4", "addr", "show", "dev", aDev)
	if err != nil || !strings.Contains(out, "192.0.2.1/24") {
		t.Errorf("ip addr in a: %q, %v", out, err)
	}
	out, err = a.Run("ip", "route", "show", "203.0.113.0/24")
	if err != nil || !strings.Contains(out, "nexthop via 192.0.2.2") || !strings.Contains(out, "nexthop via 192.0.2.3") {
		t.Errorf("multipath route in a: %q, %v", out, err)
	}
	// The namespaces are ordinary named netns.
	if out, err := exec.Command("ip", "netns", "exec", a.Name(), "ip", "-o", "link").CombinedOutput(); err != nil || !strings.Contains(string(out), aDev) {
		t.Errorf("ip netns exec %s ip link: %s, %v", a.Name(), out, err)
	}
	if _, err := a.Run("false"); err == nil {
		t.Error("Run(false) succeeded")
	}
	p, err := b.Spawn(exec.Command("sh", "-c", "exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Spawn/Wait: %v, want exit status 3", err)
	}

	// XDP_PASS attaches and leaves traffic alone.
	if _, err := b.AttachXDPPass(bDev); err != nil {
		t.Fatal(err)
	}
	out, err = b.Run("ip", "link", "show", "dev", bDev)
	if err != nil || !strings.Contains(out, "xdp") {
		t.Errorf("ip link in b shows no xdp: %q, %v", out, err)
	}

	// Servers: direct and through the gateway route; the client address is
	// reported as seen.
	for _, ip := range []string{"192.0.2.2", "198.51.100.1"} {
		tsrv, err := b.ServeTCP("b-tcp-"+ip, netip.MustParseAddrPort(ip+":0"))
		if err != nil {
			t.Fatal(err)
		}
		usrv, err := b.ServeUDP("b-udp-"+ip, netip.MustParseAddrPort(ip+":0"))
		if err != nil {
			t.Fatal(err)
		}
		reply, local, err := netlab.DialTCP(a, tsrv.Addr(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		checkReply(t, "tcp", reply, "b-tcp-"+ip, local, netip.MustParseAddr("192.0.2.1"))
		reply, local, err = netlab.UDPRequest(a, usrv.Addr(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		checkReply(t, "udp", reply, "b-udp-"+ip, local, netip.MustParseAddr("192.0.2.1"))
		if peers, n := usrv.Peers(); n != 1 || peers[0] != local {
			t.Errorf("udp server peers %v (%d), want [%v]", peers, n, local)
		}
		if err := tsrv.Close(); err != nil {
			t.Error(err)
		}
		tsrv.Close() // idempotent
		if _, _, err := netlab.DialTCP(a, tsrv.Addr(), time.Second); err == nil {
			t.Error("DialTCP succeeded after the server was closed")
		}
	}
	if _, _, err := netlab.UDPRequest(a, netip.MustParseAddrPort("192.0.2.2:9"), time.Second); err == nil {
		t.Error("UDPRequest to a closed port succeeded")
	}

	snmp, err := b.SNMP()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snmp["TcpInCsumErrors"]; !ok || snmp["UdpInDatagrams"] < 2 {
		t.Errorf("snmp in b: TcpInCsumErrors present=%v, UdpInDatagrams=%d", ok, snmp["UdpInDatagrams"])
	}
	for _, ns := range lab.Namespaces() {
		if c, err := ns.ChecksumErrors(); err != nil || !c.IsZero() {
			t.Errorf("checksum errors in %s: %+v, %v", ns, c, err)
		}
	}
}
