package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/metrics/prometheus/promserver"
)

// Step is the query_range step and the increase() window of the recorded series.
const Step = 5 * time.Second

// mwStep is the step of the Mann-Whitney preset's series (its shipped 15s).
const mwStep = 15 * time.Second

// appSpec is one recorded app: its traffic, its cohorts' error probability and, for a
// regression, what its canary does from Onset (a share of the recording) on.
type appSpec struct {
	App         string  `json:"app"`
	Scenario    string  `json:"scenario"`
	Rate        float64 `json:"rate"` // requests per second at the swing's mean
	CanaryShare float64 `json:"canary_share"`
	ErrorP      float64 `json:"error_p"`
	// Onset is when the regression starts, in minutes after the start (0: none).
	Onset     float64 `json:"onset_minutes,omitempty"`
	ErrMult   float64 `json:"err_mult,omitempty"`
	LatMult   float64 `json:"lat_mult,omitempty"`
	TailShare float64 `json:"tail_share,omitempty"`
	TailMult  float64 `json:"tail_mult,omitempty"`
}

// apps are the recorded apps: 8 A/A from 1 to 150 req/s and every regression of the
// issue's targets twice, at a high and a lower rate, with onsets spread over the
// recording (the steps before an onset are healthy too).
var apps = []appSpec{
	{App: "aa-q1", Scenario: "aa", Rate: 1, CanaryShare: 0.5, ErrorP: 0.02},
	{App: "aa-q3", Scenario: "aa", Rate: 3, CanaryShare: 0.1, ErrorP: 0.01},
	{App: "aa-q5", Scenario: "aa", Rate: 5, CanaryShare: 0.5, ErrorP: 0.01},
	{App: "aa-m10", Scenario: "aa", Rate: 10, CanaryShare: 0.25, ErrorP: 0.02},
	{App: "aa-m20", Scenario: "aa", Rate: 20, CanaryShare: 0.05, ErrorP: 0.01},
	{App: "aa-m50", Scenario: "aa", Rate: 50, CanaryShare: 0.5, ErrorP: 0.005},
	{App: "aa-h100", Scenario: "aa", Rate: 100, CanaryShare: 0.1, ErrorP: 0.01},
	{App: "aa-h150", Scenario: "aa", Rate: 150, CanaryShare: 0.25, ErrorP: 0.01},
	{App: "err10-h", Scenario: "errors-x10", Rate: 100, CanaryShare: 0.1, ErrorP: 0.01, Onset: 13, ErrMult: 10},
	{App: "err10-m", Scenario: "errors-x10", Rate: 30, CanaryShare: 0.5, ErrorP: 0.01, Onset: 24, ErrMult: 10},
	{App: "err2-h", Scenario: "errors-x2", Rate: 60, CanaryShare: 0.5, ErrorP: 0.01, Onset: 13, ErrMult: 2},
	{App: "err2-m", Scenario: "errors-x2", Rate: 15, CanaryShare: 0.25, ErrorP: 0.02, Onset: 24, ErrMult: 2},
	{App: "lat10-h", Scenario: "latency+10%", Rate: 40, CanaryShare: 0.5, ErrorP: 0.01, Onset: 13, LatMult: 1.1},
	{App: "lat10-m", Scenario: "latency+10%", Rate: 10, CanaryShare: 0.25, ErrorP: 0.01, Onset: 24, LatMult: 1.1},
	{App: "tail-h", Scenario: "tail5%x3", Rate: 50, CanaryShare: 0.25, ErrorP: 0.01, Onset: 13, TailShare: 0.05, TailMult: 3},
	{App: "tail-m", Scenario: "tail5%x3", Rate: 20, CanaryShare: 0.5, ErrorP: 0.01, Onset: 24, TailShare: 0.05, TailMult: 3},
}

// Recording is the file the replay test reads.
type Recording struct {
	Command  string    `json:"command"`
	Note     string    `json:"note"`
	Recorded time.Time `json:"recorded"`
	// Start is the time of the first step: step k covers (Start+(k−1)·Step, Start+k·Step].
	Start         time.Time         `json:"start"`
	StepSeconds   float64           `json:"step_seconds"`
	ScrapeSeconds float64           `json:"scrape_seconds"`
	Steps         int               `json:"steps"`
	LE            []string          `json:"le"` // the bucket boundaries, +Inf last
	Queries       map[string]string `json:"queries"`
	Dropped       int64             `json:"dropped_arrivals"` // arrivals not sent: too many in flight
	Apps          []AppRecording    `json:"apps"`
}

