package report

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Machine describes where the results were taken.
type Machine struct {
	CPUModel string `json:"cpu_model"`
	CPUs     int    `json:"cpus"`
	Kernel   string `json:"kernel"`
	Clang    string `json:"clang"`
	Go       string `json:"go"`
}

// CollectMachine reads /proc/cpuinfo, uname and `clang --version`.
func CollectMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if out, err := exec.Command("clang", "--version").Output(); err == nil {
		m.Clang, _, _ = strings.Cut(string(out), "\n")
	}
	return m
}

// Ratio is a/b, 0 when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Table is a Markdown table.
type Table struct {
	Header []string
	Rows   [][]string
}

// Markdown renders the table; cells' pipes are escaped.
func (t Table) Markdown() string {
	var b strings.Builder
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	row := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + esc(c) + " |")
		}
		b.WriteString("\n")
	}
	row(t.Header)
	sep := make([]string, len(t.Header))
	for i := range sep {
		sep[i] = "---"
	}
	row(sep)
	for _, r := range t.Rows {
		row(r)
	}
	return b.String()
}

// XY is a chart point.
type XY struct{ X, Y float64 }

// Series is one line.
type Series struct {
	Name   string
	Points []XY
	// Color overrides the palette (CSS colour, e.g. "#1f77b4"); Dashed
	// draws a dashed line.
	Color  string
	Dashed bool
}

// Color is the palette's i-th colour (cycling).
func Color(i int) string { return palette[i%len(palette)] }

// LineChart is a line chart with a linear Y axis from 0 and a linear or
// logarithmic X axis.
type LineChart struct {
	Title, XLabel, YLabel string
	LogX                  bool
	Series                []Series
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

// SVG renders the chart as a standalone SVG document.
func (c LineChart) SVG() string {
	const h, left, top, bottom, pw = 400.0, 80.0, 40.0, 50.0, 390.0
	// The legend sits right of the plot: wide enough for the longest name
	// (about 7 px per character at 12 px).
	right := 170.0
	for _, s := range c.Series {
		right = math.Max(right, 46+7*float64(len([]rune(s.Name))))
	}
	w, ph := left+pw+right, h-top-bottom
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	fx := func(x float64) float64 {
		if c.LogX {
			return math.Log10(math.Max(x, 1e-12))
		}
		return x
	}
	for _, s := range c.Series {
		for _, p := range s.Points {
			xmin, xmax = math.Min(xmin, fx(p.X)), math.Max(xmax, fx(p.X))
			ymax = math.Max(ymax, p.Y)
		}
	}
	if math.IsInf(xmin, 1) {
		xmin, xmax = 0, 1
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	ystep := niceStep(ymax / 5)
	if ymax == 0 {
		ymax, ystep = 1, 0.2
	}
	ytop := math.Ceil(ymax/ystep) * ystep
	px := func(x float64) float64 { return left + (fx(x)-xmin)/(xmax-xmin)*pw }
	py := func(y float64) float64 { return top + ph - y/ytop*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15" text-anchor="middle">%s</text>`+"\n", left+pw/2, xmlEsc(c.Title))
	for y := 0.0; y <= ytop+ystep/2; y += ystep {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, py(y), left+pw, py(y))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, py(y)+4, human(y))
	}
	xs := map[float64]bool{}
	for _, s := range c.Series {
		for _, p := range s.Points {
			if !xs[p.X] {
				xs[p.X] = true
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px(p.X), top+ph+18, human(p.X))
			}
		}
	}
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top+ph, left+pw, top+ph)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, top+ph)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`+"\n", left+pw/2, h-10, xmlEsc(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %.0f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+ph/2, xmlEsc(c.YLabel))
	for i, s := range c.Series {
		col := Color(i)
		if s.Color != "" {
			col = xmlEsc(s.Color)
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.X), py(p.Y)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", col, dash, strings.Join(pts, " "))
		for _, p := range s.Points {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(p.X), py(p.Y), col)
		}
		ly := top + 10 + float64(i)*18
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"%s/>`+"\n", left+pw+12, ly, left+pw+30, ly, col, dash)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", left+pw+36, ly+4, xmlEsc(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep rounds a raw step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// human prints 1500000 as 1.5M, 2000 as 2k.
func human(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trim(fmt.Sprintf("%.2f", v/1e6)) + "M"
	case a >= 1e3:
		return trim(fmt.Sprintf("%.2f", v/1e3)) + "k"
	default:
		return trim(fmt.Sprintf("%.2f", v))
	}
}

func trim(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func xmlEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
