package interop

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/internal/netlab"
	"github.com/straitlb/strait/model"
)

const (
	torASN  = 65000
	nodeASN = 64512
)

var (
	torIP   = netip.MustParseAddr("192.0.2.1")
	node1IP = netip.MustParseAddr("192.0.2.11")
	node2IP = netip.MustParseAddr("192.0.2.12")
)

// lab is the tor namespace with a bridge and two node namespaces attached.
type lab struct {
	*netlab.Lab
	tor, n1, n2 *netlab.NS
}

func newLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{Lab: netlab.NewT(t)}
	var err error
	must := func(e error) {
		t.Helper()
		if e != nil {
			t.Fatal(e)
		}
	}
	l.tor, err = l.AddNS("tor")
	must(err)
	l.n1, err = l.AddNS("node1")
	must(err)
	l.n2, err = l.AddNS("node2")
	must(err)
	br, err := l.IfName("br")
	must(err)
	must(l.tor.AddBridge(br))
	must(l.tor.AddAddr(br, netip.PrefixFrom(torIP, 24)))
	for i, n := range []struct {
		ns *netlab.NS
		ip netip.Addr
	}{{l.n1, node1IP}, {l.n2, node2IP}} {
		port, err := l.IfName(fmt.Sprintf("t%d", i+1))
		must(err)
		uplink, err := l.IfName(fmt.Sprintf("n%d", i+1))
		must(err)
		must(l.AddVeth(netlab.VethEnd{NS: l.tor, Name: port}, netlab.VethEnd{NS: n.ns, Name: uplink, Addr: netip.PrefixFrom(n.ip, 24)}))
		must(l.tor.SetMaster(port, br))
	}
	return l
}

func requireBinary(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		// Root but no FRR/BIRD: a broken CI image, not a reason to skip.
		t.Fatalf("%s not found (run hack/deps.sh): %v", path, err)
	}
}

// runDir returns a world-writable directory under /tmp (FRR's daemons run
// as user frr and cannot reach into the test's 0700 temp directories),
// removed when the test ends.
func runDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "strait-"+prefix+"-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// spawnLogged spawns a command in ns with its output in dir/name.log,
// printed if the test fails.
func spawnLogged(t *testing.T, ns *netlab.NS, dir, name string, args ...string) *netlab.Process {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = dir
	p, err := ns.Spawn(cmd)
	if err != nil {
		t.Fatal(err)
	}
	dumpOnFailure(t, name+" log", logPath)
	return p
}

// frr is zebra and bgpd in the tor namespace.
type frr struct {
	t   *testing.T
	ns  *netlab.NS
	dir string
}

const frrConf = `frr defaults traditional
hostname tor
log stdout informational
!
router bgp %[1]d
 bgp router-id %[2]s
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 3 9
 neighbor %[3]s remote-as %[4]d
 neighbor %[3]s password %[5]s
 neighbor %[3]s timers connect 1
 neighbor %[6]s remote-as %[4]d
 neighbor %[6]s timers connect 1
 !
 address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
!
`

// md5Password protects the node1 session.
const md5Password = "strait-md5-secret"

func startFRR(t *testing.T, ns *netlab.NS) *frr {
	t.Helper()
	for _, b := range []string{"/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/bin/vtysh"} {
		requireBinary(t, b)
	}
	dir := runDir(t, "frr")
	conf := filepath.Join(dir, "frr.conf")
	text := fmt.Sprintf(frrConf, torASN, torIP, node1IP, nodeASN, md5Password, node2IP)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"-f", conf, "--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api")}
	spawnLogged(t, ns, dir, "zebra", append([]string{"/usr/lib/frr/zebra", "-i", filepath.Join(dir, "zebra.pid")}, common...)...)
	f := &frr{t: t, ns: ns, dir: dir}
	// bgpd needs zebra's socket to exist, or it retries slowly.
	f.waitFile(filepath.Join(dir, "zserv.api"))
	spawnLogged(t, ns, dir, "bgpd", append([]string{"/usr/lib/frr/bgpd", "-i", filepath.Join(dir, "bgpd.pid")}, common...)...)
	f.waitFile(filepath.Join(dir, "bgpd.vty"))
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range []string{"show bgp summary", "show bgp ipv4 unicast", "show ip route"} {
				out, err := f.vtysh(c)
				t.Logf("---- vtysh %s ----\n%s%v", c, out, err)
			}
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := f.vtysh("show bgp summary json"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("bgpd does not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f
}

func (f *frr) waitFile(path string) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *frr) vtysh(cmd string) (string, error) {
	return f.ns.Run("vtysh", "--vty_socket", f.dir, "-c", cmd)
}

