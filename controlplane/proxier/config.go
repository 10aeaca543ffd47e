package proxier

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/straitlb/strait/controlplane/translate"
)

// Defaults, as kube-proxy's where it has one.
const (
	DefaultSyncPeriod          = 30 * time.Second
	DefaultFullSyncPeriod      = time.Hour
	DefaultRetryInitial        = time.Second
	DefaultEventRepeatInterval = 30 * time.Minute
)

// Config configures a Proxier. Zero fields take defaults.
type Config struct {
	// NodeName is the agent's Node (required): endpoints on it are local.
	NodeName string
	// NodeIP overrides the primary node IP (otherwise the Node's first
	// InternalIP, else its first ExternalIP, else the first of NodeIPs).
	NodeIP netip.Addr
	// NodeIPs are node addresses added to those of the Node object, for
	// standalone mode without a Node manifest.
	NodeIPs []netip.Addr
	// NodePortAddresses selects the node addresses NodePorts answer on, as
	// kube-proxy's --nodeport-addresses: CIDRs, "primary", "localhost" (no
	// effect: NodePorts never answer on loopback) or "all". Empty means
	// every IPv4 node address. An invalid entry fails New.
	NodePortAddresses []string
	// ProxyName is the service.kubernetes.io/service-proxy-name value this
	// proxy answers to (see translate.Config.ProxyName).
	ProxyName string

	// MinSyncPeriod is the least time between two runs (kube-proxy's
	// minSyncPeriod; 0 lets a change run as soon as the previous run ends,
	// bursts still collapse).
	MinSyncPeriod time.Duration
	// SyncPeriod is the most time between two runs: the periodic full
	// resync (DefaultSyncPeriod).
	SyncPeriod time.Duration
	// FullSyncPeriod is how often a run translates and compares every
	// object instead of only what changed (DefaultFullSyncPeriod, as
	// kube-proxy's nftables full syncs). Runs after a Node change or a
	// failure are full too.
	FullSyncPeriod time.Duration
	// RetryInitial is the delay before retrying a failed run
	// (DefaultRetryInitial); it doubles with each consecutive failure up to
	// RetryMax (default and upper bound SyncPeriod).
	RetryInitial, RetryMax time.Duration
	// EventRepeatInterval is how often a persisting problem is logged and
	// recorded again (DefaultEventRepeatInterval).
	EventRepeatInterval time.Duration
}

func (c *Config) setDefaults() error {
	if c.NodeName == "" {
		return errors.New("nodeName is empty")
	}
	if _, err := translate.NodePortAddresses(c.NodePortAddresses, nil); err != nil {
		return err
	}
	if c.MinSyncPeriod < 0 || c.SyncPeriod < 0 || c.RetryInitial < 0 || c.RetryMax < 0 || c.EventRepeatInterval < 0 {
		return errors.New("periods must not be negative")
	}
	if c.SyncPeriod == 0 {
		c.SyncPeriod = DefaultSyncPeriod
	}
	if c.SyncPeriod < c.MinSyncPeriod {
		return fmt.Errorf("syncPeriod %s is shorter than minSyncPeriod %s", c.SyncPeriod, c.MinSyncPeriod)
	}
	if c.FullSyncPeriod <= 0 {
		c.FullSyncPeriod = DefaultFullSyncPeriod
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = DefaultRetryInitial
	}
	if c.EventRepeatInterval == 0 {
		c.EventRepeatInterval = DefaultEventRepeatInterval
	}
	return nil
}
