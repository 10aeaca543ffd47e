package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
)

// DefaultPollInterval is how often the file source checks its directory.
const DefaultPollInterval = time.Second

// FileConfig configures the file source.
type FileConfig struct {
	// Dir holds the manifests: files ending in .yaml, .yml or .json (not
	// hidden, not in subdirectories), each with one or more documents
	// separated by "---". Services (v1), EndpointSlices
	// (discovery.k8s.io/v1), Nodes (v1) and v1 Lists of them are read;
	// other kinds are ignored with a log line. A Service or EndpointSlice
	// without a namespace is in "default".
	Dir string
	// PollInterval is how often file sizes and modification times are
	// compared with the last read (DefaultPollInterval when 0).
	PollInterval time.Duration
}

// File is a Source that reads a directory of Kubernetes manifests
// (standalone mode). A directory that fails to parse leaves the previous
// objects in effect; the source is not synced until one read succeeds, so
// a bad directory at start never programs an empty state.
type File struct {
	cfg   FileConfig
	clock clock.WithTicker
	log   *zap.Logger
	dec   *decoder
	mem   *Memory

	mu      sync.Mutex // guards the fields below and serializes reloads
	lastFP  string     // fingerprint of the files last read (good or bad)
	lastErr error
	started bool
}

var _ Source = (*File)(nil)

// NewFile returns a file source for cfg.Dir. Nothing is read before Run
// (or Reload).
func NewFile(cfg FileConfig, clk clock.WithTicker, log *zap.Logger) (*File, error) {
	if cfg.Dir == "" {
		return nil, errors.New("create file source: dir is empty")
	}
	if cfg.PollInterval < 0 {
		return nil, fmt.Errorf("create file source: poll interval %s is negative", cfg.PollInterval)
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("source", "file"), zap.String("dir", cfg.Dir))
	dec, err := newDecoder(log)
	if err != nil {
		return nil, fmt.Errorf("create file source: %w", err)
	}
	return &File{cfg: cfg, clock: clk, log: log, dec: dec, mem: NewMemory(log)}, nil
}

// Run reads the directory, then polls it every PollInterval and re-reads
// it when a file was added, removed or modified, delivering changes to h
// until ctx is done. Run may be called once.
func (f *File) Run(ctx context.Context, h Handler) error {
	f.mu.Lock()
	if f.started {
		f.mu.Unlock()
		return errors.New("run file source: already running")
	}
	f.started = true
	f.mu.Unlock()

	f.mem.setHandler(h)
	f.poll(true)
	ticker := f.clock.NewTicker(f.cfg.PollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
			f.poll(false)
		}
	}
}

// Reload reads the directory now, whether or not it changed, and returns
// the error that kept it from taking effect, if any.
func (f *File) Reload() error {
	f.poll(true)
	return f.LastError()
}

// LastError returns the error of the last read, or nil if it succeeded.
// While it is not nil, the objects of the last good read stay in effect.
func (f *File) LastError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

// HasSynced reports whether one read of the directory has succeeded.
func (f *File) HasSynced() bool { return f.mem.HasSynced() }

// Listers returns listers over the objects of the last good read.
func (f *File) Listers() Listers { return f.mem.Listers() }

func (f *File) poll(force bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	names, fp, err := f.scan()
	if err != nil {
		// A fingerprint no directory listing has, so that any
		// listing after the error is read.
		f.fail("\x00"+err.Error(), err)
		return
	}
	if fp == f.lastFP && !force {
		return
	}
	objs, err := f.load(names)
	if err == nil {
		err = f.mem.Set(objs)
	}
	if err != nil {
		f.fail(fp, err)
		return
	}
	f.lastFP, f.lastErr = fp, nil
	f.log.Info("loaded manifests", zap.Int("files", len(names)), zap.Int("objects", len(objs)))
}

// fail records a failed read. It is logged once per distinct change of the
// directory, not on every poll.
func (f *File) fail(fp string, err error) {
	if fp == f.lastFP && f.lastErr != nil && f.lastErr.Error() == err.Error() {
		return
	}
	f.lastFP, f.lastErr = fp, err
	if f.mem.HasSynced() {
		f.log.Error("manifests not loaded; the last good objects stay in effect", zap.Error(err))
	} else {
		f.log.Error("manifests not loaded; nothing is programmed until they are", zap.Error(err))
	}
}

// scan lists the manifest files and fingerprints their names, sizes and
// modification times.
func (f *File) scan() ([]string, string, error) {
	entries, err := os.ReadDir(f.cfg.Dir)
	if err != nil {
		return nil, "", fmt.Errorf("read directory %s: %w", f.cfg.Dir, err)
	}
	var (
		names []string
		fp    strings.Builder
	)
	for _, e := range entries {
		if !isManifest(e.Name()) {
			continue
		}
		path := filepath.Join(f.cfg.Dir, e.Name())
		st, err := os.Stat(path) // follows symlinks (ConfigMap volumes)
		if err != nil {
			return nil, "", fmt.Errorf("stat %s: %w", path, err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		names = append(names, path)
		fmt.Fprintf(&fp, "%s\x00%d\x00%d\n", e.Name(), st.Size(), st.ModTime().UnixNano())
	}
	slices.Sort(names)
	return names, fp.String(), nil
}

// load decodes every file and checks that no object is defined twice.
func (f *File) load(paths []string) ([]runtime.Object, error) {
	var (
		objs []runtime.Object
		errs []error
		seen = make(map[objectKey]string)
	)
	for _, path := range paths {
		got, err := f.dec.decodeFile(path)
		if err != nil {
			errs = append(errs, err)
		}
		for _, obj := range got {
			key := keyOf(obj)
			if prev, dup := seen[key]; dup {
				errs = append(errs, fmt.Errorf("%s: %s is also defined in %s", path, key, prev))
				continue
			}
			seen[key] = path
			objs = append(objs, obj)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("load manifests: %w", err)
	}
	return objs, nil
}

func keyOf(obj runtime.Object) objectKey {
	switch o := obj.(type) {
	case *discoveryv1.EndpointSlice:
		return objectKey{KindEndpointSlice, o.Namespace, o.Name}
	case *v1.Node:
		return objectKey{KindNode, "", o.Name}
	case *v1.Service:
		return objectKey{KindService, o.Namespace, o.Name}
	}
	return objectKey{Kind(fmt.Sprintf("%T", obj)), "", ""}
}