// AppRecording is one app: its spec, the onset as a step index (−1: none; the first
// step whose window ends after the onset), and both cohorts' series.
type AppRecording struct {
	appSpec
	OnsetStep int    `json:"onset_step"`
	Baseline  Cohort `json:"baseline"`
	Canary    Cohort `json:"canary"`
	// MW holds the Mann-Whitney preset's series (configs/golden-signals-mannwhitney.yml)
	// at its 15s step, from Start: index j is at Start + j·15s.
	MW struct {
		Baseline MWCohort `json:"baseline"`
		Canary   MWCohort `json:"canary"`
	} `json:"mw"`
}

// Cohort holds one cohort's per-step series (null: the query returned nothing there).
type Cohort struct {
	Errors   []F   `json:"errors"`
	Requests []F   `json:"requests"`
	Buckets  [][]F `json:"buckets"` // [step][le], cumulative, as the query returns them
	// Raw are the counters' values at each step (raw_* queries).
	Raw struct {
		Errors   []F   `json:"errors"`
		Requests []F   `json:"requests"`
		Buckets  [][]F `json:"buckets"`
	} `json:"raw"`
	// Shipped are the presets' per-step counts since e5bbd4e (shipped_* queries); the
	// recordings made before have only Raw, whose differences are the same here.
	Shipped struct {
		Errors   []F   `json:"errors,omitempty"`
		Requests []F   `json:"requests,omitempty"`
		Buckets  [][]F `json:"buckets,omitempty"`
	} `json:"shipped"`
}

// MWCohort holds the Mann-Whitney preset's series of one cohort.
type MWCohort struct {
	ErrorRate []F `json:"error_rate"`
	P50       []F `json:"p50"`
	P99       []F `json:"p99"`
}

// F is a float that encodes NaN as null and keeps 4 decimals (increase() extrapolates
// counts to fractions; more digits only cost bytes).
type F float64

// MarshalJSON writes null for NaN.
func (f F) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(v*1e4)/1e4, 'f', -1, 64), nil
}

// The PromQL read back: the presets' (configs/golden-signals.yml) with STEP for 15s, the
// same counts as increase() (their shape before e5bbd4e), and the Mann-Whitney preset's
// (configs/golden-signals-mannwhitney.yml).
var queries = map[string]string{
	"shipped_errors":   `sum(((http_requests_total{app="APP",track="TRACK",code=~"5.."} - http_requests_total{app="APP",track="TRACK",code=~"5.."} offset STEP) >= 0 or http_requests_total{app="APP",track="TRACK",code=~"5.."})) or 0 * sum(http_requests_total{app="APP",track="TRACK"})`,
	"shipped_requests": `sum(((http_requests_total{app="APP",track="TRACK"} - http_requests_total{app="APP",track="TRACK"} offset STEP) >= 0 or http_requests_total{app="APP",track="TRACK"}))`,
	"shipped_buckets":  `sum by (le) (((http_request_duration_seconds_bucket{app="APP",track="TRACK"} - http_request_duration_seconds_bucket{app="APP",track="TRACK"} offset STEP) >= 0 or http_request_duration_seconds_bucket{app="APP",track="TRACK"}))`,
	"errors":           `sum(increase(http_requests_total{app="APP",track="TRACK",code=~"5.."}[STEP])) or 0 * sum(increase(http_requests_total{app="APP",track="TRACK"}[STEP]))`,
	"requests":         `sum(increase(http_requests_total{app="APP",track="TRACK"}[STEP]))`,
	"buckets":          `sum by (le) (increase(http_request_duration_seconds_bucket{app="APP",track="TRACK"}[STEP]))`,
	// The counters themselves at each step: their differences are the exact counts that
	// increase() extrapolates (by (samples+1)/samples in a window of 1s scrapes), and what
	// the presets' ((x - x offset STEP) >= 0 or x) returns on these servers (they never
	// restart, and every series exists from the start).
	"raw_errors":   `sum(http_requests_total{app="APP",track="TRACK",code=~"5.."})`,
	"raw_requests": `sum(http_requests_total{app="APP",track="TRACK"})`,
	"raw_buckets":  `sum by (le) (http_request_duration_seconds_bucket{app="APP",track="TRACK"})`,
	"mw_error":     `(sum(rate(http_requests_total{app="APP",track="TRACK",code=~"5.."}[1m])) or vector(0)) / sum(rate(http_requests_total{app="APP",track="TRACK"}[1m]))`,
	"mw_p50":       `histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{app="APP",track="TRACK"}[1m])))`,
	"mw_p99":       `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{app="APP",track="TRACK"}[1m])))`,
}

