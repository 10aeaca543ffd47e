// Package report turns benchmark results into their outputs: machine
// details, Markdown tables and hand-written SVG line charts.
package report
