package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/model"
)

const birdConf = `router id %[1]s;
log stderr all;
protocol device {}
template bgp node {
	local %[1]s as %[2]d;
	connect retry time 1;
	hold time 9;
	ipv4 { import all; export none; };
}
protocol bgp node1 from node { neighbor %[3]s as %[4]d; }
protocol bgp node2 from node { neighbor %[5]s as %[4]d; }
`

type bird struct {
	t   *testing.T
	ctl string
	ns  interface {
		Run(string, ...string) (string, error)
	}
}

func startBIRD(t *testing.T, l *lab) *bird {
	t.Helper()
	requireBinary(t, "/usr/sbin/bird")
	requireBinary(t, "/usr/sbin/birdc")
	dir := runDir(t, "bird")
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(birdConf, torIP, torASN, node1IP, nodeASN, node2IP)), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &bird{t: t, ctl: filepath.Join(dir, "bird.ctl"), ns: l.tor}
	spawnLogged(t, l.tor, dir, "bird", "/usr/sbin/bird", "-f", "-c", conf, "-s", b.ctl, "-P", filepath.Join(dir, "bird.pid"))
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range []string{"show protocols all", "show route all"} {
				out, err := b.birdc(c)
				t.Logf("---- birdc %s ----\n%s%v", c, out, err)
			}
		}
	})
	poll(t, 20*time.Second, "birdc answers", func() bool {
		_, err := b.birdc("show status")
		return err == nil
	})
	return b
}

func (b *bird) birdc(cmd string) (string, error) {
	return b.ns.Run("birdc", append([]string{"-s", b.ctl}, strings.Fields(cmd)...)...)
}

func (b *bird) established(proto string) bool {
	out, err := b.birdc("show protocols " + proto)
	return err == nil && strings.Contains(out, "Established")
}

// birdRoute is one route of `show route all`.
type birdRoute struct {
	Prefix, Via, Community string
}

var (
	birdPrefixLine = regexp.MustCompile(`^(\d+\.\d+\.\d+\.\d+/\d+)\s+unicast`)
	birdAltLine    = regexp.MustCompile(`^\s+unicast \[`)
	birdVia        = regexp.MustCompile(`via (\d+\.\d+\.\d+\.\d+)`)
	birdCommunity  = regexp.MustCompile(`BGP\.community:\s*(.*)$`)
)

// routes parses `birdc show route all` (BIRD 2): a line with the prefix
// opens its first route, lines starting with "unicast [" open alternatives,
// "via" and "BGP.community" lines belong to the current route.
func (b *bird) routes() []birdRoute {
	b.t.Helper()
	out, err := b.birdc("show route all")
	if err != nil {
		b.t.Fatal(err)
	}
	var rs []birdRoute
	prefix := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case birdPrefixLine.MatchString(line):
			prefix = birdPrefixLine.FindStringSubmatch(line)[1]
			rs = append(rs, birdRoute{Prefix: prefix})
		case birdAltLine.MatchString(line) && prefix != "":
			rs = append(rs, birdRoute{Prefix: prefix})
		case len(rs) > 0 && birdVia.MatchString(line) && rs[len(rs)-1].Via == "":
			rs[len(rs)-1].Via = birdVia.FindStringSubmatch(line)[1]
		case len(rs) > 0 && birdCommunity.MatchString(line):
			rs[len(rs)-1].Community = strings.TrimSpace(birdCommunity.FindStringSubmatch(line)[1])
		}
	}
	return rs
}

// vias returns the sorted next hops of prefix.
func vias(rs []birdRoute, prefix string) string {
	var v []string
	for _, r := range rs {
		if r.Prefix == prefix {
			v = append(v, r.Via)
		}
	}
	sort.Strings(v)
	return strings.Join(v, ",")
}

// TestPrivilegedBIRD repeats the basic case against BIRD 2: both nodes'
// sessions come up, BIRD learns the LoadBalancer IP from both with the
// configured community, and an externalTrafficPolicy=Local IP is withdrawn
// by the node whose last local backend went.
func TestPrivilegedBIRD(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	b := startBIRD(t, l)

	comm, _ := bgp.ParseCommunity("64512:100")
	adv := bgp.AdvertisementConfig{Communities: []uint32{comm}}
	n1 := startNode(t, l.n1, "node1", node1IP, adv, 0)
	n2 := startNode(t, l.n2, "node2", node2IP, adv, 0)

	const clusterVIP, localVIP = "203.0.113.10", "203.0.113.20"
	ins := []bgp.Input{{
		State: model.State{Services: []model.Service{clusterService("web", clusterVIP), localService("local", localVIP, 1)}},
		Node:  bgp.NodeStatus{Name: "node1"},
		Peers: towardTor(""),
	}, {
		State: model.State{Services: []model.Service{clusterService("web", clusterVIP), localService("local", localVIP, 1)}},
		Node:  bgp.NodeStatus{Name: "node2"},
		Peers: towardTor(""),
	}}
	start := time.Now()
	var wg sync.WaitGroup
	for i, n := range []*node{n1, n2} {
		wg.Add(1)
		go func() { defer wg.Done(); n.update(ins[i]) }()
	}
	wg.Wait()
	poll(t, 20*time.Second, "both BIRD sessions established", func() bool { return b.established("node1") && b.established("node2") })
	t.Logf("measured: both sessions established at BIRD %s after the first Update", time.Since(start).Round(time.Millisecond))

	both := node1IP.String() + "," + node2IP.String()
	poll(t, 10*time.Second, "both VIPs from both nodes", func() bool {
		rs := b.routes()
		return vias(rs, clusterVIP+"/32") == both && vias(rs, localVIP+"/32") == both
	})
	rs := b.routes()
	if len(rs) != 4 {
		t.Errorf("BIRD routes %+v, want 4", rs)
	}
	for _, r := range rs {
		if r.Community != "(64512,100)" {
			t.Errorf("%s via %s: community %q, want (64512,100)", r.Prefix, r.Via, r.Community)
		}
	}

	ins[1].State.Services[1] = localService("local", localVIP, 0)
	n2.update(ins[1])
	d := poll(t, 10*time.Second, "node2 withdraws the Local VIP", func() bool {
		rs := b.routes()
		return vias(rs, localVIP+"/32") == node1IP.String() && vias(rs, clusterVIP+"/32") == both
	})
	t.Logf("measured: eTP=Local withdrawal visible in BIRD %s after Update", d.Round(time.Millisecond))
}
