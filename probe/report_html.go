package probe

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteHTML writes the report as one self-contained page (inline CSS and
// SVG, no script, nothing fetched): a chart of the largest relative error
// over positions by layer, one line per probe kind, on a log scale with the
// two thresholds drawn; the first divergence circled; then the verdict and
// the table of every row, the first divergence highlighted.
func (r *Report) WriteHTML(w io.Writer) error {
	first := r.firstDivergenceIndex()
	page := htmlPage{
		Title:   "llamago diff: " + r.A + " vs " + r.B,
		A:       r.A + describeInfo(r.InfoA),
		B:       r.B + describeInfo(r.InfoB),
		Notes:   r.Notes,
		Agree:   formatG3(r.Agree),
		Warn:    formatG3(r.Warn),
		Verdict: r.Verdict(),
		Chart:   template.HTML(r.chartSVG()),
		Counts:  r.countsLine(),
	}
	for i, row := range r.Rows {
		hr := htmlRow{
			Probe: row.Probe, Pos: row.Pos, Shape: formatShape(row.Shape),
			Class: row.Class.String(), CSS: strings.ReplaceAll(row.Class.String(), " ", "-"),
			First: i == first,
		}
		if row.Class != MissingInA && row.Class != MissingInB {
			hr.Rel, hr.MaxAbs = formatG3(row.RelErr), formatG3(row.MaxAbs)
			hr.Cosine = strconv.FormatFloat(row.Cosine, 'f', 6, 64)
		}
		page.Rows = append(page.Rows, hr)
	}
	if err := htmlTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("probe: writing HTML report: %w", err)
	}
	return nil
}

type htmlPage struct {
	Title, A, B     string
	Notes           []string
	Agree, Warn     string
	Verdict, Counts string
	Chart           template.HTML
	Rows            []htmlRow
}

type htmlRow struct {
	Probe               string
	Pos                 int
	Shape               string
	Rel, MaxAbs, Cosine string
	Class, CSS          string
	First               bool
}

func (r *Report) countsLine() string {
	c := r.Counts()
	return fmt.Sprintf("%d agree, %d warn, %d diverge; %d missing in A, %d missing in B",
		c[Agree], c[Warn], c[Diverge], c[MissingInA], c[MissingInB])
}

// chartPoint is the worst relative error of one probe kind at one x slot.
type chartPoint struct {
	slot int
	rel  float64
}

