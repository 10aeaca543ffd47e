package netlab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxPeers bounds the remote addresses a server remembers.
const maxPeers = 1024

// echoProbe is what DialTCP sends after the greeting to check the echo.
const echoProbe = "netlab-echo"

// Reply is a server answer: "name|ip:port", the server's name and the client
// address as the server saw it.
type Reply struct {
	Name string
	Peer netip.AddrPort
}

// ParseReply parses a TCP greeting or a UDP reply.
func ParseReply(s string) (Reply, error) {
	name, peer, ok := strings.Cut(strings.TrimSpace(s), "|")
	if !ok || name == "" {
		return Reply{}, fmt.Errorf("parse reply %q: want name|ip:port", s)
	}
	ap, err := netip.ParseAddrPort(peer)
	if err != nil {
		return Reply{}, fmt.Errorf("parse reply %q: %w", s, err)
	}
	return Reply{Name: name, Peer: ap}, nil
}

// peerLog remembers the most recent peers of a server.
type peerLog struct {
	mu    sync.Mutex
	peers []netip.AddrPort
	total int
}

func (p *peerLog) add(a netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total++
	if len(p.peers) == maxPeers {
		copy(p.peers, p.peers[1:])
		p.peers = p.peers[:maxPeers-1]
	}
	p.peers = append(p.peers, a)
}

func (p *peerLog) list() ([]netip.AddrPort, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]netip.AddrPort(nil), p.peers...), p.total
}

// TCPServer answers every connection with "name|client-ip:port\n" and then
// echoes what it receives.
type TCPServer struct {
	peers peerLog
	name  string
	ln    net.Listener
	wg    sync.WaitGroup
	cmu   sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

// ServeTCP starts a TCP server inside the namespace on addr (an unspecified
// or zero address listens on every IPv4 address; port 0 picks one). The lab
// stops it on Shutdown.
func (n *NS) ServeTCP(name string, addr netip.AddrPort) (*TCPServer, error) {
	network, hostport := listenAddr("tcp", addr)
	var ln net.Listener
	err := n.Do(func() (err error) { ln, err = net.Listen(network, hostport); return err })
	if err != nil {
		return nil, fmt.Errorf("listen tcp %s in %s: %w", hostport, n.full, err)
	}
	s := &TCPServer{name: name, ln: ln, conns: make(map[net.Conn]struct{})}
	if err := n.lab.addCloser(s); err != nil {
		return nil, fmt.Errorf("serve tcp %s in %s: %w", hostport, n.full, err)
	}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Name returns the name the server answers with.
func (s *TCPServer) Name() string { return s.name }

// Addr returns the listening address.
func (s *TCPServer) Addr() netip.AddrPort { return addrPort(s.ln.Addr()) }

// Peers returns the client addresses of accepted connections as the server
// saw them (oldest first, at most the last 1024) and the total count.
func (s *TCPServer) Peers() ([]netip.AddrPort, int) { return s.peers.list() }

func (s *TCPServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.cmu.Lock()
		if s.done {
			s.cmu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.cmu.Unlock()
		peer := addrPort(c.RemoteAddr())
		s.peers.add(peer)
		go s.handle(c, peer)
	}
}

func (s *TCPServer) handle(c net.Conn, peer netip.AddrPort) {
	defer s.wg.Done()
	defer func() {
		s.cmu.Lock()
		delete(s.conns, c)
		s.cmu.Unlock()
		c.Close()
	}()
	if _, err := fmt.Fprintf(c, "%s|%s\n", s.name, peer); err != nil {
		return
	}
	io.Copy(c, c)
}

// Close stops the listener and every connection and waits for them.
func (s *TCPServer) Close() error {
	s.cmu.Lock()
	if s.done {
		s.cmu.Unlock()
		return nil
	}
	s.done = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.cmu.Unlock()
	s.wg.Wait()
	return err
}

// UDPServer replies to every datagram with "name|client-ip:port".
type UDPServer struct {
	peers peerLog
	name  string
	conn  *net.UDPConn
	wg    sync.WaitGroup
	once  sync.Once
}

// ServeUDP starts a UDP server inside the namespace on addr (same rules as
// ServeTCP). The lab stops it on Shutdown.
func (n *NS) ServeUDP(name string, addr netip.AddrPort) (*UDPServer, error) {
	network, hostport := listenAddr("udp", addr)
	var pc net.PacketConn
	err := n.Do(func() (err error) { pc, err = net.ListenPacket(network, hostport); return err })
	if err != nil {
		return nil, fmt.Errorf("listen udp %s in %s: %w", hostport, n.full, err)
	}
	s := &UDPServer{name: name, conn: pc.(*net.UDPConn)}
	if err := n.lab.addCloser(s); err != nil {
		return nil, fmt.Errorf("serve udp %s in %s: %w", hostport, n.full, err)
	}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Name returns the name the server answers with.
func (s *UDPServer) Name() string { return s.name }

// Addr returns the listening address.
func (s *UDPServer) Addr() netip.AddrPort { return addrPort(s.conn.LocalAddr()) }

// Peers returns the sender addresses of received datagrams as the server saw
// them (oldest first, at most the last 1024) and the total count.
func (s *UDPServer) Peers() ([]netip.AddrPort, int) { return s.peers.list() }

func (s *UDPServer) serve() {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		_, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // e.g. ECONNREFUSED reported from an earlier reply
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		s.peers.add(from)
		s.conn.WriteToUDPAddrPort([]byte(s.name+"|"+from.String()), from)
	}
}

// Close stops the server and waits for it.
func (s *UDPServer) Close() error {
	var err error
	s.once.Do(func() {
		err = s.conn.Close()
		s.wg.Wait()
	})
	return err
}

// DialTCP connects from inside ns (the caller's namespace when ns is nil) to
// a TCPServer at addr, reads its greeting, checks that a probe line is echoed
// and returns the greeting (without newline) and the client's local address.
func DialTCP(ns *NS, addr netip.AddrPort, timeout time.Duration) (reply string, local netip.AddrPort, err error) {
	err = inNS(ns, func() error {
		d := net.Dialer{Timeout: timeout}
		c, err := d.Dial(network("tcp", addr), addr.String())
		if err != nil {
			return err
		}
		defer c.Close()
		local = addrPort(c.LocalAddr())
		c.SetDeadline(time.Now().Add(timeout))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("read greeting: %w", err)
		}
		reply = strings.TrimSuffix(line, "\n")
		if _, err := io.WriteString(c, echoProbe+"\n"); err != nil {
			return fmt.Errorf("write probe: %w", err)
		}
		echo, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("read echo: %w", err)
		}
		if echo != echoProbe+"\n" {
			return fmt.Errorf("echo %q, want %q", echo, echoProbe+"\n")
		}
		return nil
	})
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("tcp request to %s from %s: %w", addr, nsName(ns), err)
	}
	return reply, local, nil
}