func render(q, app, track string) string {
	return strings.NewReplacer("APP", app, "TRACK", track, "STEP", fmt.Sprintf("%ds", int(Step.Seconds()))).Replace(q)
}

func runRecord(args []string) error {
	fs := flag.NewFlagSet("record", flag.ContinueOnError)
	dur := fs.Duration("duration", 36*time.Minute, "how long to drive traffic")
	out := fs.String("out", "judge/testdata/live/live.json.gz", "the recording to write")
	dir := fs.String("dir", "", "working directory (Prometheus' TSDB); default a temporary one, removed")
	scale := fs.Float64("scale", 1, "multiplies every app's rate (onsets scale with the duration)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	work := *dir
	if work == "" {
		tmp, err := os.MkdirTemp("", "liverec-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		work = tmp
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var kids children
	defer kids.stop()

	down, err := kids.start(self, "downstream")
	if err != nil {
		return err
	}
	// Onsets are minutes of a 36-minute recording; a shorter one scales them.
	onsetScale := dur.Minutes() / 36
	start := time.Now().Add(20 * time.Second).Truncate(Step).Add(Step) // processes up and scraped first
	type cohortAddr struct{ baseline, canary string }
	addrs := make([]cohortAddr, len(apps))
	var targets []string
	for i, a := range apps {
		for _, track := range []string{"baseline", "canary"} {
			args := []string{"cohort", "-app", a.App, "-track", track, "-downstream", "http://" + down,
				"-err", fmt.Sprint(a.ErrorP)}
			if track == "canary" && a.Onset > 0 {
				at := start.Add(time.Duration(a.Onset * onsetScale * float64(time.Minute)))
				args = append(args, "-regress-at", fmt.Sprint(at.UnixMilli()),
					"-err-mult", fmt.Sprint(nz(a.ErrMult)), "-lat-mult", fmt.Sprint(nz(a.LatMult)),
					"-tail-share", fmt.Sprint(a.TailShare), "-tail-mult", fmt.Sprint(nz(a.TailMult)))
			}
			addr, err := kids.start(self, args...)
			if err != nil {
				return err
			}
			if track == "baseline" {
				addrs[i].baseline = addr
			} else {
				addrs[i].canary = addr
			}
			targets = append(targets, addr)
		}
	}
	data := filepath.Join(work, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	cfg := filepath.Join(work, "prometheus.yml")
	if err := promserver.WriteConfig(cfg, time.Second, targets...); err != nil {
		return err
	}
	prom, err := promserver.Start(ctx, promserver.Options{DataDir: data, ConfigFile: cfg})
	if err != nil {
		return err
	}
	defer prom.Stop()
	fmt.Fprintf(os.Stderr, "liverec: %d cohort processes, downstream %s, prometheus %s; traffic %s from %s\n",
		len(targets), down, prom.URL, *dur, start.Format(time.RFC3339))

	var dropped atomic.Int64
	lctx, lcancel := context.WithDeadline(ctx, start.Add(*dur))
	defer lcancel()
	drive(lctx, start, *scale, &dropped, func(i int) (string, string) { return addrs[i].baseline, addrs[i].canary })
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// Let the last requests finish and be scraped.
	select {
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	rec, err := query(ctx, prom.URL, start, *dur, onsetScale)
	if err != nil {
		return err
	}
	rec.Command = "go run ./scripts/liverec record " + strings.Join(args, " ")
	rec.Dropped = dropped.Load()
	return write(*out, rec)
}

func nz(v float64) float64 {
	if v == 0 {
		return 1
	}
	return v
}

// drive sends Poisson arrivals to every app until ctx ends. The rate swings with a
// shared diurnal-like factor (±35% over 20 minutes) and a shared random walk; each
// arrival goes to the canary with the app's share.
func drive(ctx context.Context, start time.Time, scale float64, dropped *atomic.Int64, cohortOf func(int) (string, string)) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	var walk atomic.Uint64 // float64 bits of the shared log random walk
	go func() {
		w := 0.0
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w = 0.99*w + 0.02*rand.NormFloat64()
				walk.Store(math.Float64bits(w))
			}
		}
	}()
	factor := func(now time.Time) float64 {
		m := now.Sub(start).Minutes()
		return math.Exp(0.35*math.Sin(2*math.Pi*m/20) + math.Float64frombits(walk.Load()))
	}
	if d := time.Until(start); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
	}
	sem := make(chan struct{}, 1024)
	var wg sync.WaitGroup
	for i, a := range apps {
		base, canary := cohortOf(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := time.Now()
			for {
				next = next.Add(time.Duration(rand.ExpFloat64() / (a.Rate * scale * factor(next)) * float64(time.Second)))
				select {
				case <-time.After(time.Until(next)):
				case <-ctx.Done():
					return
				}
				target := base
				if rand.Float64() < a.CanaryShare {
					target = canary
				}
				select {
				case sem <- struct{}{}:
				default:
					dropped.Add(1)
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					resp, err := client.Get("http://" + target + "/")
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}()
			}
		}()
	}
	wg.Wait()
}

// children are the processes record started; stop closes their stdin (they exit) and
// waits, killing any still there after 5s.
type children struct {
	cmds  []*exec.Cmd
	pipes []io.Closer
}

func (k *children) start(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %v: %w", args, err)
	}
	k.cmds = append(k.cmds, cmd)
	k.pipes = append(k.pipes, in)
	line, err := bufio.NewReader(outp).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%v: no listen line: %w", args, err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listen ")
	if !ok {
		return "", fmt.Errorf("%v: unexpected first line %q", args, line)
	}
	return addr, nil
}

