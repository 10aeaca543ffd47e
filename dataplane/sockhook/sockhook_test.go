package sockhook

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/straitlb/strait/dataplane/flowhash"
	"github.com/straitlb/strait/dataplane/loader/loadertest"
	"github.com/straitlb/strait/dataplane/maglev"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/internal/netlab"
	"github.com/straitlb/strait/model"
)

func TestMain(m *testing.M) {
	netlab.RunClientIfRequested()
	os.Exit(m.Run())
}

var (
	cip      = netip.MustParseAddr("198.19.5.10")
	cipAff   = netip.MustParseAddr("198.19.5.11")
	cipEmpty = netip.MustParseAddr("198.19.5.20")
	lbSrc    = netip.MustParseAddr("203.0.113.5")
)

func ap(a netip.Addr, p uint16) netip.AddrPort { return netip.AddrPortFrom(a, p) }

// sockPick is the Go model of the socket-level choice: Maglev over the
// sorted backend keys, indexed by the hash of the socket cookie and port.
func sockPick(keys []model.BackendKey, cookie uint64, port uint16) netip.Addr {
	size := maglev.TableSize(len(keys), maglev.DefaultMaxSize)
	table := maglev.Build(keys, size)
	return keys[table[flowhash.Sock(cookie, port)%size]].Addr
}

func backendOf(t *testing.T, reply string) (name string, peer netip.AddrPort) {
	t.Helper()
	r, err := netlab.ParseReply(reply)
	if err != nil {
		t.Fatalf("reply %q: %v", reply, err)
	}
	return r.Name, r.Peer
}

