package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// KubernetesVersion is the Kubernetes release built by hack/k8s-binaries.sh
// (the k8s.io/kubernetes version pinned in tools/k8s/go.mod).
const KubernetesVersion = "v1.37.2"

// Binary names inside a binary directory.
const (
	APIServerBinary = "kube-apiserver"
	KubeProxyBinary = "kube-proxy"
	EtcdBinary      = "etcd"
)

const modulePath = "github.com/straitlb/strait"

// ErrNoBinaries is wrapped by the errors of FindBinaries and StartCluster
// when the control-plane binaries are missing and could not be built.
var ErrNoBinaries = errors.New("kubetest: control-plane binaries unavailable")

// DefaultBinDir is the directory hack/k8s-binaries.sh builds into by default:
// $STRAIT_K8S_BIN if set, else ${STRAIT_CACHE:-/var/cache/strait}/k8s-<version>.
func DefaultBinDir() string {
	if d := os.Getenv("STRAIT_K8S_BIN"); d != "" {
		return d
	}
	root := os.Getenv("STRAIT_CACHE")
	if root == "" {
		root = "/var/cache/strait"
	}
	return filepath.Join(root, "k8s-"+KubernetesVersion)
}

// hasBinaries reports whether dir holds the three binaries and, if
// needStamp, the stamp hack/k8s-binaries.sh writes after a successful build
// (so a half-finished build is never used).
func hasBinaries(dir string, needStamp bool) bool {
	if _, err := os.Stat(filepath.Join(dir, ".stamp")); needStamp && err != nil {
		return false
	}
	for _, b := range []string{APIServerBinary, KubeProxyBinary, EtcdBinary} {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// FindBinaries returns the directory holding kube-apiserver, kube-proxy and
// etcd. It uses $STRAIT_K8S_BIN if that holds the binaries (a stamp is not
// required there), or the default cache directory if it holds a completed
// build (binaries and stamp); otherwise it
// runs hack/k8s-binaries.sh from the repository (found by walking up from
// the working directory to the go.mod of github.com/straitlb/strait), which
// can take minutes on a cold cache. logf, if not nil, receives the script's
// progress. Errors wrap ErrNoBinaries.
func FindBinaries(ctx context.Context, logf func(format string, args ...any)) (string, error) {
	dir := DefaultBinDir()
	if hasBinaries(dir, os.Getenv("STRAIT_K8S_BIN") == "") {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("%w: %s has no completed build and %v", ErrNoBinaries, dir, err)
	}
	script := filepath.Join(root, "hack", "k8s-binaries.sh")
	if logf != nil {
		logf("kubetest: building control-plane binaries with %s (cold build: ~4-5 min)", script)
	}
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s: %v\n%s", ErrNoBinaries, script, err, tailString(stderr.String(), 4096))
	}
	// The script prints the directory as its last line.
	var out string
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = l
		}
	}
	if out == "" || !hasBinaries(out, true) {
		return "", fmt.Errorf("%w: %s printed %q, which holds no completed build", ErrNoBinaries, script, out)
	}
	return out, nil
}

// RepoRoot returns the root of the strait repository: the nearest directory
// at or above the working directory whose go.mod declares module
// github.com/straitlb/strait.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && goModModule(data) == modulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s at or above %s", modulePath, wd)
		}
		dir = parent
	}
}

// goModModule returns the module path declared by a go.mod file.
func goModModule(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}
