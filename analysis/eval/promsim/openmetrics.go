package promsim

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// Tracks are the cohorts' track label values, as the shipped presets query them
// (track="{{ .Cohort.track }}").
const (
	BaselineTrack = "stable"
	CanaryTrack   = "canary"
)

// WriteOpenMetrics writes every run as the OpenMetrics text promtool backfills:
// http_requests_total{app,track,code} (code 200 and 500) and the classic histogram
// http_request_duration_seconds{app,track} (_bucket{le}, _count, _sum), one sample per
// Step per series, timestamps in seconds, each series in time order, families
// contiguous, ending with # EOF. As a client library does, a 500 series appears at the
// first scrape after its first error (a restart forgets it again), and a restart starts
// every counter over from zero.
func WriteOpenMetrics(w io.Writer, l Layout, runs []Run) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var line []byte
	bw.WriteString("# TYPE http_requests counter\n# HELP http_requests Requests served, by status code.\n")
	for ri := range runs {
		for ci, c := range runs[ri].cohorts() {
			prefix := fmt.Appendf(nil, `http_requests_total{app="%s",track="%s",code=`, runs[ri].App, track(ci))
			for _, code := range []string{"200", "500"} {
				var cum int64
				present := code == "200"
				for k := range c.Requests {
					if k > 0 && k == c.Restart {
						cum = 0
						present = code == "200"
					}
					inc := c.Requests[k] - c.Errors[k]
					if code == "500" {
						inc = c.Errors[k]
						if inc > 0 {
							present = true
						}
					}
					cum += inc
					if !present {
						continue
					}
					line = append(line[:0], prefix...)
					line = append(line, '"')
					line = append(line, code...)
					line = append(line, `"} `...)
					line = strconv.AppendInt(line, cum, 10)
					line = append(line, ' ')
					line = strconv.AppendInt(line, l.Time(k).Unix(), 10)
					line = append(line, '\n')
					bw.Write(line)
				}
			}
		}
	}
	bounds := Buckets()
	les := make([]string, len(bounds)+1)
	for b, ub := range bounds {
		les[b] = strconv.FormatFloat(ub, 'g', -1, 64)
	}
	les[len(bounds)] = "+Inf"
	bw.WriteString("# TYPE http_request_duration_seconds histogram\n# HELP http_request_duration_seconds Request latency.\n")
	cum := make([]int64, len(les))
	for ri := range runs {
		for ci, c := range runs[ri].cohorts() {
			labels := fmt.Sprintf(`app="%s",track="%s"`, runs[ri].App, track(ci))
			clear(cum)
			var sum float64
			for k := range c.Requests {
				if k > 0 && k == c.Restart {
					clear(cum)
					sum = 0
				}
				var acc int64 // this step's requests at or below bucket b
				for b := range les {
					acc += c.Buckets[k][b]
					cum[b] += acc
				}
				sum += c.Sum[k]
				ts := l.Time(k).Unix()
				for b, le := range les {
					line = append(line[:0], "http_request_duration_seconds_bucket{"...)
					line = append(line, labels...)
					line = append(line, `,le="`...)
					line = append(line, le...)
					line = append(line, `"} `...)
					line = strconv.AppendInt(line, cum[b], 10)
					line = append(line, ' ')
					line = strconv.AppendInt(line, ts, 10)
					line = append(line, '\n')
					bw.Write(line)
				}
				line = append(line[:0], "http_request_duration_seconds_count{"...)
				line = append(line, labels...)
				line = append(line, "} "...)
				line = strconv.AppendInt(line, cum[len(les)-1], 10)
				line = append(line, ' ')
				line = strconv.AppendInt(line, ts, 10)
				line = append(line, '\n')
				line = append(line, "http_request_duration_seconds_sum{"...)
				line = append(line, labels...)
				line = append(line, "} "...)
				line = strconv.AppendFloat(line, sum, 'f', 6, 64)
				line = append(line, ' ')
				line = strconv.AppendInt(line, ts, 10)
				line = append(line, '\n')
				bw.Write(line)
			}
		}
	}
	bw.WriteString("# EOF\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("promsim: write openmetrics: %w", err)
	}
	return nil
}

func track(cohort int) string {
	if cohort == 0 {
		return BaselineTrack
	}
	return CanaryTrack
}

func (r *Run) cohorts() [2]*Cohort { return [2]*Cohort{&r.Baseline, &r.Canary} }