func (k *children) stop() {
	for _, p := range k.pipes {
		_ = p.Close()
	}
	done := make(chan struct{})
	go func() {
		for _, c := range k.cmds {
			_ = c.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		for _, c := range k.cmds {
			_ = c.Process.Kill()
		}
		<-done
	}
}

// query reads every app's series back with the shipped PromQL.
func query(ctx context.Context, url string, start time.Time, dur time.Duration, onsetScale float64) (*Recording, error) {
	client, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		return nil, err
	}
	prom := v1.NewAPI(client)
	steps := int(dur / Step)
	rec := &Recording{
		Note: "Real processes (one per cohort: net/http + client_golang), a shared downstream process, Poisson load with a shared swing, " +
			"scraped every 1s by Debian's prometheus " + "on a shared 2-core machine; series are the shipped PromQL at a 5s step " +
			"(STEP = 5s in golden-signals' increase queries), mw the Mann-Whitney preset's at 15s.",
		Recorded: time.Now().UTC(), Start: start.Add(Step).UTC(), StepSeconds: Step.Seconds(), ScrapeSeconds: 1, Steps: steps,
		Queries: queries,
	}
	for _, b := range Buckets {
		rec.LE = append(rec.LE, strconv.FormatFloat(b, 'g', -1, 64))
	}
	rec.LE = append(rec.LE, "+Inf")
	r := v1.Range{Start: rec.Start, End: rec.Start.Add(time.Duration(steps-1) * Step), Step: Step}
	mr := v1.Range{Start: rec.Start, End: r.End, Step: mwStep}
	mwSteps := int(r.End.Sub(rec.Start)/mwStep) + 1
	for _, a := range apps {
		ar := AppRecording{appSpec: a, OnsetStep: -1}
		if a.Onset > 0 {
			onset := start.Add(time.Duration(a.Onset * onsetScale * float64(time.Minute)))
			ar.appSpec.Onset = math.Round(a.Onset*onsetScale*1000) / 1000
			// Step k covers (Start+(k−1)·Step, Start+k·Step]: the first with regressed
			// requests is the one after the step that ends at or before the onset.
			ar.OnsetStep = int(math.Floor(float64(onset.Sub(rec.Start))/float64(Step))) + 1
		}
		for _, track := range []string{"baseline", "canary"} {
			var c Cohort
			var m MWCohort
			var err error
			if c.Errors, err = scalarRange(ctx, prom, render(queries["errors"], a.App, track), r, steps); err != nil {
				return nil, err
			}
			if c.Requests, err = scalarRange(ctx, prom, render(queries["requests"], a.App, track), r, steps); err != nil {
				return nil, err
			}
			if c.Buckets, err = bucketRange(ctx, prom, render(queries["buckets"], a.App, track), r, steps, rec.LE); err != nil {
				return nil, err
			}
			if c.Shipped.Errors, err = scalarRange(ctx, prom, render(queries["shipped_errors"], a.App, track), r, steps); err != nil {
				return nil, err
			}
			if c.Shipped.Requests, err = scalarRange(ctx, prom, render(queries["shipped_requests"], a.App, track), r, steps); err != nil {
				return nil, err
			}
			if c.Shipped.Buckets, err = bucketRange(ctx, prom, render(queries["shipped_buckets"], a.App, track), r, steps, rec.LE); err != nil {
				return nil, err
			}
			if c.Raw.Errors, err = scalarRange(ctx, prom, render(queries["raw_errors"], a.App, track), r, steps); err != nil {
				return nil, err
			}
			if c.Raw.Requests, err = scalarRange(ctx, prom, render(queries["raw_requests"], a.App, track), r, steps); err != nil {
				return nil, err
			}
			if c.Raw.Buckets, err = bucketRange(ctx, prom, render(queries["raw_buckets"], a.App, track), r, steps, rec.LE); err != nil {
				return nil, err
			}
			if m.ErrorRate, err = scalarRange(ctx, prom, render(queries["mw_error"], a.App, track), mr, mwSteps); err != nil {
				return nil, err
			}
			if m.P50, err = scalarRange(ctx, prom, render(queries["mw_p50"], a.App, track), mr, mwSteps); err != nil {
				return nil, err
			}
			if m.P99, err = scalarRange(ctx, prom, render(queries["mw_p99"], a.App, track), mr, mwSteps); err != nil {
				return nil, err
			}
			if track == "baseline" {
				ar.Baseline, ar.MW.Baseline = c, m
			} else {
				ar.Canary, ar.MW.Canary = c, m
			}
		}
		rec.Apps = append(rec.Apps, ar)
	}
	return rec, nil
}

