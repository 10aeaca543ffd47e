package interop

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/internal/netlab"
	"github.com/straitlb/strait/model"
)

// TestPrivilegedFRR: two Strait nodes peer with FRR 8.4 (node1 over an
// MD5-protected session). FRR must see the LoadBalancer IP through both
// nodes as ECMP next hops (in its BGP table and zebra's RIB), see an
// externalTrafficPolicy=Local IP withdrawn by the node whose last local
// backend went, and see GRACEFUL_SHUTDOWN (65535:0) on a draining node's
// paths before they are withdrawn, both when a node is cordoned and on an
// explicit shutdown drain.
func TestPrivilegedFRR(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	f := startFRR(t, l.tor)

	comm, _ := bgp.ParseCommunity("64512:100")
	adv := bgp.AdvertisementConfig{Communities: []uint32{comm}}
	const drainTime = 1500 * time.Millisecond
	n1 := startNode(t, l.n1, "node1", node1IP, adv, drainTime)
	n2 := startNode(t, l.n2, "node2", node2IP, adv, drainTime)

	const clusterVIP, localVIP, lateVIP = "203.0.113.10", "203.0.113.20", "203.0.113.30"
	in1 := bgp.Input{
		State: model.State{Services: []model.Service{clusterService("web", clusterVIP), localService("local", localVIP, 1)}},
		Node:  bgp.NodeStatus{Name: "node1"},
		Peers: towardTor(md5Password),
	}
	in2 := bgp.Input{
		State: model.State{Services: []model.Service{clusterService("web", clusterVIP), localService("local", localVIP, 2)}},
		Node:  bgp.NodeStatus{Name: "node2"},
		Peers: towardTor(""),
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, x := range []struct {
		n  *node
		in bgp.Input
	}{{n1, in1}, {n2, in2}} {
		wg.Add(1)
		go func() { defer wg.Done(); x.n.update(x.in) }()
	}
	wg.Wait()
	poll(t, 20*time.Second, "both sessions established at FRR (node1 with MD5)", func() bool {
		up := f.neighborsUp()
		return up[node1IP.String()] && up[node2IP.String()]
	})
	t.Logf("measured: both sessions established at FRR %s after the first Update (node1 MD5)", time.Since(start).Round(time.Millisecond))
	// The kernel carries node1's session with a TCP MD5 key, node2's
	// without.
	for _, c := range []struct {
		ns  *netlab.NS
		md5 bool
	}{{l.n1, true}, {l.n2, false}} {
		out, err := c.ns.Run("ss", "-tnie", "state", "established", "dport", "= :179")
		if err != nil {
			t.Fatal(err)
		}
		if has := strings.Contains(out, "md5keys:"+torIP.String()+"/32"); has != c.md5 {
			t.Errorf("%s: TCP MD5 key on the session: %v, want %v", c.ns, has, c.md5)
		}
	}
	for _, n := range []*node{n1, n2} {
		if p, ok := n.status().Peer("tor"); !ok || p.State != bgp.SessionEstablished {
			t.Errorf("%s reports %+v", n.name, p)
		}
	}

	both := node1IP.String() + "," + node2IP.String()
	poll(t, 10*time.Second, "both VIPs through both nodes", func() bool {
		ps := f.paths()
		return nextHops(ps[clusterVIP+"/32"]) == both && nextHops(ps[localVIP+"/32"]) == both
	})
	for _, vip := range []string{clusterVIP, localVIP} {
		ps := f.pathsFor(vip + "/32")
		for _, p := range ps {
			if !p.Multipath || !strings.Contains(p.Community, "64512:100") {
				t.Errorf("%s via %s: %+v, want a multipath path with community 64512:100", vip, p.NextHop, p)
			}
		}
	}
	poll(t, 10*time.Second, "ECMP route in zebra's RIB", func() bool {
		hs := f.ribNextHops(clusterVIP + "/32")
		sortStrings(hs)
		return strings.Join(hs, ",") == both
	})
	if out, err := l.tor.Run("ip", "route", "show", clusterVIP); err != nil || !strings.Contains(out, "nexthop via "+node1IP.String()) || !strings.Contains(out, "nexthop via "+node2IP.String()) {
		t.Errorf("kernel route in tor: %q, %v", out, err)
	}

	// A new service: time from the Update call (a JSON round trip to the
	// node's process, the Controller and SetAdvertisements) to the route
	// in the tor's kernel FIB (FRR bgpd, then zebra) and to vtysh seeing
	// it in FRR's BGP table (each vtysh call takes tens of milliseconds,
	// so that one is a bracket).
	in1.State.Services = append(in1.State.Services, clusterService("late", lateVIP))
	fib := watchRoute(t, l.tor, lateVIP+"/32")
	start = time.Now()
	n1.update(in1)
	updated := time.Since(start)
	after, before := pollBracket(t, 10*time.Second, "new VIP in FRR's BGP table", func() bool { return len(f.paths()[lateVIP+"/32"]) == 1 }, start)
	inFIB := fib(10 * time.Second).Sub(start)
	t.Logf("measured: new prefix: Update returned after %s; in FRR's BGP table after %s and before %s; in tor's kernel FIB after %s",
		updated.Round(100*time.Microsecond), after.Round(time.Millisecond), before.Round(time.Millisecond), inFIB.Round(100*time.Microsecond))

	// externalTrafficPolicy=Local: node2's last local backend goes.
	in2.State.Services[1] = localService("local", localVIP, 0)
	n2.update(in2)
	d := poll(t, 10*time.Second, "node2 withdraws the Local VIP", func() bool {
		ps := f.paths()
		return nextHops(ps[localVIP+"/32"]) == node1IP.String() && nextHops(ps[clusterVIP+"/32"]) == both
	})
	t.Logf("measured: eTP=Local withdrawal visible in FRR %s after Update", d.Round(time.Millisecond))

	// Cordon node1: its paths carry GRACEFUL_SHUTDOWN for drainTime, then
	// go.
	in1.Node.Unschedulable = true
	n1.update(in1)
	dt := watchDrain(t, f, clusterVIP+"/32", node1IP.String(), 10*time.Second)
	// FRR honours the community (LOCAL_PREF 0 on receipt): before node1
	// withdraws, its path stops being best or multipath, so traffic has
	// already moved to node2.
	if dt.demoted < 0 || dt.first.LocalPref != 0 {
		t.Errorf("FRR kept using the draining node1 path until it was withdrawn (first seen as %+v)", dt.first)
	}
	t.Logf("measured: cordon: graceful-shutdown seen after %s, node1 path demoted by FRR after %s, withdrawn after %s (drain time %s)",
		dt.gshut.Round(time.Millisecond), dt.demoted.Round(time.Millisecond), dt.gone.Round(time.Millisecond), drainTime)
	if ps := f.paths(); nextHops(ps[clusterVIP+"/32"]) != node2IP.String() || len(ps[localVIP+"/32"]) != 0 || len(ps[lateVIP+"/32"]) != 0 {
		t.Errorf("after node1 drained: %v", ps)
	}

	// Shutdown drain of node2 (what SIGTERM does).
	wait := n2.send(request{Op: "drain", DrainTime: drainTime})
	dt = watchDrain(t, f, clusterVIP+"/32", node2IP.String(), 10*time.Second)
	if r := wait(); r.Err != "" {
		t.Fatalf("node2 drain: %s", r.Err)
	}
	t.Logf("measured: shutdown drain: graceful-shutdown seen after %s, withdrawn after %s", dt.gshut.Round(time.Millisecond), dt.gone.Round(time.Millisecond))
	if ps := f.paths(); len(ps) != 0 {
		t.Errorf("routes left after both nodes drained: %v", ps)
	}
	// The sessions stay up: drained, not disconnected.
	if up := f.neighborsUp(); !up[node1IP.String()] || !up[node2IP.String()] {
		t.Errorf("sessions after drain: %v", up)
	}
}

// drainTimes are offsets from the start of watchDrain (-1: never seen).
type drainTimes struct {
	gshut   time.Duration // the path first carried graceful-shutdown
	demoted time.Duration // FRR first used it neither as best nor as multipath
	gone    time.Duration // the path was withdrawn
	first   frrPath       // the path when graceful-shutdown was first seen
}

// watchDrain polls FRR until the path to prefix via nextHop disappears and
// checks that it carried the graceful-shutdown community first.
func watchDrain(t *testing.T, f *frr, prefix, nextHop string, timeout time.Duration) drainTimes {
	t.Helper()
	start := time.Now()
	d := drainTimes{gshut: -1, demoted: -1}
	for {
		var found *frrPath
		for _, p := range f.pathsFor(prefix) {
			if p.NextHop == nextHop {
				found = &p
			}
		}
		el := time.Since(start)
		switch {
		case found == nil && d.gshut < 0:
			t.Fatalf("%s via %s withdrawn after %s without graceful-shutdown first", prefix, nextHop, el)
		case found == nil:
			d.gone = el
			return d
		case !strings.Contains(found.Community, "graceful-shutdown"):
		case d.gshut < 0:
			d.gshut, d.first = el, *found
			fallthrough
		case d.demoted < 0 && !found.Best && !found.Multipath:
			if !found.Best && !found.Multipath {
				d.demoted = el
			}
		}
		if el > timeout {
			t.Fatalf("%s via %s still there after %s (graceful-shutdown seen: %v)", prefix, nextHop, timeout, d.gshut >= 0)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
