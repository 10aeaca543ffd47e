package netlab

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is a named network namespace owned by a Lab.
type NS struct {
	lab    *Lab
	name   string // short name given to AddNS, e.g. "router"
	full   string // named netns, e.g. "st3f9a-router"
	handle netns.NsHandle
	nl     *netlink.Handle

	// mu guards handle and nl against destroy: a closed fd number could be
	// reused, and a closed netlink.Handle silently falls back to the
	// caller's namespace.
	mu   sync.RWMutex
	dead bool
}

// ErrClosed is returned (wrapped) by operations on a lab that is shut down.
var ErrClosed = errors.New("lab is shut down")

// withNL runs fn with the namespace's netlink handle, unless the lab is shut
// down.
func (n *NS) withNL(fn func(*netlink.Handle) error) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.dead || n.nl == nil {
		return ErrClosed
	}
	return fn(n.nl)
}

// Name returns the named netns (usable with `ip netns exec`).
func (n *NS) Name() string { return n.full }

// Short returns the name given to AddNS.
func (n *NS) Short() string { return n.name }

// String returns the named netns.
func (n *NS) String() string { return n.full }

// Path returns the namespace's bind mount, e.g. /var/run/netns/st3f9a-router.
func (n *NS) Path() string { return netnsDir + "/" + n.full }

// Netlink returns a netlink handle operating inside the namespace, for
// anything the helpers do not cover, or nil once the lab is shut down. Do not
// use it after Shutdown: a closed netlink.Handle falls back to the caller's
// namespace.
func (n *NS) Netlink() *netlink.Handle {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.dead {
		return nil
	}
	return n.nl
}

// Do runs fn on an OS thread that has joined the namespace and returns its
// error. Sockets created by fn stay in the namespace after Do returns.
// Goroutines started by fn do not inherit the namespace. A panic in fn is
// re-raised in the caller; fn must not call t.FailNow (it runs on another
// goroutine).
func (n *NS) Do(fn func() error) error {
	type result struct {
		err      error
		panicked bool
		pval     any
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("get current netns: %w", err)}
			return
		}
		defer orig.Close()
		if err := n.enter(); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("enter netns %s: %w", n.full, err)}
			return
		}
		var r result
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.panicked, r.pval = true, p
				}
			}()
			r.err = fn()
		}()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime discards it when this
			// goroutine exits, so no goroutine ever runs in the wrong netns.
			r.err = errors.Join(r.err, fmt.Errorf("leave netns %s: %w", n.full, err))
			ch <- r
			return
		}
		runtime.UnlockOSThread()
		ch <- r
	}()
	r := <-ch
	if r.panicked {
		panic(r.pval)
	}
	return r.err
}

// enter moves the calling thread into the namespace.
func (n *NS) enter() error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.dead {
		return ErrClosed
	}
	return netns.Set(n.handle)
}

// Start starts cmd inside the namespace: the child is forked from a thread
// that has joined it. The caller owns cmd (Wait it). Unlike `ip netns exec`,
// the mount namespace and /sys are left alone.
func (n *NS) Start(cmd *exec.Cmd) error {
	if err := n.Do(cmd.Start); err != nil {
		return fmt.Errorf("start %s in %s: %w", cmd.Path, n.full, err)
	}
	return nil
}

// Run runs a command inside the namespace and returns its combined output.
// A failure's error includes the output.
func (n *NS) Run(name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := n.Start(cmd); err != nil {
		return "", err
	}
	if err := cmd.Wait(); err != nil {
		return out.String(), fmt.Errorf("run %s in %s: %w: %s",
			strings.Join(cmd.Args, " "), n.full, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// Process is a child process started by Spawn; the lab kills it (and its
// process group) on Shutdown.
type Process struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
}

// Spawn starts cmd inside the namespace in its own process group and
// registers it with the lab, which kills the group on Shutdown. Use
// Process.Wait, not cmd.Wait.
func (n *NS) Spawn(cmd *exec.Cmd) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	l := n.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("spawn %s in %s: %w", cmd.Path, n.full, ErrClosed)
	}
	if err := n.Start(cmd); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns cmd.Wait's error.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Stop kills the process group with SIGKILL (if the process is still
// running) and waits for the process. It is idempotent and returns nil when
// the process was killed or had already exited.
func (p *Process) Stop() error {
	var err error
	p.once.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		// The leader is not reaped yet, so its pid and process group id are
		// still ours.
		if e := syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL); e != nil && !errors.Is(e, syscall.ESRCH) {
			err = fmt.Errorf("kill process group %d: %w", p.Cmd.Process.Pid, e)
			p.Cmd.Process.Kill()
		}
		<-p.done
	})
	return err
}