// chartSVG draws the relative error by layer. x slots: "embd", the layers,
// then "final" (output_norm, logits); each kind is one polyline through
// its worst relative error over positions per slot.
func (r *Report) chartSVG() string {
	nLayers := 0
	for _, row := range r.Rows {
		nLayers = max(nLayers, row.Layer+1)
	}
	slotOf := func(row Row) int {
		switch {
		case row.Layer >= 0:
			return row.Layer + 1
		case row.Kind == Embd:
			return 0
		}
		return nLayers + 1
	}
	nSlots := nLayers + 2

	// Worst error per (kind, slot), kinds in first-seen (forward) order.
	var kinds []string
	series := map[string]map[int]float64{}
	for _, row := range r.Rows {
		if row.Class == MissingInA || row.Class == MissingInB {
			continue
		}
		s := series[row.Kind]
		if s == nil {
			s = map[int]float64{}
			series[row.Kind] = s
			kinds = append(kinds, row.Kind)
		}
		slot := slotOf(row)
		old, seen := s[slot]
		// NaN is the worst of all: keep it once seen.
		if !seen || math.IsNaN(row.RelErr) || (!math.IsNaN(old) && row.RelErr > old) {
			s[slot] = row.RelErr
		}
	}

	// The y range in decades: from the smallest positive error (at most the
	// agree threshold's decade) to the largest finite one (at least a decade
	// above the warn threshold); 0 sits on the floor, Inf and NaN on the roof.
	lo, hi := math.Floor(math.Log10(r.Agree))-1, math.Ceil(math.Log10(r.Warn))+1
	for _, s := range series {
		for _, v := range s {
			if v > 0 && !math.IsInf(v, 0) {
				lo = math.Min(lo, math.Floor(math.Log10(v)))
				hi = math.Max(hi, math.Ceil(math.Log10(v)))
			}
		}
	}
	lo = math.Max(lo, -12)

	const (
		width, height         = 960, 420
		left, right           = 70, 170
		top, bottom           = 20, 50
		plotW, plotH  float64 = width - left - right, height - top - bottom
	)
	x := func(slot int) float64 {
		if nSlots == 1 {
			return left + plotW/2
		}
		return left + plotW*float64(slot)/float64(nSlots-1)
	}
	y := func(v float64) float64 {
		var d float64
		switch {
		case math.IsNaN(v) || math.IsInf(v, 1):
			d = hi
		case v <= 0:
			d = lo
		default:
			d = math.Max(lo, math.Min(hi, math.Log10(v)))
		}
		return top + plotH*(hi-d)/(hi-lo)
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="relative error by layer">`, width, height, width, height)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%g" height="%g" class="plot"/>`, left, top, plotW, plotH)
	// Decade grid and labels.
	for d := lo; d <= hi; d++ {
		yy := top + plotH*(hi-d)/(hi-lo)
		fmt.Fprintf(&b, `<line x1="%d" x2="%g" y1="%.1f" y2="%.1f" class="grid"/>`, left, left+plotW, yy, yy)
		label := fmt.Sprintf("1e%d", int(d))
		if d == lo {
			label = "≤" + label // zeros and anything smaller sit on the floor
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>`, left-6, yy+4, label)
	}
	// Slot labels.
	for slot := 0; slot < nSlots; slot++ {
		label := strconv.Itoa(slot - 1)
		switch slot {
		case 0:
			label = "embd"
		case nSlots - 1:
			label = "final"
		}
		if nSlots > 40 && slot > 0 && slot < nSlots-1 && (slot-1)%5 != 0 {
			continue // keep labels of wide models readable
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>`, x(slot), top+int(plotH)+16, label)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="axis" text-anchor="middle">layer</text>`, left+plotW/2, height-10)
	fmt.Fprintf(&b, `<text x="16" y="%.1f" class="axis" text-anchor="middle" transform="rotate(-90 16 %.1f)">relative error (log)</text>`, top+plotH/2, top+plotH/2)
	// Thresholds.
	for _, th := range []struct {
		v     float64
		class string
	}{{r.Agree, "agree"}, {r.Warn, "warn"}} {
		yy := y(th.v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%g" y1="%.1f" y2="%.1f" class="th-%s"/>`, left, left+plotW, yy, yy, th.class)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" class="tick" text-anchor="end">%s %s</text>`, left+plotW-4, yy-4, th.class, formatG3(th.v))
	}
	// One polyline per kind, with a dot per point.
	for i, kind := range kinds {
		color := seriesColor(i)
		var pts []chartPoint
		for slot := 0; slot < nSlots; slot++ {
			if v, ok := series[kind][slot]; ok {
				pts = append(pts, chartPoint{slot, v})
			}
		}
		var coords []string
		for _, p := range pts {
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", x(p.slot), y(p.rel)))
		}
		fmt.Fprintf(&b, `<g><title>%s</title>`, html.EscapeString(kind))
		if len(coords) > 1 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`, strings.Join(coords, " "), color)
		}
		for _, p := range pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s, slot %d: %s</title></circle>`,
				x(p.slot), y(p.rel), color, html.EscapeString(kind), p.slot-1, formatG3(p.rel))
		}
		b.WriteString(`</g>`)
		ly := top + 14*i
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>`, left+plotW+60, left+plotW+76, ly+40, ly+40, color)
		fmt.Fprintf(&b, `<text x="%g" y="%d" class="tick">%s</text>`, left+plotW+80, ly+44, html.EscapeString(kind))
	}
	// The first divergence, circled.
	if i := r.firstDivergenceIndex(); i >= 0 {
		row := r.Rows[i]
		cx, cy := x(slotOf(row)), y(row.RelErr)
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="9" class="first"/>`, cx, cy)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="first-label">%s @ %d</text>`, cx+12, cy-10, html.EscapeString(row.Probe), row.Pos)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// seriesColor picks colours distinct enough for neighbouring series to be
// told apart (a categorical palette in the spirit of Kelly's).
func seriesColor(i int) string {
	colors := [...]string{
		"#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
		"#9a6324", "#469990", "#000075", "#808000", "#800000", "#bfef45", "#dcbeff",
		"#a9a9a9", "#ffe119", "#aaffc3", "#fabed4", "#000000", "#ffd8b1",
	}
	return colors[i%len(colors)]
}

var htmlTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
.verdict { font-size: 1.15em; font-weight: bold; margin: .8em 0; }
.verdict.bad { color: #b00020; } .verdict.good { color: #1b7a1b; }
svg .plot { fill: #fafafa; stroke: #999; }
svg .grid { stroke: #e3e3e3; }
svg .tick { font-size: 11px; fill: #444; }
svg .axis { font-size: 12px; fill: #222; }
svg .th-agree { stroke: #d08c00; stroke-dasharray: 6 4; }
svg .th-warn { stroke: #b00020; stroke-dasharray: 6 4; }
svg .first { fill: none; stroke: #b00020; stroke-width: 2.5; }
svg .first-label { font-size: 12px; fill: #b00020; font-weight: bold; }
table { border-collapse: collapse; font: 12px ui-monospace, monospace; }
th, td { padding: 2px 10px; text-align: left; border-bottom: 1px solid #eee; }
th { position: sticky; top: 0; background: #fff; }
td.num { text-align: right; }
tr.warn td { background: #fff6dd; }
tr.diverge td { background: #fde4e4; }
tr.missing-in-A td, tr.missing-in-B td { color: #888; }
tr.first td { background: #f7b4b4; font-weight: bold; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>A: {{.A}}<br>B: {{.B}} (reference)</p>
{{range .Notes}}<p class="note">note: {{.}}</p>
{{end}}<p>Classes: agree if relative error &lt; {{.Agree}}, warn if &lt; {{.Warn}}, diverge otherwise. {{.Counts}}.</p>
<p class="verdict {{if eq .Verdict "all probes agree"}}good{{else}}bad{{end}}">{{if ne .Verdict "all probes agree"}}<a href="#first">{{.Verdict}}</a>{{else}}{{.Verdict}}{{end}}</p>
<figure>
{{.Chart}}
<figcaption>Each point is the largest relative error of a probe kind in a layer over all positions; zeros sit on the floor, NaN and Inf on the roof.</figcaption>
</figure>
<table>
<thead><tr><th>probe</th><th>pos</th><th>shape</th><th>rel err</th><th>max abs</th><th>cosine</th><th>class</th></tr></thead>
<tbody>
{{range .Rows}}<tr class="{{.CSS}}{{if .First}} first{{end}}"{{if .First}} id="first"{{end}}><td>{{.Probe}}</td><td class="num">{{.Pos}}</td><td>{{.Shape}}</td><td class="num">{{.Rel}}</td><td class="num">{{.MaxAbs}}</td><td class="num">{{.Cosine}}</td><td>{{.Class}}</td></tr>
{{end}}</tbody>
</table>
<p class="verdict">{{.Verdict}}</p>
</body>
</html>
`))