func queryRange(ctx context.Context, prom v1.API, q string, r v1.Range) (model.Matrix, error) {
	v, warn, _, err := prom.QueryRange(ctx, q, r)
	if err != nil {
		return nil, fmt.Errorf("query_range %s: %w", q, err)
	}
	if len(warn) > 0 {
		fmt.Fprintf(os.Stderr, "liverec: %s: warnings %v\n", q, warn)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("query_range %s: a %s, not a matrix", q, v.Type())
	}
	return m, nil
}

func nanSeries(n int) []F {
	s := make([]F, n)
	for i := range s {
		s[i] = F(math.NaN())
	}
	return s
}

func scalarRange(ctx context.Context, prom v1.API, q string, r v1.Range, n int) ([]F, error) {
	m, err := queryRange(ctx, prom, q, r)
	if err != nil {
		return nil, err
	}
	out := nanSeries(n)
	if len(m) > 1 {
		return nil, fmt.Errorf("query_range %s: %d series, want at most 1", q, len(m))
	}
	for _, s := range m {
		for _, p := range s.Values {
			if k := int(p.Timestamp.Time().Sub(r.Start) / r.Step); k >= 0 && k < n {
				out[k] = F(p.Value)
			}
		}
	}
	return out, nil
}

func bucketRange(ctx context.Context, prom v1.API, q string, r v1.Range, n int, les []string) ([][]F, error) {
	m, err := queryRange(ctx, prom, q, r)
	if err != nil {
		return nil, err
	}
	out := make([][]F, n)
	for k := range out {
		out[k] = nanSeries(len(les))
	}
	col := map[string]int{}
	for i, le := range les {
		col[le] = i
	}
	for _, s := range m {
		le := string(s.Metric["le"])
		j, ok := col[le]
		if !ok {
			return nil, fmt.Errorf("query_range %s: unexpected le=%q", q, le)
		}
		for _, p := range s.Values {
			if k := int(p.Timestamp.Time().Sub(r.Start) / r.Step); k >= 0 && k < n {
				out[k][j] = F(p.Value)
			}
		}
	}
	return out, nil
}

func write(path string, rec *Recording) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		return errors.Join(err, f.Close())
	}
	enc := json.NewEncoder(zw)
	if err := enc.Encode(rec); err != nil {
		return errors.Join(err, zw.Close(), f.Close())
	}
	if err := zw.Close(); err != nil {
		return errors.Join(err, f.Close())
	}
	return f.Close()
}
