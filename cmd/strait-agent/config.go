package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Config is the agent's configuration file (YAML). Flags override it.
type Config struct {
	// NodeName is this node's name (default: the NODE_NAME environment
	// variable, then the hostname).
	NodeName string `json:"nodeName,omitempty"`
	// Kubeconfig is a kubeconfig file; empty means in-cluster config.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Standalone, when set, reads Services, EndpointSlices and Nodes as
	// Kubernetes YAML from this directory instead of a cluster.
	Standalone string `json:"standalone,omitempty"`
	// Devices are the uplinks to attach to (names). Empty: the devices
	// that carry the node's addresses and default routes, found by
	// discovery and followed as they change.
	Devices []string `json:"devices,omitempty"`
	// NativeXDPOnly fails instead of falling back to generic XDP.
	NativeXDPOnly bool `json:"nativeXDPOnly,omitempty"`
	// SocketLB turns on socket-level balancing (cgroup hooks) for
	// in-cluster clients; the per-packet path covers the rest.
	SocketLB bool `json:"socketLB,omitempty"`
	// CgroupPath is the cgroup v2 directory the socket hooks attach to
	// (default: the cgroup2 mount's root).
	CgroupPath string `json:"cgroupPath,omitempty"`
	// PodDevices are the pods' host-side devices (names or glob patterns
	// such as "veth*", "cali*", "lxc*") for the per-packet east-west path.
	PodDevices []string `json:"podDevices,omitempty"`
	// PinNUMANode, when set, pins the agent's threads to CPUs of this NUMA
	// node that serve no NIC queue (default: no pinning).
	PinNUMANode *int `json:"pinNUMANode,omitempty"`
	// StealThreshold is the CPU steal fraction that, sustained, is logged
	// as a warning (default 0.1).
	StealThreshold float64 `json:"stealThreshold,omitempty"`
	// LBIPAM runs the LoadBalancer IP allocator (leader-elected among the
	// agents; deploy/crds and deploy/rbac-lbipam.yaml must be applied).
	// Cluster mode only.
	LBIPAM bool `json:"lbIPAM,omitempty"`
	// BGPDrainTime is how long a node announces GRACEFUL_SHUTDOWN before it
	// withdraws its prefixes on shutdown or cordon (default 10s).
	BGPDrainTime Duration `json:"bgpDrainTime,omitempty"`
	// NodeIPs are extra node addresses for standalone mode without a Node
	// manifest.
	NodeIPs []string `json:"nodeIPs,omitempty"`
	// PinDir is where eBPF objects are pinned (on a bpffs).
	PinDir string `json:"pinDir,omitempty"`
	// NodePortAddresses as kube-proxy's --nodeport-addresses: CIDRs or
	// "primary". Empty: every address of the node.
	NodePortAddresses []string `json:"nodePortAddresses,omitempty"`
	// ProxyName is the service.kubernetes.io/service-proxy-name value
	// Strait answers to; objects labelled for another proxy are ignored.
	ProxyName string `json:"proxyName,omitempty"`
	// MetricsBindAddress serves Prometheus metrics (default 127.0.0.1:10249).
	MetricsBindAddress string `json:"metricsBindAddress,omitempty"`
	// HealthzBindAddress serves /healthz and /livez (default 127.0.0.1:10256).
	HealthzBindAddress string `json:"healthzBindAddress,omitempty"`
	// SyncPeriod is the longest time between syncs (default 30s); a sync
	// with nothing changed only retries what failed.
	SyncPeriod Duration `json:"syncPeriod,omitempty"`
	// FullSyncPeriod is how often a sync translates and compares every
	// object instead of only what changed (default 1h).
	FullSyncPeriod Duration `json:"fullSyncPeriod,omitempty"`
	// MinSyncPeriod is the shortest time between syncs (default 0: sync as
	// soon as the previous one ends; bursts still collapse).
	MinSyncPeriod Duration `json:"minSyncPeriod,omitempty"`
	// SNATPortRange is the source port range, "min-max", of flows the
	// datapath SNATs to remote backends (default "61000-65535"): each
	// such flow holds one port per backend address and port while its
	// conntrack entry lives, so new-flow floods to few backends can
	// exhaust it (counter snat_exhausted). Both ends in 1024..65535,
	// min < max. It must not overlap net.ipv4.ip_local_port_range (Linux
	// default 32768-60999): a local connection and an SNATed flow to the
	// same backend could then share a 5-tuple. The agent warns when they
	// overlap.
	SNATPortRange string `json:"snatPortRange,omitempty"`
	// LogLevel is debug, info, warn or error (default info).
	LogLevel string `json:"logLevel,omitempty"`
	// LogFormat is json (default) or console.
	LogFormat string `json:"logFormat,omitempty"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration struct{ time.Duration }

// UnmarshalJSON parses "30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("parse duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes "30s".
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// LoadConfig reads a config file strictly: unknown fields are errors.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read config %s: %w", path, err)
	}
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return c, fmt.Errorf("parse config %s: %w", path, err)
	}
	return c, nil
}

func (c *Config) setDefaults() {
	if c.NodeName == "" {
		c.NodeName = os.Getenv("NODE_NAME")
	}
	if c.NodeName == "" {
		c.NodeName, _ = os.Hostname()
	}
	if c.PinDir == "" {
		c.PinDir = "/sys/fs/bpf/strait"
	}
	if c.MetricsBindAddress == "" {
		c.MetricsBindAddress = "127.0.0.1:10249"
	}
	if c.HealthzBindAddress == "" {
		c.HealthzBindAddress = "127.0.0.1:10256"
	}
	if c.SyncPeriod.Duration == 0 {
		c.SyncPeriod.Duration = 30 * time.Second
	}
	if c.BGPDrainTime.Duration == 0 {
		c.BGPDrainTime.Duration = 10 * time.Second
	}
	if c.SNATPortRange == "" {
		c.SNATPortRange = DefaultSNATPortRange
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("nodeName: required (or NODE_NAME)"))
	}
	for name, a := range map[string]string{"metricsBindAddress": c.MetricsBindAddress, "healthzBindAddress": c.HealthzBindAddress} {
		if a == "" || a == "off" {
			continue
		}
		if _, err := netip.ParseAddrPort(a); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not address:port: %w", name, a, err))
		}
	}
	if c.FullSyncPeriod.Duration < 0 {
		errs = append(errs, fmt.Errorf("fullSyncPeriod %s must not be negative", c.FullSyncPeriod))
	}
	if c.MinSyncPeriod.Duration < 0 || c.SyncPeriod.Duration < c.MinSyncPeriod.Duration {
		errs = append(errs, fmt.Errorf("syncPeriod %s must be >= minSyncPeriod %s >= 0", c.SyncPeriod, c.MinSyncPeriod))
	}
	if _, _, err := ParsePortRange(c.SNATPortRange); err != nil {
		errs = append(errs, fmt.Errorf("snatPortRange: %w", err))
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("logFormat: %q is neither json nor console", c.LogFormat))
	}
	return errors.Join(errs...)
}

// DefaultSNATPortRange is Config.SNATPortRange's default: above Linux's
// default ip_local_port_range (32768-60999).
const DefaultSNATPortRange = "61000-65535"

// ParsePortRange parses "min-max" (as net.ipv4.ip_local_port_range, a
// space or a tab also separates them): 1024 <= min < max <= 65535.
func ParsePortRange(s string) (lo, hi uint16, err error) {
	f := strings.Fields(strings.Replace(s, "-", " ", 1))
	if len(f) != 2 || strings.Contains(f[1], "-") {
		return 0, 0, fmt.Errorf("%q is not \"min-max\"", s)
	}
	var v [2]uint64
	for i, x := range f {
		n, err := strconv.ParseUint(x, 10, 16)
		if err != nil || n < 1024 {
			return 0, 0, fmt.Errorf("%q: port %q is not in 1024..65535", s, x)
		}
		v[i] = n
	}
	if v[0] >= v[1] {
		return 0, 0, fmt.Errorf("%q: min %d is not below max %d", s, v[0], v[1])
	}
	return uint16(v[0]), uint16(v[1]), nil
}

// LocalPortRange reads this network namespace's net.ipv4.ip_local_port_range.
func LocalPortRange() (lo, hi uint16, err error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("ip_local_port_range: %q", b)
	}
	l, err1 := strconv.ParseUint(f[0], 10, 16)
	h, err2 := strconv.ParseUint(f[1], 10, 16)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("ip_local_port_range: %w", err)
	}
	return uint16(l), uint16(h), nil
}

// PortRangesOverlap reports whether [alo, ahi] and [blo, bhi] share a port.
func PortRangesOverlap(alo, ahi, blo, bhi uint16) bool { return alo <= bhi && blo <= ahi }
