package report

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	got := Table{Header: []string{"a", "b|c"}, Rows: [][]string{{"1", "2"}}}.Markdown()
	want := "| a | b\\|c |\n| --- | --- |\n| 1 | 2 |\n"
	if got != want {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestHumanAndSteps(t *testing.T) {
	for v, want := range map[float64]string{1500000: "1.5M", 2000: "2k", 10: "10", 0.25: "0.25", 10000: "10k"} {
		if got := human(v); got != want {
			t.Errorf("human(%v) = %q, want %q", v, got, want)
		}
	}
	for raw, want := range map[float64]float64{0.3: 0.5, 1: 1, 130000: 200000, 7: 10} {
		if got := niceStep(raw); got != want {
			t.Errorf("niceStep(%v) = %v, want %v", raw, got, want)
		}
	}
	if Ratio(1, 0) != 0 || Ratio(3, 2) != 1.5 {
		t.Error("Ratio")
	}
}

// The chart is well-formed XML with one polyline per series, points
// ordered left to right on a log axis, and escaped text.
func TestLineChartSVG(t *testing.T) {
	c := LineChart{Title: "pps <per> CPU", XLabel: "services", YLabel: "pps", LogX: true, Series: []Series{
		{Name: "strait", Points: []XY{{10, 800000}, {1000, 790000}, {10000, 780000}}},
		{Name: "kube-proxy & iptables", Points: []XY{{10, 250000}, {1000, 240000}, {10000, 100000}}},
	}}
	svg := c.SVG()
	dec := xml.NewDecoder(strings.NewReader(svg))
	polylines := 0
	var texts []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("invalid XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
		if cd, ok := tok.(xml.CharData); ok {
			texts = append(texts, string(cd))
		}
	}
	if polylines != 2 {
		t.Errorf("%d polylines", polylines)
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"pps <per> CPU", "kube-proxy & iptables", "10k", "800k"} {
		if !strings.Contains(all, want) {
			t.Errorf("missing text %q in %s", want, all)
		}
	}
	// Empty charts render too.
	if _, err := xml.NewDecoder(strings.NewReader(LineChart{}.SVG())).Token(); err != nil {
		t.Error(err)
	}
}

// A series' own colour and dash are drawn, in the line and its legend;
// long names widen the chart instead of running off it.
func TestLineChartStyles(t *testing.T) {
	c := LineChart{Series: []Series{
		{Name: "a", Points: []XY{{1, 1}, {2, 2}}, Color: Color(3)},
		{Name: "kube-proxy-iptables-legacy p99", Points: []XY{{1, 2}, {2, 3}}, Dashed: true},
	}}
	svg := c.SVG()
	if n := strings.Count(svg, `stroke="`+Color(3)+`"`); n != 2 { // line and legend
		t.Errorf("colour used %d times", n)
	}
	if n := strings.Count(svg, `stroke-dasharray="6 4"`); n != 2 {
		t.Errorf("dash used %d times", n)
	}
	if !strings.Contains(svg, `stroke="`+Color(1)+`" stroke-width="2" stroke-dasharray`) {
		t.Error("second series not in the second palette colour")
	}
	// 80 + 390 + 46 + 7*30 = 726.
	if !strings.Contains(svg, `width="726"`) {
		t.Errorf("legend width: %s", svg[:120])
	}
	if !strings.Contains((LineChart{}).SVG(), `width="640"`) {
		t.Error("default width changed")
	}
	if Color(len(palette)) != Color(0) {
		t.Error("palette does not cycle")
	}
}
