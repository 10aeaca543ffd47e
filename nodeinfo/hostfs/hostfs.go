package hostfs

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// FS holds the roots of sysfs and procfs.
type FS struct {
	Sys  string // e.g. "/sys"
	Proc string // e.g. "/proc"
}

// Real returns the host's roots.
func Real() FS { return FS{Sys: "/sys", Proc: "/proc"} }

// AtRoot returns the roots under a directory that mimics "/": root/sys and
// root/proc.
func AtRoot(root string) FS {
	return FS{Sys: filepath.Join(root, "sys"), Proc: filepath.Join(root, "proc")}
}

// SysPath joins elements under the sysfs root.
func (f FS) SysPath(elem ...string) string {
	return filepath.Join(append([]string{f.Sys}, elem...)...)
}

// ProcPath joins elements under the procfs root.
func (f FS) ProcPath(elem ...string) string {
	return filepath.Join(append([]string{f.Proc}, elem...)...)
}

// ReadString reads a small attribute file and trims surrounding white space.
func ReadString(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// ReadStringOr reads an attribute, returning def when it is missing or
// unreadable (sysfs answers EOPNOTSUPP or EINVAL for attributes a driver
// does not implement, e.g. phys_port_name).
func ReadStringOr(path, def string) string {
	s, err := ReadString(path)
	if err != nil {
		return def
	}
	return s
}

// ReadInt reads an integer attribute.
func ReadInt(path string) (int, error) {
	s, err := ReadString(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(s)
}

// ReadIntOr reads an integer attribute, returning def when it is missing or
// malformed.
func ReadIntOr(path string, def int) int {
	n, err := ReadInt(path)
	if err != nil {
		return def
	}
	return n
}

// LinkBase returns the base name of a symlink's target ("" when path is not
// a symlink).
func LinkBase(path string) string {
	t, err := os.Readlink(path)
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

// Resolve follows symlinks in path. Sysfs links are relative, so this works
// in a test tree as well as on the real /sys.
func Resolve(path string) (string, error) {
	return filepath.EvalSymlinks(path)
}

// Exists reports whether path exists (following symlinks).
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// List returns the sorted entry names of a directory; a missing directory
// gives an empty list.
func List(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	names := make([]string, 0, len(es))
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// ListPrefix returns the sorted entry names of dir that start with prefix.
func ListPrefix(dir, prefix string) []string {
	names, _ := List(dir)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}
