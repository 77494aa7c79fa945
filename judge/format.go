package judge

import (
	"fmt"
	"math"
	"strconv"
)

// formatValue renders a metric value for a reason, in the metric's unit.
func formatValue(v float64, unit string) string {
	var buf [32]byte
	return string(appendValue(buf[:0], v, unit))
}

// appendValue appends formatValue(v, unit) to dst: the reasons of the sequential judges,
// written every interval for every metric, are built without a string per number.
func appendValue(dst []byte, v float64, unit string) []byte {
	switch unit {
	case "seconds", "s":
		if math.Abs(v) < 1 {
			return append(appendTrim(dst, v*1000), " ms"...)
		}
		return append(appendTrim(dst, v), " s"...)
	case "ratio":
		return append(appendTrim(dst, v*100), '%')
	case "percent", "%":
		return append(appendTrim(dst, v), '%')
	case "bytes":
		const k = 1024
		switch a := math.Abs(v); {
		case a >= k*k*k:
			return append(appendTrim(dst, v/(k*k*k)), " GiB"...)
		case a >= k*k:
			return append(appendTrim(dst, v/(k*k)), " MiB"...)
		case a >= k:
			return append(appendTrim(dst, v/k), " KiB"...)
		}
		return append(appendTrim(dst, v), " B"...)
	case "":
		return appendTrim(dst, v)
	}
	return append(append(appendTrim(dst, v), ' '), unit...)
}

// formatDelta is formatValue with an explicit sign.
func formatDelta(v float64, unit string) string {
	if v >= 0 {
		return "+" + formatDifference(v, unit)
	}
	return formatDifference(v, unit)
}

// formatDifference renders the difference of two values: of ratios and percentages in
// percentage points ("5 pp"), so that an absolute shift never reads as the relative
// "+385%" beside it.
func formatDifference(v float64, unit string) string {
	switch unit {
	case "ratio":
		return trim(v*100) + " pp"
	case "percent", "%":
		return trim(v) + " pp"
	}
	return formatValue(v, unit)
}

// FormatPercent renders a fraction as a signed percentage: 0.6 → "+60%". Reports and
// pages use it so that they read the same as the judge's reasons.
func FormatPercent(f float64) string { return formatPercent(f) }

// FormatP renders a p-value as the judge's reasons do: 0.04, 3e-12.
func FormatP(p float64) string { return formatP(p) }

// formatPercent renders a fraction as a signed percentage: 0.6 → "+60%".
func formatPercent(f float64) string {
	p := f * 100
	if math.Abs(p) >= 10 {
		return fmt.Sprintf("%+.0f%%", p)
	}
	return fmt.Sprintf("%+.1f%%", p)
}

// formatP renders a p-value the way a reader scans it: p=0.04, p=3e-12.
func formatP(p float64) string {
	if p >= 0.001 {
		return strconv.FormatFloat(p, 'g', 2, 64)
	}
	return strconv.FormatFloat(p, 'e', 0, 64)
}

// trim prints three significant digits without a trailing ".0".
func trim(v float64) string {
	var buf [24]byte
	return string(appendTrim(buf[:0], v))
}

// appendTrim appends trim(v) to dst.
func appendTrim(dst []byte, v float64) []byte {
	if a := math.Abs(v); a >= 1000 && a < 1e9 {
		return strconv.AppendFloat(dst, v, 'f', 0, 64) // 1234 rather than 1.23e+03
	}
	return strconv.AppendFloat(dst, v, 'g', 3, 64)
}