// TestPrivilegedSocketHooks attaches the socket programs to a cgroup of the
// test's own and checks, from a process inside it: connect() to a
// ClusterIP lands on the backend the cookie hash picks (spread over every
// backend) with the client's own address; getpeername() says the
// ClusterIP; an unconnected UDP socket's replies come from the ClusterIP
// (recvmsg) and a connected one's peer is the ClusterIP; affinity holds
// and then expires; services without backends and LoadBalancer frontends
// with source ranges are left to the per-packet path; a process outside
// the cgroup is not balanced.
func TestPrivilegedSocketHooks(t *testing.T) {
	lab := netlab.NewT(t)
	ns, err := lab.AddNS("sock")
	if err != nil {
		t.Fatal(err)
	}
	var backends []model.Backend
	var keys []model.BackendKey
	names := map[string]netip.Addr{}
	for i := range 3 {
		a := netip.AddrFrom4([4]byte{198, 18, 5, byte(10 + i)})
		if err := ns.AddAddr("lo", netip.PrefixFrom(a, 32)); err != nil {
			t.Fatal(err)
		}
		name := "b" + string(rune('0'+i))
		if _, err := ns.ServeTCP(name, ap(a, 8080)); err != nil {
			t.Fatal(err)
		}
		if _, err := ns.ServeUDP(name, ap(a, 5353)); err != nil {
			t.Fatal(err)
		}
		names[name] = a
		backends = append(backends, model.Backend{Addr: a, Port: 8080, Local: true})
		keys = append(keys, model.BackendKey{Addr: a, Port: 8080})
	}
	var udpBackends []model.Backend
	var udpKeys []model.BackendKey
	for _, b := range backends {
		udpBackends = append(udpBackends, model.Backend{Addr: b.Addr, Port: 5353, Local: true})
		udpKeys = append(udpKeys, model.BackendKey{Addr: b.Addr, Port: 5353})
	}
	name := func(n string) model.ServiceName { return model.ServiceName{Namespace: "sock", Name: n} }
	st := model.State{Services: []model.Service{
		{Name: name("web"), Frontends: []model.Frontend{{Addr: cip, Port: 80, Proto: model.TCP, Kind: model.ClusterIP}}, Backends: backends},
		{Name: name("dns"), Frontends: []model.Frontend{{Addr: cip, Port: 53, Proto: model.UDP, Kind: model.ClusterIP}}, Backends: udpBackends},
		{Name: name("sticky"), Frontends: []model.Frontend{{Addr: cipAff, Port: 80, Proto: model.TCP, Kind: model.ClusterIP}},
			Backends: backends, AffinityTimeout: 2 * time.Second},
		{Name: name("empty"), Frontends: []model.Frontend{{Addr: cipEmpty, Port: 80, Proto: model.TCP, Kind: model.ClusterIP}}},
		{Name: name("ranges"), Frontends: []model.Frontend{{Addr: lbSrc, Port: 80, Proto: model.TCP, Kind: model.LoadBalancer}},
			Backends: backends, SourceRanges: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}},
	}}
	st.Canonicalize()

	d := loadertest.Load(t, loadertest.PinDir(t))
	p, err := program.New(zaptest.NewLogger(t), d.Maps, program.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetIfaces(nil); err != nil {
		t.Fatal(err)
	}
	if res, err := p.Apply(st); err != nil || len(res.Failed) > 0 {
		t.Fatalf("apply: %v %v", err, res.Failed)
	}
	root, err := netlab.CgroupRoot()
	if err != nil {
		t.Fatal(err)
	}
	hooked, err := lab.AddCgroup(root, "hooked")
	if err != nil {
		t.Fatal(err)
	}
	pods, err := hooked.Sub(lab, "pods") // programs apply to descendants
	if err != nil {
		t.Fatal(err)
	}
	outside, err := lab.AddCgroup(root, "outside")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.AttachCgroup(hooked.Path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.DetachCgroup() })
	cl, err := ns.StartClient(pods)
	if err != nil {
		t.Fatal(err)
	}
	do := func(req netlab.ClientRequest) netlab.ClientResult {
		t.Helper()
		r, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("tcp", func(t *testing.T) {
		seen := map[string]int{}
		for i := range 60 {
			r := do(netlab.ClientRequest{Op: "tcp", Addr: ap(cip, 80)})
			if r.Err != "" {
				t.Fatalf("connection %d: %s", i, r.Err)
			}
			be, peer := backendOf(t, r.Reply)
			seen[be]++
			if want := sockPick(keys, r.Cookie, 80); names[be] != want {
				t.Errorf("cookie %d: backend %s (%s), the Maglev pick is %s", r.Cookie, be, names[be], want)
			}
			if r.Peer != ap(cip, 80) {
				t.Errorf("getpeername() = %s, want the ClusterIP %s", r.Peer, ap(cip, 80))
			}
			if peer != r.Local {
				t.Errorf("backend saw %s, the client is %s: no translation of the source expected", peer, r.Local)
			}
		}
		if len(seen) != 3 {
			t.Errorf("60 connections reached %v, want all 3 backends", seen)
		}
	})
	t.Run("udp", func(t *testing.T) {
		seen := map[string]int{}
		for i := range 30 {
			r := do(netlab.ClientRequest{Op: "udpto", Addr: ap(cip, 53)})
			if r.Err != "" {
				t.Fatalf("datagram %d: %s", i, r.Err)
			}
			if r.From != ap(cip, 53) {
				t.Errorf("reply came from %s, want the ClusterIP %s (recvmsg4)", r.From, ap(cip, 53))
			}
			be, _ := backendOf(t, r.Reply)
			seen[be]++
			if want := sockPick(udpKeys, r.Cookie, 53); names[be] != want {
				t.Errorf("udp cookie %d: backend %s, the Maglev pick is %s", r.Cookie, be, want)
			}
			c := do(netlab.ClientRequest{Op: "udp", Addr: ap(cip, 53)})
			if c.Err != "" || c.Peer != ap(cip, 53) {
				t.Errorf("connected udp: err %q, getpeername() = %s, want %s", c.Err, c.Peer, ap(cip, 53))
			}
		}
		if len(seen) < 2 {
			t.Errorf("30 sockets reached %v, want a spread", seen)
		}
	})
	t.Run("affinity", func(t *testing.T) {
		var first string
		differ := 0
		for i := range 20 {
			r := do(netlab.ClientRequest{Op: "tcp", Addr: ap(cipAff, 80)})
			if r.Err != "" {
				t.Fatal(r.Err)
			}
			be, _ := backendOf(t, r.Reply)
			if i == 0 {
				first = be
			} else if be != first {
				t.Fatalf("connection %d went to %s, affinity says %s", i, be, first)
			}
			if sockPick(keys, r.Cookie, 80) != names[first] {
				differ++
			}
		}
		if differ == 0 {
			t.Fatal("every socket's own pick was the affinity backend: the test proves nothing")
		}
		time.Sleep(2200 * time.Millisecond)
		r := do(netlab.ClientRequest{Op: "tcp", Addr: ap(cipAff, 80)})
		be, _ := backendOf(t, r.Reply)
		if want := sockPick(keys, r.Cookie, 80); names[be] != want {
			t.Errorf("after the timeout: backend %s, its own pick is %s", be, want)
		}
		t.Logf("affinity backend %s; after expiry %s", first, be)
	})
	t.Run("left to the per-packet path", func(t *testing.T) {
		for _, a := range []netip.AddrPort{ap(cipEmpty, 80), ap(lbSrc, 80)} {
			r := do(netlab.ClientRequest{Op: "tcp", Addr: a, TimeoutMs: 500})
			// No route in this namespace: an untranslated connect fails so.
			if r.Errno != "ENETUNREACH" {
				t.Errorf("connect to %s: %q (%s), want ENETUNREACH (address left alone)", a, r.Errno, r.Err)
			}
		}
	})
	t.Run("outside the cgroup", func(t *testing.T) {
		other, err := ns.StartClient(outside)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		r, err := other.Do(netlab.ClientRequest{Op: "tcp", Addr: ap(cip, 80), TimeoutMs: 500})
		if err != nil {
			t.Fatal(err)
		}
		if r.Errno != "ENETUNREACH" || strings.Contains(r.Reply, "|") {
			t.Errorf("a process outside the cgroup: %+v, want ENETUNREACH", r)
		}
	})
}
