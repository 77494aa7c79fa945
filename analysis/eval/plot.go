package eval

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
)

// palette is one colour per target (cycled), readable on white and for most colour
// vision deficiencies (Okabe-Ito).
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"}

// WriteSVG draws time to detect by regression size, one panel per family (error rate ×k,
// latency +x%), one colour per target: the dot is the median, the bar reaches the p90, the
// label is the detection rate. A size caught in fewer than half the runs is drawn as a
// hollow dot in the "< 50% detected" band at the top.
func (r *Report) WriteSVG(w io.Writer) error {
	type panel struct {
		family, title string
		sizes         []float64
		label         func(float64) string
	}
	panels := []panel{
		{family: "errors", title: "error rate ×k", label: func(v float64) string { return fmt.Sprintf("×%g", v) }},
		{family: "latency", title: "latency +x%", label: func(v float64) string { return fmt.Sprintf("+%g%%", 100*v) }},
	}
	var targets []string
	maxMin := 5.0
	for _, row := range r.Rows {
		if !slices.Contains(targets, row.Target) {
			targets = append(targets, row.Target)
		}
		for i := range panels {
			if row.Family == panels[i].family && !slices.Contains(panels[i].sizes, row.Size) {
				panels[i].sizes = append(panels[i].sizes, row.Size)
			}
		}
		if row.Family != "" && row.Fail.P >= 0.5 {
			maxMin = math.Max(maxMin, row.DetectP90.Minutes())
		}
	}
	for i := range panels {
		slices.Sort(panels[i].sizes)
	}
	maxMin = math.Ceil((maxMin+1)/5) * 5 // headroom for the p90 labels

	const (
		pw, ph     = 420.0, 300.0 // plot area of one panel
		left, top  = 60.0, 76.0
		gap        = 80.0
		bandH      = 26.0 // the "< 50% detected" band
		legendLine = 18.0
	)
	width := left + 2*pw + gap + 30
	height := top + bandH + ph + 60 + legendLine*float64(len(targets)) + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="24" font-size="15" font-weight="bold">Time to detect by regression size (median dot, p90 bar, label = detected %%)</text>`+"\n", left)
	fmt.Fprintf(&b, `<text x="%.0f" y="42" fill="#555">%d canaries, seed %d; detection = canary ended failed; time from regression onset to the end of the first failing interval</text>`+"\n",
		left, r.Canaries, r.Seed)

	y := func(min float64) float64 { return top + bandH + ph - ph*min/maxMin }
	for pi, p := range panels {
		x0 := left + float64(pi)*(pw+gap)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-weight="bold">%s</text>`+"\n", x0, top-6, html.EscapeString(p.title))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f3f3f3"/>`+"\n", x0, top, pw, bandH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#777" font-size="11" text-anchor="end">top band: &lt; 50%% detected</text>`+"\n", x0+pw, top-6)
		for m := 0.0; m <= maxMin; m += 5 {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, x0+pw, y(m), y(m))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#555">%gm</text>`+"\n", x0-6, y(m)+4, m)
		}
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", x0, x0+pw, y(0), y(0))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" transform="rotate(-90 %.1f %.1f)" text-anchor="middle" fill="#333">minutes to detect</text>`+"\n",
			x0-40, y(maxMin/2), x0-40, y(maxMin/2))
		n := len(p.sizes)
		xs := func(i int) float64 { return x0 + pw*(float64(i)+0.5)/float64(max(n, 1)) }
		for i, s := range p.sizes {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", xs(i), y(0)+18, html.EscapeString(p.label(s)))
		}
		for ti, t := range targets {
			col := palette[ti%len(palette)]
			off := (float64(ti) - float64(len(targets)-1)/2) * math.Min(14, pw/float64(max(n, 1))/float64(len(targets)+1))
			var line []string
			for i, s := range p.sizes {
				row, ok := r.row(t, p.family, s)
				if !ok {
					continue
				}
				cx := xs(i) + off
				rate := fmt.Sprintf("%.0f%%", 100*row.Fail.P)
				if row.Fail.P < 0.5 || row.DetectMedian <= 0 && row.Fail.K == 0 {
					fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="white" stroke="%s" stroke-width="1.5"><title>%s %s: %s detected</title></circle>`+"\n",
						cx, top+bandH/2+4, col, html.EscapeString(t), html.EscapeString(row.Scenario), rate)
					continue
				}
				med, p90 := row.DetectMedian.Minutes(), row.DetectP90.Minutes()
				fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", cx, cx, y(med), y(p90), col)
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s %s: %s detected, median %s, p90 %s</title></circle>`+"\n",
					cx, y(med), col, html.EscapeString(t), html.EscapeString(row.Scenario), rate, fmtDur(row.DetectMedian), fmtDur(row.DetectP90))
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="9" fill="%s" text-anchor="middle">%s</text>`+"\n", cx, y(p90)-4, col, rate)
				line = append(line, fmt.Sprintf("%.1f,%.1f", cx, y(med)))
			}
			if len(line) > 1 {
				fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-opacity="0.5"/>`+"\n", strings.Join(line, " "), col)
			}
		}
	}
	ly := top + bandH + ph + 50
	for ti, t := range targets {
		col := palette[ti%len(palette)]
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			left+6, ly+float64(ti)*legendLine, col, left+18, ly+float64(ti)*legendLine+4, html.EscapeString(t+r.aaNote(t)))
	}
	b.WriteString("</svg>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("eval: write svg: %w", err)
	}
	return nil
}

func (r *Report) row(target, family string, size float64) (Row, bool) {
	for _, row := range r.Rows {
		if row.Target == target && row.Family == family && row.Size == size {
			return row, true
		}
	}
	return Row{}, false
}

// aaNote is the target's pooled A/A false fail rate, for the legend.
func (r *Report) aaNote(target string) string {
	k, n := 0, 0
	for _, row := range r.Rows {
		if row.Target == target && row.AA && !row.Pooled {
			k += row.Fail.K
			n += row.Fail.N
		}
	}
	if n == 0 {
		return ""
	}
	w := Wilson(k, n)
	return fmt.Sprintf(" — A/A false fail %.2f%% (95%% CI %.2f–%.2f%%, %d runs)", 100*w.P, 100*w.Low, 100*w.High, n)
}