func (f *frr) json(cmd string, v any) {
	f.t.Helper()
	out, err := f.vtysh(cmd)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		f.t.Fatalf("%s: %v: %s", cmd, err, out)
	}
}

// neighborsUp returns the established neighbors.
func (f *frr) neighborsUp() map[string]bool {
	f.t.Helper()
	var sum struct {
		IPv4Unicast struct {
			Peers map[string]struct {
				State string `json:"state"`
			} `json:"peers"`
		} `json:"ipv4Unicast"`
	}
	f.json("show bgp summary json", &sum)
	up := make(map[string]bool)
	for a, p := range sum.IPv4Unicast.Peers {
		if p.State == "Established" {
			up[a] = true
		}
	}
	return up
}

// frrPath is one BGP path FRR has for a prefix.
type frrPath struct {
	NextHop   string
	Best      bool
	Multipath bool
	Community string // FRR's string form, e.g. "64512:100 graceful-shutdown"
	LocalPref int    // -1 when FRR shows none
}

// paths returns FRR's BGP paths per prefix.
func (f *frr) paths() map[string][]frrPath {
	f.t.Helper()
	var table struct {
		Routes map[string][]struct {
			Valid     bool `json:"valid"`
			Bestpath  bool `json:"bestpath"`
			Multipath bool `json:"multipath"`
			Nexthops  []struct {
				IP string `json:"ip"`
			} `json:"nexthops"`
		} `json:"routes"`
	}
	f.json("show bgp ipv4 unicast json", &table)
	out := make(map[string][]frrPath)
	for prefix, ps := range table.Routes {
		for _, p := range ps {
			fp := frrPath{Best: p.Bestpath, Multipath: p.Multipath, LocalPref: -1}
			if len(p.Nexthops) > 0 {
				fp.NextHop = p.Nexthops[0].IP
			}
			out[prefix] = append(out[prefix], fp)
		}
	}
	return out
}

// pathsFor returns FRR's detailed paths of one prefix, with communities.
func (f *frr) pathsFor(prefix string) []frrPath {
	f.t.Helper()
	var detail struct {
		Paths []struct {
			Nexthops []struct {
				IP string `json:"ip"`
			} `json:"nexthops"`
			Community struct {
				String string `json:"string"`
			} `json:"community"`
			LocalPref *int `json:"locPrf"`
			Multipath bool `json:"multipath"`
			Bestpath  struct {
				Overall bool `json:"overall"`
			} `json:"bestpath"`
		} `json:"paths"`
	}
	f.json("show bgp ipv4 unicast "+prefix+" json", &detail)
	var out []frrPath
	for _, p := range detail.Paths {
		fp := frrPath{Community: p.Community.String, Multipath: p.Multipath, Best: p.Bestpath.Overall, LocalPref: -1}
		if p.LocalPref != nil {
			fp.LocalPref = *p.LocalPref
		}
		if len(p.Nexthops) > 0 {
			fp.NextHop = p.Nexthops[0].IP
		}
		out = append(out, fp)
	}
	return out
}

