package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/straitlb/strait/nodeinfo"
	"github.com/straitlb/strait/nodeinfo/cpuinfo"
	"github.com/straitlb/strait/nodeinfo/hostfs"
	"github.com/straitlb/strait/nodeinfo/netdev"
	"github.com/straitlb/strait/nodeinfo/steal"
)

func main() {
	devices := flag.String("devices", "", "comma-separated device names or glob patterns (default: automatic)")
	addrs := flag.String("node-address", "", "comma-separated node addresses")
	nativeOnly := flag.Bool("native-only", false, "plan native XDP only")
	pin := flag.Bool("pin", false, "add a CPU pinning plan (not applied)")
	stealFor := flag.Duration("steal", 0, "sample steal time over this interval (0: skip)")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()

	cfg := nodeinfo.Config{NativeOnly: *nativeOnly, PlanPinning: *pin}
	if *devices != "" {
		cfg.Devices = strings.Split(*devices, ",")
	}
	for _, s := range strings.Split(*addrs, ",") {
		if s == "" {
			continue
		}
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			fatal(err)
		}
		cfg.NodeAddresses = append(cfg.NodeAddresses, a)
	}
	eth, err := netdev.NewEthtoolIoctl()
	if err != nil {
		fatal(err)
	}
	defer eth.Close()
	in := &nodeinfo.Inspector{FS: hostfs.Real(), Net: netdev.NetlinkSource{}, Ethtool: eth, Config: cfg}
	if *pin {
		if in.AllowedCPUs, err = cpuinfo.CurrentAffinity(); err != nil {
			fatal(err)
		}
	}
	if *stealFor > 0 {
		m, err := steal.NewMonitor(steal.Config{PerCPU: true})
		if err != nil {
			fatal(err)
		}
		_ = m.Sample()
		time.Sleep(*stealFor)
		if err := m.Sample(); err != nil {
			fatal(err)
		}
		in.Steal = m
	}
	st, err := in.Inspect()
	if err != nil {
		fatal(err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			fatal(err)
		}
		return
	}
	fmt.Print(st.Text())
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "strait-nodeinfo:", err)
	os.Exit(1)
}
