package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/bgp/gobgp"
	"github.com/straitlb/strait/internal/linerpc"
	"github.com/straitlb/strait/internal/netlab"
)

const helperEnv = "STRAIT_BGP_INTEROP_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		if err := runHelper(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "helper: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// request is one command to a helper. Peers and configs travel as JSON:
// their NodeSelector must be nil.
type request struct {
	Op string // start, update, drain, status, close

	// start
	NodeIP        netip.Addr
	Advertisement bgp.AdvertisementConfig
	DrainTime     time.Duration

	// update
	Input *bgp.Input
}

type response struct {
	Err    string
	Status *bgp.Status
}

// runHelper serves requests until stdin closes or a close request.
func runHelper(in io.Reader, out io.Writer) error {
	log, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	ctx := context.Background()
	var speaker *gobgp.Speaker
	var ctl *bgp.Controller
	defer func() {
		if speaker != nil {
			speaker.Close()
		}
	}()
	return linerpc.Serve(in, out, func(req request) (response, bool) {
		var resp response
		var err error
		switch {
		case req.Op == "start" && speaker == nil:
			speaker, err = gobgp.New(ctx, gobgp.Config{NodeIP: req.NodeIP, Logger: log})
			if err == nil {
				ctl = bgp.NewController(speaker, bgp.ControllerConfig{
					Advertisement: req.Advertisement, DrainTime: req.DrainTime, Logger: log,
				})
			}
		case ctl == nil:
			err = fmt.Errorf("%s before start", req.Op)
		case req.Op == "update" && req.Input != nil:
			err = ctl.Update(ctx, *req.Input)
		case req.Op == "drain":
			err = ctl.Drain(ctx, req.DrainTime)
		case req.Op == "status":
			st := speaker.Status()
			resp.Status = &st
		case req.Op == "close":
			err = speaker.Close()
			speaker = nil
		default:
			err = fmt.Errorf("bad request %q", req.Op)
		}
		if err != nil {
			resp.Err = err.Error()
		}
		return resp, req.Op == "close"
	})
}

// node is a Strait speaker running in a child process inside a namespace.
type node struct {
	t    *testing.T
	name string
	ip   netip.Addr
	proc *netlab.Process

	mu  sync.Mutex
	enc *json.Encoder
	dec *json.Decoder
}

// startNode re-executes the test binary as a helper inside ns and starts a
// speaker with node IP ip.
func startNode(t *testing.T, ns *netlab.NS, name string, ip netip.Addr, adv bgp.AdvertisementConfig, drain time.Duration) *node {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	proc, err := ns.Spawn(cmd)
	logFile.Close()
	if err != nil {
		t.Fatal(err)
	}
	dumpOnFailure(t, name+" speaker log", logPath)
	n := &node{t: t, name: name, ip: ip, proc: proc, enc: json.NewEncoder(stdin), dec: json.NewDecoder(stdout)}
	n.call(request{Op: "start", NodeIP: ip, Advertisement: adv, DrainTime: drain})
	return n
}

// send issues a request and returns a function waiting for its response.
func (n *node) send(req request) func() response {
	n.mu.Lock()
	if err := n.enc.Encode(req); err != nil {
		n.mu.Unlock()
		return func() response { return response{Err: fmt.Sprintf("send %s to %s: %v", req.Op, n.name, err)} }
	}
	ch := make(chan response, 1)
	go func() {
		defer n.mu.Unlock()
		var r response
		if err := n.dec.Decode(&r); err != nil {
			r.Err = fmt.Sprintf("read %s response from %s: %v", req.Op, n.name, err)
		}
		ch <- r
	}()
	return func() response {
		select {
		case r := <-ch:
			return r
		case <-time.After(60 * time.Second):
			return response{Err: fmt.Sprintf("%s: no response to %s in 60s", n.name, req.Op)}
		}
	}
}

func (n *node) call(req request) response {
	n.t.Helper()
	r := n.send(req)()
	if r.Err != "" {
		n.t.Fatalf("%s %s: %s", n.name, req.Op, r.Err)
	}
	return r
}

func (n *node) update(in bgp.Input) { n.t.Helper(); n.call(request{Op: "update", Input: &in}) }

func (n *node) status() bgp.Status {
	n.t.Helper()
	return *n.call(request{Op: "status"}).Status
}

func dumpOnFailure(t *testing.T, what, path string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Logf("%s: %v", what, err)
			return
		}
		if len(b) > 64<<10 {
			b = b[len(b)-64<<10:]
		}
		t.Logf("---- %s (%s) ----\n%s", what, path, b)
	})
}
