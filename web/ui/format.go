package ui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/judge"
)

// sig3 prints three significant digits; magnitudes people read without an exponent
// (1234, not 1.23e+03) keep their integer digits.
func sig3(v float64) string {
	if a := math.Abs(v); a >= 1000 && a < 1e9 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// unitScale picks how values of a unit are shown, given the largest magnitude to show:
// the factor to multiply by and the suffix. Seconds become µs, ms or s; ratios become
// percentages; bytes become KiB, MiB or GiB.
func unitScale(unit string, maxAbs float64) (factor float64, suffix string) {
	switch unit {
	case "seconds", "s":
		switch {
		case maxAbs == 0 || maxAbs >= 1:
			return 1, " s"
		case maxAbs >= 1e-3:
			return 1e3, " ms"
		}
		return 1e6, " µs"
	case "ratio":
		return 100, "%"
	case "percent", "%":
		return 1, "%"
	case "bytes":
		const k = 1024
		switch {
		case maxAbs >= k*k*k:
			return 1.0 / (k * k * k), " GiB"
		case maxAbs >= k*k:
			return 1.0 / (k * k), " MiB"
		case maxAbs >= k:
			return 1.0 / k, " KiB"
		}
		return 1, " B"
	case "":
		return 1, ""
	}
	return 1, " " + unit
}

// formatValue renders one value in its metric's unit, scaled to its own magnitude.
func formatValue(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	f, suffix := unitScale(unit, math.Abs(v))
	return sig3(v*f) + suffix
}

// formatDelta is formatValue with an explicit sign, for shifts. A shift of a ratio or a
// percentage is in percentage points ("+2.6 pp"), never "%", which the page uses for
// relative changes.
func formatDelta(v float64, unit string) string {
	s := formatValue(v, unit)
	if unit == "ratio" || unit == "percent" || unit == "%" {
		s = strings.TrimSuffix(s, "%") + " pp"
	}
	if v > 0 || (v == 0 && !strings.HasPrefix(s, "-")) {
		return "+" + s
	}
	return s
}

// formatPercent and formatP are the judge's, so that the page reads like the reasons.
func formatPercent(f float64) string { return judge.FormatPercent(f) }

func formatP(p float64) string { return judge.FormatP(p) }

// formatScore renders a 0..100 score.
func formatScore(s float64) string { return strconv.FormatFloat(s, 'f', 1, 64) }

const timeLayout = "2006-01-02 15:04:05 UTC"

// formatTime renders an instant in UTC, the zone alerts and dashboards agree on.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(timeLayout)
}

// formatDuration renders a span at a precision a person reads: 45s, 12m, 1h30m, 2d3h.
func formatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + formatDuration(-d)
	}
	switch {
	case d < time.Second:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		m, s := int(d/time.Minute), int(d%time.Minute/time.Second)
		if s == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%ds", m, s)
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}
