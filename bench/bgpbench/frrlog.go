package bgpbench

import (
	"bufio"
	"io"
	"net/netip"
	"regexp"
	"time"
)

// bgpd logs, with `debug bgp zebra`, every route it hands to zebra once its
// best-path run has changed the route in the BGP table:
//
//	2026/11/27 14:01:34.123456 BGP: [XXXXX-XXXXX] Tx route add VRF 0 198.18.0.1/32 metric 0 tag 0 count 1 nhg 0
//	2026/11/27 14:01:34.123456 BGP: [XXXXX-XXXXX] Tx route delete VRF 0 198.18.0.1/32
//
// ("log timestamp precision 6" gives the microseconds). That moment is the
// benchmark's "route in FRR's BGP table" point.
var txRouteRE = regexp.MustCompile(`^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) BGP: (?:\[[0-9A-Z]{5}-[0-9A-Z]{5}\] )?Tx route (add|delete) VRF \d+ ([0-9.]+/\d+)`)

// frrTimeLayout is FRR's log timestamp (local time); Go's parser accepts any
// number of fractional digits after the seconds.
const frrTimeLayout = "2006/01/02 15:04:05"

// parseTxRoutes records in tl each "Tx route" line of a bgpd log, with
// timestamps read in loc (FRR logs local time). It returns the lines
// recorded.
func parseTxRoutes(r io.Reader, loc *time.Location, tl *timeline) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		m := txRouteRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		at, err := time.ParseInLocation(frrTimeLayout, m[1], loc)
		if err != nil {
			continue
		}
		p, err := netip.ParsePrefix(m[3])
		if err != nil {
			continue
		}
		tl.record(p, m[2] == "add", at)
		n++
	}
	return n, sc.Err()
}
