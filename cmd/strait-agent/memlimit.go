package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// memoryLimitShare is the part of the container's memory limit given to
// the Go heap as a soft limit: the rest is for the runtime, stacks and
// mapped BPF pages.
const memoryLimitShare = 0.9

// setMemoryLimit gives the Go runtime a soft memory limit of 90% of the
// cgroup's memory.max when GOMEMLIMIT is not set, so the garbage collector
// works harder as the agent nears its container limit instead of being
// OOM-killed at a cold start (when the informers' lists and the first
// sync make the most garbage).
func setMemoryLimit(log *zap.Logger, cgroupRoot string) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit, err := cgroupMemoryMax(cgroupRoot)
	if err != nil || limit == 0 {
		if err != nil {
			log.Debug("no cgroup memory limit found; Go's default applies", zap.Error(err))
		}
		return
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	log.Info("Go memory limit set from the cgroup", zap.Int64("cgroupLimitBytes", limit), zap.Int64("goMemLimitBytes", soft))
}

// cgroupMemoryMax reads this process's cgroup v2 memory.max: 0 when
// unlimited.
func cgroupMemoryMax(root string) (int64, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	var rel string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			rel = p
		}
	}
	if rel == "" {
		return 0, errors.New("not in a cgroup v2 hierarchy")
	}
	return parseMemoryMax(filepath.Join(root, rel, "memory.max"))
}

func parseMemoryMax(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read memory.max: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse memory.max %q: %w", s, err)
	}
	return v, nil
}
