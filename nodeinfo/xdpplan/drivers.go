package xdpplan

// DriverInfo is what Strait knows about a driver's XDP support.
type DriverInfo struct {
	// Native: the driver implements native (driver-mode) XDP.
	Native bool
	// MaxMTU is the largest MTU the driver accepts for a single-buffer
	// native XDP program with 4 KiB pages; 0 means DefaultMaxMTU.
	MaxMTU int
	// Frags: the driver runs multi-buffer ("xdp.frags") programs, to which
	// MaxMTU does not apply.
	Frags bool
	// What names the device kind in messages, e.g. "bridge devices".
	What string
}

// DefaultMaxMTU is the single-buffer native XDP MTU limit assumed for
// drivers not in the table: most drivers fit a frame plus 256 bytes of XDP
// headroom and the skb_shared_info tail into one 4 KiB page, which leaves
// about 3498 bytes.
const DefaultMaxMTU = 3498

// Drivers maps driver names (the device/driver symlink in sysfs, or ethtool's
// driver name for virtual devices) to their XDP support. The MTU limits come
// from the drivers' XDP setup checks for 4 KiB pages and are conservative.
var Drivers = map[string]DriverInfo{
	// Intel.
	"ice":     {Native: true, MaxMTU: 3046, Frags: true},
	"i40e":    {Native: true, MaxMTU: 3046, Frags: true},
	"ixgbe":   {Native: true, MaxMTU: 3050},
	"ixgbevf": {Native: true, MaxMTU: 3050},
	"igb":     {Native: true, MaxMTU: 1500},
	"igc":     {Native: true, MaxMTU: 1500},
	"idpf":    {Native: true, MaxMTU: 3046},
	// NVIDIA/Mellanox.
	"mlx5_core": {Native: true, MaxMTU: 3498, Frags: true},
	"mlx4_en":   {Native: true, MaxMTU: 3498},
	"mlx4_core": {Native: true, MaxMTU: 3498},
	// Broadcom, Marvell/QLogic, Netronome, Solarflare, Amazon, Google, Microsoft.
	"bnxt_en":        {Native: true, MaxMTU: 3502, Frags: true},
	"qede":           {Native: true},
	"nfp":            {Native: true},
	"sfc":            {Native: true},
	"ena":            {Native: true, MaxMTU: 3498},
	"gve":            {Native: true, MaxMTU: 2032},
	"hv_netvsc":      {Native: true, MaxMTU: 3840},
	"mana":           {Native: true, MaxMTU: 3506},
	"thunder-nicvf":  {Native: true, MaxMTU: 1500},
	"mvneta":         {Native: true, Frags: true},
	"mvpp2":          {Native: true},
	"stmmaceth":      {Native: true, MaxMTU: 1500},
	"fsl_enetc":      {Native: true},
	"fec":            {Native: true, MaxMTU: 1500},
	"rvu_nicpf":      {Native: true},
	"rvu_nicvf":      {Native: true},
	"tsnep":          {Native: true},
	"lan966x-switch": {Native: true},
	// Paravirtual and virtual devices with native XDP.
	"virtio_net": {Native: true, MaxMTU: 3506, Frags: true},
	"veth":       {Native: true, MaxMTU: 3506, Frags: true},
	"tun":        {Native: true},
	"netdevsim":  {Native: true},
	"bonding":    {Native: true, What: "bonds"},
	// Virtual devices without native XDP: generic only.
	"bridge":             {What: "bridge devices"},
	"macvlan":            {What: "macvlan devices"},
	"ipvlan":             {What: "ipvlan devices"},
	"vxlan":              {What: "VXLAN devices"},
	"geneve":             {What: "Geneve devices"},
	"dummy":              {What: "dummy devices"},
	"ifb":                {What: "ifb devices"},
	"802.1Q VLAN Driver": {What: "VLAN devices"},
	"team":               {What: "team devices"},
	"wireguard":          {What: "WireGuard devices"},
	"openvswitch":        {What: "Open vSwitch internal ports"},
}

// kindDriver maps netlink link kinds to the driver names above, for devices
// whose driver name is unknown.
var kindDriver = map[string]string{
	"veth": "veth", "bond": "bonding", "bridge": "bridge", "macvlan": "macvlan",
	"macvtap": "macvlan", "ipvlan": "ipvlan", "vxlan": "vxlan", "geneve": "geneve",
	"dummy": "dummy", "ifb": "ifb", "vlan": "802.1Q VLAN Driver", "team": "team",
	"wireguard": "wireguard", "openvswitch": "openvswitch", "tuntap": "tun",
}
