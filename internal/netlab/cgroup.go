package netlab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Cgroup is a cgroup v2 directory created by a lab. Processes started with
// [NS.StartClient] (or any command given [Cgroup.Attach]) run in it, so
// cgroup BPF programs attached to it or an ancestor see their sockets.
type Cgroup struct {
	Path string
}

// CgroupRoot returns the root of the cgroup v2 hierarchy as mounted in this
// mount namespace (the first cgroup2 entry of /proc/self/mountinfo).
func CgroupRoot() (string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		l, r, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(l), strings.Fields(r)
		if len(lf) >= 5 && len(rf) >= 1 && rf[0] == "cgroup2" && lf[3] == "/" {
			return lf[4], nil
		}
	}
	return "", errors.New("no cgroup2 mount found")
}

// AddCgroup creates the cgroup parent/<prefix>-<name> (parent: a cgroup v2
// directory, such as CgroupRoot() or another lab cgroup's Path). The lab
// removes it on Shutdown, after its processes are stopped.
func (l *Lab) AddCgroup(parent, name string) (*Cgroup, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(parent, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("add cgroup: %s is not a cgroup v2 directory (%v)", parent, err)
	}
	dir := filepath.Join(parent, l.Name(name))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("add cgroup: %w", err)
	}
	l.cgroups = append(l.cgroups, dir)
	return &Cgroup{Path: dir}, nil
}

// Sub creates a child cgroup (removed with the lab).
func (c *Cgroup) Sub(l *Lab, name string) (*Cgroup, error) { return l.AddCgroup(c.Path, name) }

// Open returns a directory fd for SysProcAttr.CgroupFD; the caller closes it.
func (c *Cgroup) Open() (int, error) {
	fd, err := unix.Open(c.Path, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open cgroup %s: %w", c.Path, err)
	}
	return fd, nil
}

// removeCgroup removes a cgroup once its processes have left (killed
// processes leave it asynchronously).
func removeCgroup(dir string) error {
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