// ribNextHops returns the next hops of the zebra RIB route for prefix that
// are active and installed.
func (f *frr) ribNextHops(prefix string) []string {
	f.t.Helper()
	var rib map[string][]struct {
		Protocol string `json:"protocol"`
		Selected bool   `json:"selected"`
		Nexthops []struct {
			IP     string `json:"ip"`
			Active bool   `json:"active"`
			FIB    bool   `json:"fib"`
		} `json:"nexthops"`
	}
	f.json("show ip route "+prefix+" json", &rib)
	var out []string
	for _, r := range rib[prefix] {
		if r.Protocol != "bgp" || !r.Selected {
			continue
		}
		for _, nh := range r.Nexthops {
			if nh.Active && nh.FIB {
				out = append(out, nh.IP)
			}
		}
	}
	return out
}

// nextHops returns the sorted next hops FRR has BGP paths through.
func nextHops(ps []frrPath) string {
	var hs []string
	for _, p := range ps {
		hs = append(hs, p.NextHop)
	}
	sortStrings(hs)
	return strings.Join(hs, ",")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// poll calls cond every interval until it holds, and returns the time it
// took, or fails the test after timeout.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// pollBracket is poll for a condition that became true after since. It
// brackets the moment: after the start (from since) of the last check that
// failed, before the end of the first check that held.
func pollBracket(t *testing.T, timeout time.Duration, what string, cond func() bool, since time.Time) (after, before time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		started := time.Since(since)
		if cond() {
			return after, time.Since(since)
		}
		after = started
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// watchRoute subscribes to route changes in ns and returns a function that
// waits for dst to be added and returns when the notification arrived.
func watchRoute(t *testing.T, ns *netlab.NS, dst string) func(timeout time.Duration) time.Time {
	t.Helper()
	want := netip.MustParsePrefix(dst)
	h, err := netns.GetFromPath(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	ch, done := make(chan netlink.RouteUpdate, 64), make(chan struct{})
	if err := netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{Namespace: &h}); err != nil {
		h.Close()
		t.Fatal(err)
	}
	stop := sync.OnceFunc(func() { close(done); h.Close() })
	t.Cleanup(stop)
	return func(timeout time.Duration) time.Time {
		t.Helper()
		defer stop()
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		for {
			select {
			case u, ok := <-ch:
				if !ok {
					t.Fatalf("route subscription in %s closed", ns)
				}
				if u.Type != unix.RTM_NEWROUTE || u.Dst == nil {
					continue
				}
				ones, _ := u.Dst.Mask.Size()
				if a, ok := netip.AddrFromSlice(u.Dst.IP); ok && netip.PrefixFrom(a.Unmap(), ones) == want {
					return time.Now()
				}
			case <-timer.C:
				t.Fatalf("route %s did not appear in %s within %s", dst, ns, timeout)
			}
		}
	}
}

// Services used by the interop tests, from each node's point of view.
func lbFrontend(vip string) model.Frontend {
	return model.Frontend{Addr: netip.MustParseAddr(vip), Port: 80, Proto: model.TCP, Kind: model.LoadBalancer}
}

// clusterService is externalTrafficPolicy=Cluster with one remote backend.
func clusterService(name, vip string) model.Service {
	return model.Service{
		Name:      model.ServiceName{Namespace: "default", Name: name, Port: "http"},
		Frontends: []model.Frontend{{Addr: netip.MustParseAddr("10.96.0.10"), Port: 80, Proto: model.TCP, Kind: model.ClusterIP}, lbFrontend(vip)},
		Backends:  []model.Backend{{Addr: netip.MustParseAddr("198.18.9.10"), Port: 8080}},
	}
}

// localService is the external half of an externalTrafficPolicy=Local
// service, with n local backends on this node.
func localService(name, vip string, n int) model.Service {
	s := model.Service{
		Name:      model.ServiceName{Namespace: "default", Name: name, Port: "http", Scope: "external"},
		Frontends: []model.Frontend{lbFrontend(vip)},
	}
	for i := range n {
		s.Backends = append(s.Backends, model.Backend{Addr: netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}), Port: 8080, Local: true})
	}
	return s
}

func towardTor(password string) []bgp.Peer {
	return []bgp.Peer{{
		Name: "tor", Address: torIP, PeerASN: torASN, LocalASN: nodeASN,
		Password: password, ConnectRetry: time.Second, HoldTime: 9 * time.Second,
	}}
}
