package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/internal/netlab"
)

// agentProc is one strait-agent running in a node namespace.
type agentProc struct {
	node    *netlab.Node
	cmd     *exec.Cmd
	proc    *netlab.Process
	logPath string
	bpffs   string
}

// startAgent runs strait-agent in n's namespace with a private bpffs.
func startAgent(n *netlab.Node, bin, manifests, tmp, prefix string) (*agentProc, error) {
	fs := filepath.Join(tmp, "bpffs-"+n.Name)
	if err := loader.EnsureBPFFS(fs); err != nil {
		return nil, err
	}
	a := &agentProc{node: n, logPath: filepath.Join(tmp, n.Name+".log"), bpffs: fs}
	logf, err := os.Create(a.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// ip netns exec gives the agent the namespace's own /sys, so device
	// discovery sees the node's devices, as on a real node.
	a.cmd = exec.Command("ip", "netns", "exec", n.NS.Name(), bin,
		"--standalone", manifests,
		"--node-name", n.Name,
		"--pin-dir", filepath.Join(fs, "strait"),
		"--log-format", "json",
	)
	// The per-packet east-west path on the pods' host-side veths.
	cfg := filepath.Join(tmp, n.Name+".yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("podDevices: [%q]\nbgpDrainTime: 1s\n", prefix+"-v*")), 0o600); err != nil {
		return nil, err
	}
	a.cmd.Args = append(a.cmd.Args, "--config", cfg)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if a.proc, err = n.NS.Spawn(a.cmd); err != nil {
		return nil, fmt.Errorf("start agent on %s: %w", n.Name, err)
	}
	return a, nil
}

// stop sends SIGTERM, as the kubelet would, then makes sure.
func (a *agentProc) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = a.proc.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	_ = a.proc.Stop()
	_ = unix.Unmount(a.bpffs, unix.MNT_DETACH)
}

// printLog prints the message of the agent's first n log lines that
// match keep (all when keep is nil).
func (a *agentProc) printLog(n int, keep ...string) {
	f, err := os.Open(a.logPath)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; i < n && sc.Scan(); {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			fmt.Printf("  | %s\n", sc.Text())
			i++
			continue
		}
		if len(keep) > 0 && !slices.Contains(keep, fmt.Sprint(m["msg"])) {
			continue
		}
		if m["msg"] == "device decision" && m["use"] != true {
			continue
		}
		i++
		delete(m, "ts")
		delete(m, "caller")
		lvl, msg := m["level"], m["msg"]
		delete(m, "level")
		delete(m, "msg")
		rest, _ := json.Marshal(m)
		fmt.Printf("  | %-5v %v %s\n", lvl, msg, rest)
	}
}

// waitProgrammed waits until the client reaches the web NodePort on every
// node: both agents have synced.
func waitProgrammed(ctx context.Context, t *netlab.Topology, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range t.Nodes {
		for {
			if _, _, err := netlab.DialTCP(t.Client, netip.AddrPortFrom(n.IP, nodePort), 300*time.Millisecond); err == nil {
				break
			} else if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("agent on %s did not program the datapath in %s: %w", n.Name, timeout, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// agentStatus summarises an agent's /status (served on its loopback, in
// its namespace).
func agentStatus(n *netlab.Node) (string, error) {
	var body []byte
	err := n.NS.Do(func() error {
		// Dial here, on this thread: http.Client would dial from another
		// goroutine, outside the namespace.
		conn, err := net.DialTimeout("tcp", "127.0.0.1:10249", 2*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(conn, "GET /status HTTP/1.0\r\nHost: agent\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		return err
	})
	if err != nil {
		return "", err
	}
	var st struct {
		Attached []struct {
			Name string
			Mode string
		} `json:"attached"`
		BGP *struct {
			Peers []struct {
				Name       string
				State      any
				Advertised []string
			}
		} `json:"bgp"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, d := range st.Attached {
		fmt.Fprintf(&b, "  device %s: XDP %s\n", d.Name, d.Mode)
	}
	if st.BGP != nil {
		for _, p := range st.BGP.Peers {
			fmt.Fprintf(&b, "  bgp peer %s: %s, advertising %v\n", p.Name, p.State, p.Advertised)
		}
	}
	return b.String(), nil
}
