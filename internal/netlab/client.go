package netlab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// clientEnv marks a process started by StartClient: the test binary runs
// the client loop instead of its tests (see RunClientIfRequested).
const clientEnv = "STRAIT_NETLAB_CLIENT"

// RunClientIfRequested turns this process into a client started by
// [NS.StartClient] when it is one, and never returns then. Call it first
// in TestMain of every test package that starts clients.
func RunClientIfRequested() {
	if os.Getenv(clientEnv) != "1" {
		return
	}
	serveClient(os.Stdin, os.Stdout)
	os.Exit(0)
}

// ClientRequest is one operation of a client process.
type ClientRequest struct {
	Op        string // "tcp", "udp" (connected socket), "udpto" (unconnected), "sleep"
	Addr      netip.AddrPort
	TimeoutMs int
	// Count repeats a tcp request on new connections (for latency).
	Count int
	// LocalPort binds the socket of a udp/udpto request (0: any), so
	// repeated requests are one flow.
	LocalPort uint16
	// Keep keeps the udpto socket open for the next udpto request with the
	// same LocalPort: one socket, one flow.
	Keep bool
}

// ClientResult is the answer to one request (the last of Count).
type ClientResult struct {
	Reply string // the server's greeting or datagram, "name|peer"
	// Local is the socket's address; Peer what getpeername() says (tcp,
	// connected udp); From the source recvfrom() reported (udpto).
	Local, Peer, From netip.AddrPort
	Cookie            uint64 // SO_COOKIE
	Errno             string // e.g. "ECONNREFUSED" when the operation failed with it
	Err               string
	// Elapsed is connect + first byte (tcp) or send + reply (udp), one per
	// repetition.
	Elapsed []time.Duration
}

// Client is a process inside a namespace and a cgroup that opens sockets
// on request: cgroup socket hooks see its sockets, which in-process
// goroutines (in the test's own cgroup) would not.
type Client struct {
	proc *Process
	mu   sync.Mutex
	in   io.WriteCloser
	out  *bufio.Scanner
}

// StartClient starts the test binary as a client inside n and, when cg is
// not nil, in cgroup cg (joined at clone time, before anything runs; the
// namespace is entered by forking from a thread inside it, so /sys stays
// as it is). The test binary must call RunClientIfRequested in TestMain.
func (n *NS) StartClient(cg *Cgroup) (*Client, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), clientEnv+"=1")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if cg != nil {
		fd, err := cg.Open()
		if err != nil {
			return nil, err
		}
		defer unix.Close(fd)
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = fd
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p, err := n.Spawn(cmd)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &Client{proc: p, in: in, out: sc}, nil
}

// Do runs one request and returns its result.
func (c *Client) Do(req ClientRequest) (ClientResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, _ := json.Marshal(req)
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		return ClientResult{}, fmt.Errorf("client: send request: %w", err)
	}
	if !c.out.Scan() {
		return ClientResult{}, fmt.Errorf("client: no answer: %v", c.out.Err())
	}
	var r ClientResult
	if err := json.Unmarshal(c.out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("client: decode %q: %w", c.out.Text(), err)
	}
	return r, nil
}

// Close stops the client.
func (c *Client) Close() error {
	c.in.Close()
	return c.proc.Stop()
}

func serveClient(in io.Reader, out io.Writer) {
	sc := bufio.NewScanner(in)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var req ClientRequest
		var res ClientResult
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			res.Err = err.Error()
		} else {
			res = clientOp(req)
		}
		if err := enc.Encode(res); err != nil {
			return
		}
	}
}

// kept are the udpto sockets kept open (ClientRequest.Keep), by local port.
var kept = map[uint16]*net.UDPConn{}

func clientOp(req ClientRequest) (res ClientResult) {
	timeout := time.Duration(req.TimeoutMs) * time.Millisecond
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	fail := func(err error) ClientResult {
		res.Err = err.Error()
		var errno syscall.Errno
		if errors.As(err, &errno) {
			res.Errno = unix.ErrnoName(errno)
		}
		return res
	}
	switch req.Op {
	case "tcp":
		n := max(req.Count, 1)
		for range n {
			res = ClientResult{Elapsed: res.Elapsed}
			start := time.Now()
			d := net.Dialer{Timeout: timeout}
			cn, err := d.Dial("tcp4", req.Addr.String())
			if err != nil {
				return fail(err)
			}
			cn.SetDeadline(time.Now().Add(timeout))
			r := bufio.NewReader(cn)
			line, err := r.ReadString('\n')
			if err != nil {
				cn.Close()
				return fail(err)
			}
			res.Elapsed = append(res.Elapsed, time.Since(start))
			res.Reply = strings.TrimSuffix(line, "\n")
			res.Local = addrPort(cn.LocalAddr())
			sockInfo(cn.(*net.TCPConn), &res)
			cn.Close()
		}
		return res
	case "udp":
		start := time.Now()
		var laddr *net.UDPAddr
		if req.LocalPort != 0 {
			laddr = &net.UDPAddr{Port: int(req.LocalPort)}
		}
		cn, err := net.DialUDP("udp4", laddr, net.UDPAddrFromAddrPort(req.Addr))
		if err != nil {
			return fail(err)
		}
		defer cn.Close()
		res.Local = addrPort(cn.LocalAddr())
		sockInfo(cn, &res)
		buf := make([]byte, 2048)
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			if _, err := cn.Write([]byte("probe")); err != nil {
				return fail(err)
			}
			cn.SetReadDeadline(time.Now().Add(min(200*time.Millisecond, time.Until(deadline))))
			k, err := cn.Read(buf)
			if err == nil {
				res.Reply = string(buf[:k])
				res.Elapsed = []time.Duration{time.Since(start)}
				return res
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return fail(err)
			}
		}
		return fail(errors.New("no reply before timeout"))
	case "udpto":
		start := time.Now()
		cn := kept[req.LocalPort]
		if cn == nil {
			var err error
			cn, err = net.ListenUDP("udp4", &net.UDPAddr{Port: int(req.LocalPort)})
			if err != nil {
				return fail(err)
			}
			if req.Keep && req.LocalPort != 0 {
				kept[req.LocalPort] = cn
			}
		}
		if !req.Keep {
			delete(kept, req.LocalPort)
			defer cn.Close()
		}
		sockInfo(cn, &res)
		buf := make([]byte, 2048)
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			if _, err := cn.WriteToUDPAddrPort([]byte("probe"), req.Addr); err != nil {
				return fail(err)
			}
			res.Local = addrPort(cn.LocalAddr())
			cn.SetReadDeadline(time.Now().Add(min(200*time.Millisecond, time.Until(deadline))))
			k, from, err := cn.ReadFromUDPAddrPort(buf)
			if err == nil {
				res.Reply = string(buf[:k])
				res.From = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
				res.Elapsed = []time.Duration{time.Since(start)}
				return res
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return fail(err)
			}
		}
		return fail(errors.New("no reply before timeout"))
	case "sleep":
		time.Sleep(timeout)
		return res
	}
	return fail(fmt.Errorf("unknown op %q", req.Op))
}

// sockInfo fills in the socket cookie and what getpeername() says.
func sockInfo(c syscall.Conn, res *ClientResult) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if v, err := unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE); err == nil {
			res.Cookie = v
		}
		if sa, err := unix.Getpeername(int(fd)); err == nil {
			if in4, ok := sa.(*unix.SockaddrInet4); ok {
				res.Peer = netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port))
			}
		}
	})
}
