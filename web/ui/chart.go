package ui

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/canaryd/canaryd/analysis"
)

// Every chart has the same frame, so that the charts of a page line up.
const (
	chartW = 720
	chartH = 220
	padL   = 72 // room for the y tick labels
	padR   = 28 // room for the last x label
	padT   = 12
	padB   = 28 // room for the x tick labels

	// ecdfSteps bounds the steps an ECDF path draws; beyond it, ranks are sampled.
	ecdfSteps = 600
)

// chart is one inline SVG, laid out in Go; the template only prints it. Every element
// has a stable class (and each chart a stable id) so that tests and users' scripts can
// find a chart's series: path.series.baseline, path.series.canary, path.series.score.
type chart struct {
	ID     string // "score", "ts-0", "ecdf-0": kind and the metric's position
	Kind   string // score, timeseries, ecdf
	Metric string
	Title  string
	W, H   int
	// The plot area, for the code; Frame is it for the template.
	L, T, R, B float64
	Frame      frame
	XTicks     []tick
	YTicks     []tick
	Bands      []band
	Series     []series
	Rules      []rule
	Dots       []dot
	// Empty, when set, is shown in place of the data.
	Empty string
}

// px is a coordinate in the SVG; it prints with one decimal, which is finer than a
// pixel and keeps pages small. The template prints it without a function call.
type px float64

func (p px) String() string {
	v := float64(p)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "0"
	}
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

type tick struct {
	Pos   px
	Label string
}

type band struct {
	Class      string
	X, Y, W, H px
	Title      string
}

type series struct {
	Class string
	Label string
	D     string
	// Points is how many data points the path stands for.
	Points int
}

type rule struct {
	Class          string
	X1, Y1, X2, Y2 px
	Label          string
	LX, LY         px
	Anchor         string
}

type dot struct {
	Class string
	X, Y  px
	Title string
}

// frame is where the template draws a chart's plot area, axis labels and empty note.
type frame struct {
	L, T, R, B, PW, PH px
	YLabelX, XLabelY   px
	MidX, MidY         px
}

func newChart(id, kind, metric, title string) chart {
	c := chart{
		ID: id, Kind: kind, Metric: metric, Title: title, W: chartW, H: chartH,
		L: padL, T: padT, R: chartW - padR, B: chartH - padB,
	}
	c.Frame = frame{
		L: px(c.L), T: px(c.T), R: px(c.R), B: px(c.B), PW: px(c.R - c.L), PH: px(c.B - c.T),
		YLabelX: px(c.L - 6), XLabelY: px(c.B + 17), MidX: px((c.L + c.R) / 2), MidY: px((c.T + c.B) / 2),
	}
	return c
}

// scale maps a domain [d0, d1] linearly onto a range of pixels [r0, r1].
type scale struct{ d0, d1, r0, r1 float64 }

func (s scale) at(v float64) float64 {
	if s.d1 == s.d0 {
		return (s.r0 + s.r1) / 2
	}
	return s.r0 + (v-s.d0)/(s.d1-s.d0)*(s.r1-s.r0)
}

// clampTo keeps a pixel position inside the scale's range.
func (s scale) clampTo(p float64) float64 {
	lo, hi := min(s.r0, s.r1), max(s.r0, s.r1)
	return max(lo, min(hi, p))
}

// niceStep is the 1, 2 or 5 × 10^k step that cuts span into at most about n parts.
func niceStep(span float64, n int) float64 {
	if !(span > 0) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw*(1-1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// niceDomain widens [lo, hi] to multiples of a nice step, and gives the step. An empty
// span is widened around its value, so a flat series sits in the middle of its chart.
func niceDomain(lo, hi float64, n int) (float64, float64, float64) {
	if !(hi > lo) {
		pad := math.Abs(lo) * 0.1
		if pad == 0 {
			pad = 1
		}
		lo, hi = lo-pad, hi+pad
	}
	step := niceStep(hi-lo, n)
	return math.Floor(lo/step) * step, math.Ceil(hi/step) * step, step
}

// valueTicks are the ticks of a value axis on [lo, hi] every step, labelled in unit at
// one scale for the whole axis (all in ms, or all in s).
func valueTicks(lo, hi, step float64, unit string, sy scale) []tick {
	factor, suffix := unitScale(unit, max(math.Abs(lo), math.Abs(hi)))
	decimals := 0
	if s := step * factor; s < 1 {
		decimals = int(math.Ceil(-math.Log10(s) - 1e-9))
	}
	var out []tick
	for k := math.Round(lo / step); k <= math.Round(hi/step); k++ {
		v := k * step
		x := v * factor
		if math.Abs(x) < step*factor/2 {
			x = 0 // no "-0"
		}
		out = append(out, tick{Pos: px(sy.at(v)), Label: strconv.FormatFloat(x, 'f', decimals, 64) + suffix})
	}
	return out
}

var timeSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour,
}

// timeTicks are the ticks of a time axis (Unix ms) at round UTC times, at most about n.
func timeTicks(t0, t1 float64, n int, sx scale) []tick {
	span := time.Duration(t1-t0) * time.Millisecond
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= time.Duration(n) {
			step = s
			break
		}
	}
	layout := "15:04"
	switch {
	case step < time.Minute:
		layout = "15:04:05"
	case step >= 24*time.Hour:
		layout = "Jan 2"
	}
	ms := float64(step / time.Millisecond)
	var out []tick
	for t := math.Ceil(t0/ms) * ms; t <= t1; t += ms {
		out = append(out, tick{Pos: px(sx.at(t)), Label: time.UnixMilli(int64(t)).UTC().Format(layout)})
	}
	return out
}

