package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/dataplane/kern"
	"github.com/straitlb/strait/dataplane/lbmap"
)

// DefaultPinDir is where the agent pins its maps and links.
const DefaultPinDir = "/sys/fs/bpf/strait"

// Options configure Load.
type Options struct {
	// PinDir is a directory on a bpffs; its parent is mounted as bpffs
	// when it is not one already.
	PinDir     string
	Capacities lbmap.Capacities
}

// Datapath is the loaded programs and maps.
type Datapath struct {
	log    *zap.Logger
	objs   kern.StraitObjects
	pinDir string
	// Maps is the programmer's view of the maps.
	Maps lbmap.Maps
}

// Load loads the programs and creates or reopens the pinned maps.
func Load(log *zap.Logger, opts Options) (*Datapath, error) {
	if opts.PinDir == "" {
		opts.PinDir = DefaultPinDir
	}
	if opts.Capacities == (lbmap.Capacities{}) {
		opts.Capacities = lbmap.DefaultCapacities
	}
	if err := EnsureBPFFS(filepath.Dir(opts.PinDir)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(opts.PinDir, "links"), 0o700); err != nil {
		return nil, fmt.Errorf("create pin directory %s: %w", opts.PinDir, err)
	}
	if err := os.Chmod(opts.PinDir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict pin directory %s: %w", opts.PinDir, err)
	}
	spec, err := kern.LoadStrait()
	if err != nil {
		return nil, fmt.Errorf("load object spec: %w", err)
	}
	c := opts.Capacities
	sizes := map[string]uint32{
		kern.StraitMapFrontends:    c.Frontends,
		kern.StraitMapServices:     c.Services,
		kern.StraitMapMaglev:       c.Services,
		kern.StraitMapBackends:     c.Backends,
		kern.StraitMapSvcBackends:  c.Backends,
		kern.StraitMapConntrack:    c.Conntrack,
		kern.StraitMapAffinity:     c.Affinity,
		kern.StraitMapSockAffinity: c.Affinity,
		kern.StraitMapSockRev:      c.Conntrack,
		kern.StraitMapSrcRanges:    c.SrcRanges,
		kern.StraitMapSvcStats:     c.Services * lbmap.StatMax,
	}
	for name, ms := range spec.Maps {
		ms.Pinning = ebpf.PinByName
		if n, ok := sizes[name]; ok && n > 0 {
			ms.MaxEntries = n
		}
	}
	d := &Datapath{log: log, pinDir: opts.PinDir}
	err = spec.LoadAndAssign(&d.objs, &ebpf.CollectionOptions{
		Maps: ebpf.MapOptions{PinPath: opts.PinDir},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load programs: %w", err)
		}
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("reopen pinned maps in %s: %w (the capacities or layout changed; remove the directory to start afresh, which drops established flows)", opts.PinDir, err)
		}
		return nil, fmt.Errorf("load datapath: %w", err)
	}
	d.Maps = lbmap.NewReal(&d.objs.StraitMaps, spec.Maps[kern.StraitMapMaglev].InnerMap)
	return d, nil
}

// PinDir is where the objects are pinned.
func (d *Datapath) PinDir() string { return d.pinDir }

// Objects exposes the loaded programs and maps (tests, benchmarks).
func (d *Datapath) Objects() *kern.StraitObjects { return &d.objs }

// Close releases this process's handles. Pinned maps and links stay, so
// the datapath keeps forwarding.
func (d *Datapath) Close() error { return d.objs.Close() }

// Remove detaches every pinned link and unpins every map: the datapath
// stops. Used only by an explicit cleanup.
func (d *Datapath) Remove() error {
	var errs []error
	links, _ := filepath.Glob(filepath.Join(d.pinDir, "links", "*"))
	for _, l := range links {
		if err := detachPinned(l); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(d.pinDir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", d.pinDir, err))
	}
	return errors.Join(errs...)
}

// EnsureBPFFS mounts a bpffs at dir unless one is there.
func EnsureBPFFS(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create bpffs mount point %s: %w", dir, err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", dir, err)
	}
	return nil
}
