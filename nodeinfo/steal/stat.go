package steal

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/straitlb/strait/nodeinfo/hostfs"
)

// CPUTimes is one cpu line of /proc/stat, in USER_HZ ticks.
type CPUTimes struct {
	Name                                                  string // "cpu" for the sum, "cpu0", ...
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

// Total is the sum of the first eight fields. Guest time is already counted
// in user and nice, so it is not added again.
func (c CPUTimes) Total() uint64 {
	return c.User + c.Nice + c.System + c.Idle + c.IOWait + c.IRQ + c.SoftIRQ + c.Steal
}

// ParseStat parses the cpu lines of /proc/stat. The first entry is the
// aggregate "cpu" line when present.
func ParseStat(r io.Reader) ([]CPUTimes, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var out []CPUTimes
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		c := CPUTimes{Name: f[0]}
		fields := []*uint64{&c.User, &c.Nice, &c.System, &c.Idle, &c.IOWait, &c.IRQ, &c.SoftIRQ, &c.Steal}
		// Kernels before 2.6.11 had no steal column: it stays 0.
		for i, p := range fields {
			if i+1 >= len(f) {
				break
			}
			v, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/stat %s field %d: %w", f[0], i+1, err)
			}
			*p = v
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no cpu lines in /proc/stat")
	}
	return out, nil
}

// ReadStat reads <proc>/stat.
func ReadStat(fs hostfs.FS) ([]CPUTimes, error) {
	f, err := os.Open(fs.ProcPath("stat"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseStat(f)
}

// Fraction returns the share of time stolen between two samples of the
// same CPU line, in [0, 1]. It is 0 when no time passed or the counters
// went backwards (CPU hot-unplug, reset).
func Fraction(prev, cur CPUTimes) float64 {
	if cur.Total() <= prev.Total() || cur.Steal < prev.Steal {
		return 0
	}
	f := float64(cur.Steal-prev.Steal) / float64(cur.Total()-prev.Total())
	return min(max(f, 0), 1)
}

// Fractions pairs the lines of two samples by name.
func Fractions(prev, cur []CPUTimes) map[string]float64 {
	p := make(map[string]CPUTimes, len(prev))
	for _, c := range prev {
		p[c.Name] = c
	}
	out := make(map[string]float64, len(cur))
	for _, c := range cur {
		if pc, ok := p[c.Name]; ok {
			out[c.Name] = Fraction(pc, c)
		}
	}
	return out
}