// SetSysctl writes value to a sysctl inside the namespace. key is either
// dotted ("net.ipv4.ip_forward") or a path below /proc/sys
// ("net/ipv4/conf/eth0.10/rp_filter").
func (n *NS) SetSysctl(key, value string) error {
	path := key
	if !strings.Contains(key, "/") {
		path = strings.ReplaceAll(key, ".", "/")
	}
	path = "/proc/sys/" + strings.TrimPrefix(path, "/proc/sys/")
	err := n.Do(func() error { return os.WriteFile(path, []byte(value), 0o644) })
	if err != nil {
		return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, n.full, err)
	}
	return nil
}

// Sysctl reads a sysctl inside the namespace (same key forms as SetSysctl).
func (n *NS) Sysctl(key string) (string, error) {
	path := key
	if !strings.Contains(key, "/") {
		path = strings.ReplaceAll(key, ".", "/")
	}
	path = "/proc/sys/" + strings.TrimPrefix(path, "/proc/sys/")
	var b []byte
	err := n.Do(func() (err error) { b, err = os.ReadFile(path); return err })
	if err != nil {
		return "", fmt.Errorf("read sysctl %s in %s: %w", key, n.full, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// EnableForwarding turns IPv4 forwarding on inside the namespace.
func (n *NS) EnableForwarding() error { return n.SetSysctl("net.ipv4.ip_forward", "1") }

// SNMP returns the namespace's /proc/net/snmp counters keyed nstat-style:
// protocol + field, e.g. "TcpInCsumErrors", "UdpInCsumErrors".
func (n *NS) SNMP() (map[string]int64, error) {
	var b []byte
	// /proc/net is /proc/self/net, which follows the thread-group leader's
	// netns; thread-self follows the thread that joined the namespace.
	err := n.Do(func() (err error) { b, err = os.ReadFile("/proc/thread-self/net/snmp"); return err })
	if err != nil {
		return nil, fmt.Errorf("read snmp in %s: %w", n.full, err)
	}
	m, err := parseSNMP(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse snmp in %s: %w", n.full, err)
	}
	return m, nil
}

// ChecksumErrors are the InCsumErrors counters of one namespace.
type ChecksumErrors struct {
	TCP, UDP, ICMP int64
}

// IsZero reports whether no checksum error was counted.
func (c ChecksumErrors) IsZero() bool { return c == ChecksumErrors{} }

// ChecksumErrors returns TcpInCsumErrors, UdpInCsumErrors and
// IcmpInCsumErrors inside the namespace (what `nstat -az TcpInCsumErrors
// UdpInCsumErrors` shows there).
func (n *NS) ChecksumErrors() (ChecksumErrors, error) {
	m, err := n.SNMP()
	if err != nil {
		return ChecksumErrors{}, err
	}
	return ChecksumErrors{TCP: m["TcpInCsumErrors"], UDP: m["UdpInCsumErrors"], ICMP: m["IcmpInCsumErrors"]}, nil
}

// parseSNMP parses /proc/net/snmp: pairs of "Proto: names" / "Proto: values"
// lines.
func parseSNMP(r io.Reader) (map[string]int64, error) {
	m := make(map[string]int64)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		names := strings.Fields(sc.Text())
		if !sc.Scan() {
			return nil, fmt.Errorf("header %q without values", names)
		}
		vals := strings.Fields(sc.Text())
		if len(names) == 0 || len(names) != len(vals) || names[0] != vals[0] {
			return nil, fmt.Errorf("mismatched lines %q and %q", names, vals)
		}
		proto := strings.TrimSuffix(names[0], ":")
		for i := 1; i < len(names); i++ {
			v, err := strconv.ParseInt(vals[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s%s: %w", proto, names[i], err)
			}
			m[proto+names[i]] = v
		}
	}
	return m, sc.Err()
}

// destroy deletes every link in the namespace (lo excepted), closes the
// handles and removes the bind mount.
func (n *NS) destroy() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dead = true
	var errs []error
	if n.nl != nil {
		links, err := n.nl.LinkList()
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			errs = append(errs, fmt.Errorf("list links in %s: %w", n.full, err))
		}
		for _, lk := range links {
			if lk.Attrs().Name == "lo" {
				continue
			}
			// Deleting a veth also deletes its peer, possibly listed here.
			if err := n.nl.LinkDel(lk); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("delete link %s in %s: %w", lk.Attrs().Name, n.full, err))
			}
		}
		n.nl.Close()
	}
	if err := n.handle.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close netns %s: %w", n.full, err))
	}
	if err := unix.Unmount(n.Path(), unix.MNT_DETACH); err != nil {
		errs = append(errs, fmt.Errorf("unmount netns %s: %w", n.full, err))
	}
	if err := os.Remove(n.Path()); err != nil {
		errs = append(errs, fmt.Errorf("remove netns %s: %w", n.full, err))
	}
	return errors.Join(errs...)
}
