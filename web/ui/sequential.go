package ui

import (
	"fmt"
	"math"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/judge"
)

// csLimit bounds the confidence-sequence chart's axis to ×1/32..×32 (log2 ±5), the
// judge's own grid: a bound beyond it is open.
const csLimit = 5

// csPoint is one interval's confidence sequence of a sequential metric.
type csPoint struct {
	index          int
	t              float64 // the interval's end, Unix ms
	est, low, high float64 // log2 of the ratio, clamped to the axis
	open           bool    // high unbounded
	failed         bool
	seq            judge.SequentialResult
}

// sequentialChart draws a counts or histogram metric's confidence sequence for the
// canary/baseline ratio at each interval (it narrows as steps add up), its estimate, the
// tolerated ratio, and marks where the sequence first lay wholly beyond the tolerance and
// where the metric failed. ok is false for other judges or before the first result.
func sequentialChart(i int, mi metricInfo, d *analysis.Detail, x0, x1 float64) (ch chart, note string, ok bool) {
	kind := mi.spec.Kind
	if kind != judge.KindCounts && kind != judge.KindHistogram {
		return chart{}, "", false
	}
	log2 := func(v float64) float64 {
		if !(v > 0) {
			return -csLimit
		}
		return min(max(math.Log2(v), -csLimit), csLimit)
	}
	var pts []csPoint
	for _, r := range d.Results {
		for j := range r.Metrics {
			m := &r.Metrics[j]
			if m.Name != mi.name || m.Kind != kind || m.Sequential.Confidence == 0 {
				continue
			}
			q := m.Sequential
			p := csPoint{index: r.Index, t: float64(r.End.UnixMilli()), est: log2(q.Estimate), low: log2(q.Low),
				high: log2(q.High), open: q.HighUnbounded, failed: m.Failed(), seq: q}
			if p.open {
				p.high = csLimit
			}
			pts = append(pts, p)
		}
	}
	if len(pts) == 0 {
		return chart{}, "", false
	}
	what := "error rate"
	if kind == judge.KindHistogram {
		what = "share of requests slower than a bucket boundary"
	}
	ch = newChart(fmt.Sprintf("cs-%d", i), "confidence", mi.name,
		fmt.Sprintf("%s: the canary/baseline ratio of the %s, its confidence sequence at each interval", mi.name, what))
	sx := scale{x0, x1, ch.L, ch.R}
	ch.XTicks = timeTicks(x0, x1, 7, sx)
	spec := mi.spec.WithDefaults()
	var tols []float64
	if spec.Direction != judge.DirectionDecrease {
		tols = append(tols, spec.AllowedIncrease)
	}
	if spec.Direction != judge.DirectionIncrease {
		tols = append(tols, spec.AllowedDecrease)
	}
	lo, hi := 0.0, 0.0
	for _, t := range tols {
		lo, hi = min(lo, log2(t)), max(hi, log2(t))
	}
	for _, p := range pts {
		lo, hi = min(lo, p.low, p.est), max(hi, p.high, p.est)
	}
	lo, hi = max(math.Floor(lo-0.5), -csLimit), min(math.Ceil(hi+0.5), csLimit)
	sy := scale{lo, hi, ch.B, ch.T}
	for k := lo; k <= hi; k++ {
		ch.YTicks = append(ch.YTicks, tick{Pos: px(sy.at(k)), Label: "×" + sig3(math.Exp2(k))})
	}
	// The sequence as an area: the upper bounds left to right, the lower ones back.
	var area, est pathBuilder
	for k, p := range pts {
		c := byte('L')
		if k == 0 {
			c = 'M'
		}
		area.cmd(c, sx.at(p.t), sy.at(p.high))
		est.cmd(c, sx.at(p.t), sy.at(p.est))
	}
	for k := len(pts) - 1; k >= 0; k-- {
		area.cmd('L', sx.at(pts[k].t), sy.at(pts[k].low))
	}
	area.cmd('Z')
	conf := fmt.Sprintf("%.3g%%", 100*pts[0].seq.Confidence)
	ch.Series = append(ch.Series,
		series{Class: "cs-area", Label: fmt.Sprintf("%s confidence sequence of the ratio, %d intervals", conf, len(pts)), D: area.String(), Points: len(pts)},
		series{Class: "series estimate", Label: "estimated ratio", D: est.String(), Points: len(pts)})
	for _, t := range tols {
		y := sy.at(log2(t))
		ch.Rules = append(ch.Rules, rule{Class: "bound", X1: px(ch.L), Y1: px(y), X2: px(ch.R), Y2: px(y),
			Label: "tolerated ×" + sig3(t), LX: px(ch.L + 4), LY: px(y - 4), Anchor: "start"})
	}
	crossed, failed := -1, -1
	for k, p := range pts {
		beyond := (spec.Direction != judge.DirectionDecrease && p.seq.Low > spec.AllowedIncrease) ||
			(spec.Direction != judge.DirectionIncrease && !p.open && p.seq.High < spec.AllowedDecrease)
		if crossed < 0 && beyond {
			crossed = k
		}
		if failed < 0 && p.failed {
			failed = k
		}
	}
	note = fmt.Sprintf("The %s confidence sequence holds the ratio at every interval with probability ≥ %s, however often it is looked at; it narrows as steps add up.", conf, conf)
	if crossed >= 0 {
		p := pts[crossed]
		ch.Dots = append(ch.Dots, dot{Class: "crossing", X: px(sx.at(p.t)), Y: px(sy.at(p.est)),
			Title: fmt.Sprintf("interval %d: the confidence sequence (×%s..%s) lies beyond the tolerance", p.index, sig3(p.seq.Low), csHigh(p.seq))})
		note += fmt.Sprintf(" It first lay wholly beyond the tolerance at interval %d.", p.index)
	}
	if failed >= 0 {
		p := pts[failed]
		ch.Dots = append(ch.Dots, dot{Class: "verdict bad", X: px(sx.at(p.t)), Y: px(sy.at(p.est)),
			Title: fmt.Sprintf("interval %d: failed, e-value %s of %s", p.index, sig3(p.seq.EValue), sig3(p.seq.Threshold))})
		note += fmt.Sprintf(" The metric failed at interval %d (e-value %s reached %s).", p.index, sig3(p.seq.EValue), sig3(p.seq.Threshold))
	}
	return ch, note, true
}

func csHigh(q judge.SequentialResult) string {
	if q.HighUnbounded {
		return "∞"
	}
	return "×" + sig3(q.High)
}
