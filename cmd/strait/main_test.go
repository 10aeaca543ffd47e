package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/loader/loadertest"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/model"
)

// `strait maps` prints exactly what an agent programmed into the pinned
// maps, and refuses to create a datapath where none is pinned.
func TestPrivilegedMapsDumpsPinnedState(t *testing.T) {
	dir := loadertest.PinDir(t)
	d := loadertest.Load(t, dir)
	p, err := program.New(zaptest.NewLogger(t), d.Maps, program.Config{})
	if err != nil {
		t.Fatal(err)
	}
	st := model.State{Services: []model.Service{{
		Name:      model.ServiceName{Namespace: "cli", Name: "web"},
		Frontends: []model.Frontend{{Addr: netip.MustParseAddr("203.0.113.10"), Port: 80, Proto: model.TCP, Kind: model.LoadBalancer}},
		Backends:  []model.Backend{{Addr: netip.MustParseAddr("198.18.1.10"), Port: 8080, Local: true}},
	}}}
	if res, err := p.Apply(st); err != nil || len(res.Failed) > 0 {
		t.Fatalf("apply: %v %v", err, res.Failed)
	}
	want, err := lbmap.Dump(d.Maps)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := maps(&out, []string{"--pin-dir", dir}); err != nil {
		t.Fatal(err)
	}
	if out.String() != want || !strings.Contains(want, "frontend 203.0.113.10:80/TCP") {
		t.Fatalf("strait maps printed\n%s\nwant\n%s", out.String(), want)
	}
	if err := maps(&out, []string{"--pin-dir", dir + "-missing"}); err == nil {
		t.Fatal("no error for a directory without a pinned datapath")
	}
}
