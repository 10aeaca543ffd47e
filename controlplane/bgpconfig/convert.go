package bgpconfig

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/bgp"
)

// ObjectError is what is wrong with one object; the object is left out of
// the Config (or, for an advertisement's unknown pool or peer, just that
// reference is).
type ObjectError struct {
	Kind, Name string
	Err        error
}

func (e *ObjectError) Error() string { return fmt.Sprintf("%s %q: %v", e.Kind, e.Name, e.Err) }
func (e *ObjectError) Unwrap() error { return e.Err }

// Input is what Convert reads.
type Input struct {
	Objects
	// Secrets maps the Secrets that passwordSecretRefs name to their data.
	// A missing Secret or key makes its BGPPeer invalid.
	Secrets map[types.NamespacedName]map[string][]byte
}

// Config is the valid part of the configuration.
type Config struct {
	// Pools, Peers and Advertisements are sorted by name.
	Pools          []Pool
	Peers          []bgp.Peer
	Advertisements []Advertisement
	// Errors holds one *ObjectError per problem, in kind then object
	// order.
	Errors []error
}

// Advertisement is a validated BGPAdvertisement.
type Advertisement struct {
	Name string
	// Pools are the names of the (valid) pools whose addresses are
	// announced this way, sorted.
	Pools  []string
	Config bgp.AdvertisementConfig
}

// Err joins Errors.
func (c Config) Err() error { return errors.Join(c.Errors...) }

// Pool returns the named pool.
func (c Config) Pool(name string) (Pool, bool) {
	i := slices.IndexFunc(c.Pools, func(p Pool) bool { return p.Name == name })
	if i < 0 {
		return Pool{}, false
	}
	return c.Pools[i], true
}

// PoolOf returns the pool that contains a (pools do not overlap).
func (c Config) PoolOf(a netip.Addr) (Pool, bool) {
	i := slices.IndexFunc(c.Pools, func(p Pool) bool { return p.Contains(a) })
	if i < 0 {
		return Pool{}, false
	}
	return c.Pools[i], true
}

// AdvertisementsFor returns the advertisements that cover a's pool (none
// when a is in no pool).
func (c Config) AdvertisementsFor(a netip.Addr) []Advertisement {
	p, ok := c.PoolOf(a)
	if !ok {
		return nil
	}
	var out []Advertisement
	for _, ad := range c.Advertisements {
		if slices.Contains(ad.Pools, p.Name) {
			out = append(out, ad)
		}
	}
	return out
}

// SecretRefs returns the Secrets the peers' passwordSecretRefs name,
// sorted and deduplicated, defaults applied.
func (o Objects) SecretRefs() []types.NamespacedName {
	var out []types.NamespacedName
	for _, p := range o.Peers {
		if r := p.Spec.PasswordSecretRef; r != nil {
			out = append(out, secretName(r))
		}
	}
	slices.SortFunc(out, func(a, b types.NamespacedName) int { return cmp.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

func secretName(r *SecretKeySelector) types.NamespacedName {
	ns := r.Namespace
	if ns == "" {
		ns = DefaultSecretNamespace
	}
	return types.NamespacedName{Namespace: ns, Name: r.Name}
}

// olderFirst orders objects oldest first (creationTimestamp, then name):
// in a conflict, the older object wins.
func olderFirst(a, b *metav1.ObjectMeta) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// Convert validates the objects and converts the valid ones. It is pure.
func Convert(in Input) Config {
	var c Config
	c.convertPools(in.Pools)
	c.convertPeers(in.Peers, in.Secrets)
	c.convertAdvertisements(in.Advertisements)
	return c
}

func (c *Config) fail(kind, name string, err error) {
	c.Errors = append(c.Errors, &ObjectError{Kind: kind, Name: name, Err: err})
}

// selector converts a LabelSelector; nil selects everything (nil result).
func selector(field string, s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return nil, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return nil, fmt.Errorf("field %s: %w", field, err)
	}
	return sel, nil
}

// ConvertPool validates one pool on its own.
func ConvertPool(o LoadBalancerIPPool) (Pool, error) {
	p := Pool{Name: o.Name, Labels: o.Labels, AutoAssign: true, AvoidBuggyIPs: o.Spec.AvoidBuggyIPs}
	if o.Spec.AutoAssign != nil {
		p.AutoAssign = *o.Spec.AutoAssign
	}
	var errs []error
	if o.Name == "" {
		errs = append(errs, errors.New("field metadata.name: empty"))
	}
	for i, s := range o.Spec.CIDRs {
		pfx, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("field spec.cidrs[%d]: invalid CIDR %q", i, s))
		case pfx.Addr().Is4In6() || pfx.Addr().Zone() != "":
			errs = append(errs, fmt.Errorf("field spec.cidrs[%d]: %q is zoned or IPv4-mapped", i, s))
		case pfx != pfx.Masked():
			errs = append(errs, fmt.Errorf("field spec.cidrs[%d]: %q has host bits set (want %s)", i, s, pfx.Masked()))
		default:
			p.Ranges = append(p.Ranges, RangeOfPrefix(pfx))
		}
	}
	for i, s := range o.Spec.Ranges {
		r, err := ParseRange(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("field spec.ranges[%d]: %w", i, err))
			continue
		}
		p.Ranges = append(p.Ranges, r)
	}
	if len(o.Spec.CIDRs)+len(o.Spec.Ranges) == 0 {
		errs = append(errs, errors.New("field spec: at least one of cidrs and ranges is required"))
	}
	slices.SortFunc(p.Ranges, func(a, b Range) int { return a.First.Compare(b.First) })
	for i := 1; i < len(p.Ranges); i++ {
		if p.Ranges[i-1].Overlaps(p.Ranges[i]) {
			errs = append(errs, fmt.Errorf("field spec: %s and %s overlap", p.Ranges[i-1], p.Ranges[i]))
		}
	}
	var err error
	if p.ServiceSelector, err = selector("spec.serviceSelector", o.Spec.ServiceSelector); err != nil {
		errs = append(errs, err)
	}
	if p.NamespaceSelector, err = selector("spec.namespaceSelector", o.Spec.NamespaceSelector); err != nil {
		errs = append(errs, err)
	}
	return p, errors.Join(errs...)
}

