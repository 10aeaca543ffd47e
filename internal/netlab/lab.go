package netlab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 and vishvananda/netns keep named namespaces.
const netnsDir = "/var/run/netns"

// DefaultBase is the prefix base used when New is given an empty one.
const DefaultBase = "st"

// maxBaseLen keeps "<base><4 hex>-<suffix>" within IFNAMSIZ-1 for the names
// BuildTopology uses.
const maxBaseLen = 4

// Lab is one run's set of namespaces, links, XDP attachments, servers and
// processes. All methods are safe for concurrent use.
type Lab struct {
	prefix string // e.g. "st3f9a"; every name is prefix + "-" + suffix

	mu      sync.Mutex
	closed  bool
	nss     []*NS // creation order
	byName  map[string]*NS
	closers []io.Closer // servers, in creation order
	procs   []*Process
	links   []link.Link
	xdpPass *ebpf.Program
	cgroups []string // created cgroup directories, removed after procs
}

// New creates an empty lab whose names start with base (DefaultBase when
// empty; at most 4 characters of [a-z0-9]) followed by four random hex
// digits. The prefix is checked against existing namespaces and links so that
// concurrent runs on one machine do not collide.
func New(base string) (*Lab, error) {
	prefix, err := newPrefix(base, prefixInUse)
	if err != nil {
		return nil, err
	}
	return &Lab{prefix: prefix, byName: make(map[string]*NS)}, nil
}

// NewT creates a lab for a test, skips or fails the test when it is not
// privileged (see RequirePrivileged), and registers Shutdown as cleanup,
// reporting its errors through t.
func NewT(t testing.TB) *Lab {
	t.Helper()
	RequirePrivileged(t)
	l, err := New(DefaultBase)
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Shutdown(); err != nil {
			t.Errorf("netlab: %v", err)
		}
	})
	return l
}

// RequirePrivileged skips the test unless it runs as root. When the
// environment variable CI is set it fails the test instead, so CI cannot
// silently skip the privileged suite.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("privileged test needs root (CI is set, refusing to skip)")
	}
	t.Skip("privileged test needs root")
}

// Prefix returns the run prefix, e.g. "st3f9a". Every namespace and link of
// the lab is named Prefix()+"-"+something.
func (l *Lab) Prefix() string { return l.prefix }

// Name returns the prefixed name for suffix ("st3f9a-" + suffix).
func (l *Lab) Name(suffix string) string { return l.prefix + "-" + suffix }

// IfName returns the prefixed interface name for suffix, or an error when it
// does not fit in an interface name (15 bytes).
func (l *Lab) IfName(suffix string) (string, error) {
	name := l.Name(suffix)
	if err := validIfName(name); err != nil {
		return "", err
	}
	return name, nil
}

// NS returns the namespace created by AddNS(name), or nil.
func (l *Lab) NS(name string) *NS {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byName[name]
}

// Namespaces returns the lab's namespaces in creation order.
func (l *Lab) Namespaces() []*NS {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*NS(nil), l.nss...)
}

// AddNS creates the named network namespace Prefix()+"-"+name with its
// loopback up.
func (l *Lab) AddNS(name string) (*NS, error) {
	if name == "" || strings.ContainsAny(name, "/ \t\n") {
		return nil, fmt.Errorf("add namespace %q: invalid name", name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("add namespace %s: %w", name, ErrClosed)
	}
	if _, ok := l.byName[name]; ok {
		return nil, fmt.Errorf("add namespace %s: already exists", name)
	}
	full := l.Name(name)
	h, err := createNamedNS(full)
	if err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", full, err)
	}
	ns := &NS{lab: l, name: name, full: full, handle: h}
	// Registered before further setup so Shutdown removes it on failure.
	l.nss = append(l.nss, ns)
	l.byName[name] = ns
	ns.nl, err = netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", full, err)
	}
	if err := ns.SetUp("lo"); err != nil {
		return nil, err
	}
	return ns, nil
}

// createNamedNS creates a network namespace and bind-mounts it at
// netnsDir/name. The unshare happens on a locked OS thread that is never
// unlocked, so the runtime discards the thread instead of reusing it.
func createNamedNS(name string) (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread ends up in the new netns
		h, err := unshareAndMount(name)
		ch <- result{h, err}
	}()
	r := <-ch
	return r.h, r.err
}

func unshareAndMount(name string) (netns.NsHandle, error) {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return netns.None(), err
	}
	path := netnsDir + "/" + name
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return netns.None(), err
	}
	f.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		os.Remove(path)
		return netns.None(), fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return netns.None(), fmt.Errorf("bind mount: %w", err)
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		unix.Unmount(path, unix.MNT_DETACH)
		os.Remove(path)
		return netns.None(), err
	}
	return h, nil
}

// Close removes everything the lab created, ignoring errors; it is meant for
// t.Cleanup and defer. Use Shutdown to see errors. Idempotent.
func (l *Lab) Close() { _ = l.Shutdown() }

// Shutdown stops servers and processes, detaches XDP programs, deletes every
// link in the lab's namespaces and removes the namespaces. It returns all
// errors joined. Only the first call does anything.
func (l *Lab) Shutdown() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	closers, procs, links, nss := l.closers, l.procs, l.links, l.nss
	prog := l.xdpPass
	l.closers, l.procs, l.links, l.nss, l.xdpPass = nil, nil, nil, nil, nil
	l.byName = map[string]*NS{}
	l.mu.Unlock()

	var errs []error
	// Sockets pin their namespace: stop servers first.
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("close server: %w", err))
		}
	}
	for _, p := range procs {
		if err := p.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	l.mu.Lock()
	cgs := l.cgroups
	l.cgroups = nil
	l.mu.Unlock()
	for i := len(cgs) - 1; i >= 0; i-- {
		if err := removeCgroup(cgs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	for _, lk := range links {
		if err := lk.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach xdp: %w", err))
		}
	}
	if prog != nil {
		if err := prog.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close xdp program: %w", err))
		}
	}
	for i := len(nss) - 1; i >= 0; i-- {
		if err := nss[i].destroy(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// addCloser registers a server to stop on Shutdown. It fails (after closing
// c) if the lab is already closed.
func (l *Lab) addCloser(c io.Closer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return ErrClosed
	}
	l.closers = append(l.closers, c)
	return nil
}

func newPrefix(base string, inUse func(string) bool) (string, error) {
	if base == "" {
		base = DefaultBase
	}
	if len(base) > maxBaseLen {
		return "", fmt.Errorf("prefix base %q: longer than %d characters", base, maxBaseLen)
	}
	for _, c := range base {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return "", fmt.Errorf("prefix base %q: only a-z and 0-9 are allowed", base)
		}
	}
	var b [2]byte
	for range 32 {
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("random prefix: %w", err)
		}
		p := base + hex.EncodeToString(b[:])
		if !inUse(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("random prefix for base %q: every candidate is in use", base)
}

// prefixInUse reports whether a named namespace or a link in the current
// namespace already uses prefix+"-".
func prefixInUse(prefix string) bool {
	p := prefix + "-"
	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), p) {
				return true
			}
		}
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			if strings.HasPrefix(i.Name, p) {
				return true
			}
		}
	}
	return false
}

// validIfName checks the kernel's rules for interface names.
func validIfName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("interface name %q: invalid", name)
	case len(name) >= unix.IFNAMSIZ:
		return fmt.Errorf("interface name %q: longer than %d bytes", name, unix.IFNAMSIZ-1)
	case strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("interface name %q: contains '/', ':' or whitespace", name)
	}
	return nil
}