// UDPRequest sends a datagram from inside ns (the caller's namespace when ns
// is nil) to a UDPServer at addr over a connected socket, resending every
// 200ms until a reply arrives or timeout passes, and returns the reply and
// the client's local address. Only replies from addr are accepted.
func UDPRequest(ns *NS, addr netip.AddrPort, timeout time.Duration) (reply string, local netip.AddrPort, err error) {
	err = inNS(ns, func() error {
		c, err := net.DialUDP(network("udp", addr), nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return err
		}
		defer c.Close()
		local = addrPort(c.LocalAddr())
		deadline := time.Now().Add(timeout)
		buf := make([]byte, 2048)
		for time.Now().Before(deadline) {
			if _, err := c.Write([]byte("netlab-probe")); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
				return err
			}
			next := time.Now().Add(200 * time.Millisecond)
			if next.After(deadline) {
				next = deadline
			}
			c.SetReadDeadline(next)
			n, err := c.Read(buf)
			if err == nil {
				reply = string(buf[:n])
				return nil
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
		}
		return errors.New("no reply before timeout")
	})
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("udp request to %s from %s: %w", addr, nsName(ns), err)
	}
	return reply, local, nil
}

func inNS(ns *NS, fn func() error) error {
	if ns == nil {
		return fn()
	}
	return ns.Do(fn)
}

func nsName(ns *NS) string {
	if ns == nil {
		return "current namespace"
	}
	return ns.full
}

// network picks "tcp4"/"udp4" or "tcp6"/"udp6" for addr.
func network(proto string, addr netip.AddrPort) string {
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		return proto + "6"
	}
	return proto + "4"
}

// listenAddr returns the network and host:port to listen on for addr.
func listenAddr(proto string, addr netip.AddrPort) (string, string) {
	if !addr.Addr().IsValid() {
		addr = netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port())
	}
	return network(proto, addr), addr.String()
}

// addrPort converts a TCP or UDP net.Addr, unmapping IPv4-in-IPv6.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