func (c *Config) convertPools(objs []LoadBalancerIPPool) {
	objs = slices.Clone(objs)
	slices.SortFunc(objs, func(a, b LoadBalancerIPPool) int { return olderFirst(&a.ObjectMeta, &b.ObjectMeta) })
	names := make(map[string]bool)
next:
	for _, o := range objs {
		p, err := ConvertPool(o)
		if err != nil {
			c.fail(KindLoadBalancerIPPool, o.Name, err)
			continue
		}
		if names[p.Name] {
			c.fail(KindLoadBalancerIPPool, o.Name, errors.New("name used twice"))
			continue
		}
		for _, q := range c.Pools {
			for _, r := range p.Ranges {
				if i := slices.IndexFunc(q.Ranges, r.Overlaps); i >= 0 {
					c.fail(KindLoadBalancerIPPool, o.Name, fmt.Errorf("%s overlaps %s of older pool %q", r, q.Ranges[i], q.Name))
					continue next
				}
			}
		}
		names[p.Name] = true
		c.Pools = append(c.Pools, p)
	}
	slices.SortFunc(c.Pools, func(a, b Pool) int { return cmp.Compare(a.Name, b.Name) })
}

func parseSeconds(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("field %s: %w", field, err)
	}
	return d, nil
}

// ConvertPeer validates one peer on its own; secrets holds the Secrets'
// data.
func ConvertPeer(o BGPPeer, secrets map[types.NamespacedName]map[string][]byte) (bgp.Peer, error) {
	s := o.Spec
	p := bgp.Peer{
		Name: o.Name, PeerASN: s.PeerASN, LocalASN: s.LocalASN, Port: s.Port,
		EBGPMultihopTTL: s.EBGPMultihopTTL, GracefulRestart: s.GracefulRestart,
	}
	var errs []error
	var err error
	if p.Address, err = parseAddr(s.Address); err != nil {
		errs = append(errs, fmt.Errorf("field spec.address: %w", err))
	}
	if s.SourceAddress != "" {
		if p.SourceAddress, err = parseAddr(s.SourceAddress); err != nil {
			errs = append(errs, fmt.Errorf("field spec.sourceAddress: %w", err))
		}
	}
	if p.HoldTime, err = parseSeconds("spec.holdTime", s.HoldTime); err != nil {
		errs = append(errs, err)
	}
	if p.KeepaliveTime, err = parseSeconds("spec.keepaliveTime", s.KeepaliveTime); err != nil {
		errs = append(errs, err)
	}
	if p.NodeSelector, err = selector("spec.nodeSelector", s.NodeSelector); err != nil {
		errs = append(errs, err)
	}
	if r := s.PasswordSecretRef; r != nil {
		key := r.Key
		if key == "" {
			key = DefaultSecretKey
		}
		name := secretName(r)
		data, ok := secrets[name]
		switch {
		case r.Name == "":
			errs = append(errs, errors.New("field spec.passwordSecretRef.name: empty"))
		case !ok:
			errs = append(errs, fmt.Errorf("field spec.passwordSecretRef: Secret %s not found", name))
		case len(data[key]) == 0:
			errs = append(errs, fmt.Errorf("field spec.passwordSecretRef: Secret %s has no key %q", name, key))
		default:
			p.Password = string(data[key])
		}
	}
	if len(errs) == 0 {
		if err := p.Validate(); err != nil {
			// Validate names the peer; ObjectError does too.
			if u := errors.Unwrap(err); u != nil {
				err = u
			}
			errs = append(errs, err)
		}
	}
	return p, errors.Join(errs...)
}