// pathBuilder writes an SVG path's d attribute with one decimal per coordinate.
type pathBuilder struct {
	b []byte
	n int // commands written
}

func (p *pathBuilder) cmd(c byte, coords ...float64) {
	if len(p.b) > 0 {
		p.b = append(p.b, ' ')
	}
	p.b = append(p.b, c)
	for i, v := range coords {
		if i > 0 {
			p.b = append(p.b, ',')
		}
		p.b = strconv.AppendFloat(p.b, math.Round(v*10)/10, 'f', -1, 64)
	}
	p.n++
}

func (p *pathBuilder) String() string { return string(p.b) }

// typicalGap is the median spacing of time-ordered points (0 for fewer than two).
func typicalGap(pts []analysis.TimeValue) float64 {
	if len(pts) < 2 {
		return 0
	}
	d := make([]float64, 0, len(pts)-1)
	for i := 1; i < len(pts); i++ {
		d = append(d, pts[i][0]-pts[i-1][0])
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// linePath draws a time series. With more points than pixel columns it keeps each
// column's first, lowest, highest and last point, so that a spike stays visible however
// long the canary. Points further apart than maxGap start a new subpath: missing data
// shows as a gap, not as a straight line. It returns d and the points drawn.
func linePath(pts []analysis.TimeValue, sx, sy scale, maxGap float64) (string, int) {
	var p pathBuilder
	if len(pts) == 0 {
		return "", 0
	}
	if !slices.IsSortedFunc(pts, func(a, b analysis.TimeValue) int { return cmpFloat(a[0], b[0]) }) {
		pts = slices.Clone(pts)
		slices.SortStableFunc(pts, func(a, b analysis.TimeValue) int { return cmpFloat(a[0], b[0]) })
	}
	drawn := 0
	prevT := math.Inf(-1)
	emit := func(tv analysis.TimeValue) {
		c := byte('L')
		if drawn == 0 || (maxGap > 0 && tv[0]-prevT > maxGap) {
			c = 'M'
		}
		p.cmd(c, sx.at(tv[0]), sy.at(tv[1]))
		prevT = tv[0]
		drawn++
	}
	cols := int(math.Abs(sx.r1 - sx.r0))
	if len(pts) <= 2*cols {
		for _, tv := range pts {
			emit(tv)
		}
	} else {
		col := func(t float64) int { return int(sx.at(t)) }
		for i := 0; i < len(pts); {
			c := col(pts[i][0])
			lo, hi, j := i, i, i
			for ; j < len(pts) && col(pts[j][0]) == c; j++ {
				if pts[j][1] < pts[lo][1] {
					lo = j
				}
				if pts[j][1] > pts[hi][1] {
					hi = j
				}
			}
			keep := []int{i, lo, hi, j - 1}
			slices.Sort(keep)
			for k, idx := range keep {
				if k == 0 || idx != keep[k-1] {
					emit(pts[idx])
				}
			}
			i = j
		}
	}
	// A lone point would be an invisible zero-length path; a short tick keeps it visible.
	if drawn == 1 {
		p.cmd('h', 0.1)
	}
	return p.String(), drawn
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ecdfPath draws the empirical CDF of sorted values as a staircase from the plot's left
// edge (0) to its right edge (1); shift moves every value (to draw a shifted cohort).
// Beyond ecdfSteps values it samples ranks evenly, which a reader cannot tell apart.
func ecdfPath(sorted []float64, shift float64, sx, sy scale) string {
	n := len(sorted)
	if n == 0 {
		return ""
	}
	var p pathBuilder
	p.cmd('M', min(sx.r0, sx.at(sorted[0]+shift)), sy.at(0))
	step := 1.0
	if n > ecdfSteps {
		step = float64(n) / ecdfSteps
	}
	last := -1
	for f := step - 1; ; f += step {
		r := int(math.Ceil(f - 1e-9))
		if r >= n || f > float64(n-1)+1e-9 {
			r = n - 1
		}
		if r > last {
			p.cmd('H', sx.at(sorted[r]+shift))
			p.cmd('V', sy.at(float64(r+1)/float64(n)))
			last = r
		}
		if r == n-1 {
			break
		}
	}
	p.cmd('H', max(sx.r1, sx.at(sorted[n-1]+shift)))
	return p.String()
}