func (c *Config) convertPeers(objs []BGPPeer, secrets map[types.NamespacedName]map[string][]byte) {
	objs = slices.Clone(objs)
	slices.SortFunc(objs, func(a, b BGPPeer) int { return olderFirst(&a.ObjectMeta, &b.ObjectMeta) })
	addrs := make(map[netip.Addr]string)
	names := make(map[string]bool)
	for _, o := range objs {
		p, err := ConvertPeer(o, secrets)
		if err != nil {
			c.fail(KindBGPPeer, o.Name, err)
			continue
		}
		if names[p.Name] {
			c.fail(KindBGPPeer, o.Name, errors.New("name used twice"))
			continue
		}
		if other, ok := addrs[p.Address]; ok {
			c.fail(KindBGPPeer, o.Name, fmt.Errorf("field spec.address: %s is already the address of older peer %q", p.Address, other))
			continue
		}
		addrs[p.Address], names[p.Name] = p.Name, true
		c.Peers = append(c.Peers, p)
	}
	slices.SortFunc(c.Peers, func(a, b bgp.Peer) int { return cmp.Compare(a.Name, b.Name) })
}

// convertAdvertisements needs the valid pools and peers.
func (c *Config) convertAdvertisements(objs []BGPAdvertisement) {
	objs = slices.Clone(objs)
	slices.SortFunc(objs, func(a, b BGPAdvertisement) int { return cmp.Compare(a.Name, b.Name) })
	peers := make(map[string]bool, len(c.Peers))
	for _, p := range c.Peers {
		peers[p.Name] = true
	}
	for _, o := range objs {
		ad, errs := c.convertAdvertisement(o, peers)
		for _, err := range errs {
			c.fail(KindBGPAdvertisement, o.Name, err)
		}
		if ad != nil {
			c.Advertisements = append(c.Advertisements, *ad)
		}
	}
}

// convertAdvertisement returns nil when the advertisement is invalid;
// unknown pools and peers are reported but only drop the reference (an
// advertisement that loses every named peer is dropped: it must not
// become "every peer").
func (c *Config) convertAdvertisement(o BGPAdvertisement, peers map[string]bool) (*Advertisement, []error) {
	s := o.Spec
	ad := &Advertisement{Name: o.Name}
	cfg := bgp.AdvertisementConfig{
		LocalPref: s.LocalPref, AggregationLength: s.AggregationLength, AggregationLengthV6: s.AggregationLengthV6,
	}
	var fatal, warn []error
	var err error
	if cfg.Communities, err = bgp.ParseCommunities(s.Communities); err != nil {
		fatal = append(fatal, fmt.Errorf("field spec.communities: %w", err))
	}
	for i, l := range s.LargeCommunities {
		lc, err := bgp.ParseLargeCommunity(l)
		if err != nil {
			fatal = append(fatal, fmt.Errorf("field spec.largeCommunities[%d]: %w", i, err))
			continue
		}
		cfg.LargeCommunities = append(cfg.LargeCommunities, lc)
	}
	if s.AggregationLength < 0 || s.AggregationLength > 32 {
		fatal = append(fatal, fmt.Errorf("field spec.aggregationLength: %d out of range [1, 32]", s.AggregationLength))
	}
	if s.AggregationLengthV6 < 0 || s.AggregationLengthV6 > 128 {
		fatal = append(fatal, fmt.Errorf("field spec.aggregationLengthV6: %d out of range [1, 128]", s.AggregationLengthV6))
	}
	if cfg.NodeSelector, err = selector("spec.nodeSelector", s.NodeSelector); err != nil {
		fatal = append(fatal, err)
	}
	poolSel, err := selector("spec.poolSelector", s.PoolSelector)
	if err != nil {
		fatal = append(fatal, err)
	}
	for i, name := range s.Peers {
		if !peers[name] {
			warn = append(warn, fmt.Errorf("field spec.peers[%d]: BGPPeer %q does not exist or is invalid", i, name))
			continue
		}
		cfg.Peers = append(cfg.Peers, name)
	}
	if len(s.Peers) > 0 && len(cfg.Peers) == 0 {
		fatal = append(fatal, errors.New("field spec.peers: no valid peer left"))
	}
	// Pools: the named ones and the selected ones; neither means all.
	all := len(s.IPPools) == 0 && s.PoolSelector == nil
	for i, name := range s.IPPools {
		if _, ok := c.Pool(name); !ok {
			warn = append(warn, fmt.Errorf("field spec.ipPools[%d]: LoadBalancerIPPool %q does not exist or is invalid", i, name))
		}
	}
	for _, p := range c.Pools {
		if all || slices.Contains(s.IPPools, p.Name) || (poolSel != nil && poolSel.Matches(labels.Set(p.Labels))) {
			ad.Pools = append(ad.Pools, p.Name)
		}
	}
	errs := append(fatal, warn...)
	if len(fatal) > 0 {
		return nil, errs
	}
	ad.Config = cfg
	return ad, errs
}
