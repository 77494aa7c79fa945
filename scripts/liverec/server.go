package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Buckets are the latency histogram's bounds: client_golang's DefBuckets, what the
// presets' histogram judge and most services use.
var Buckets = prometheus.DefBuckets

// cohortFlags configure one cohort process.
type cohortFlags struct {
	app, track, downstream string
	errP                   float64 // base probability of a 500
	workMedian             float64 // hash rounds (1 KiB each) per request, lognormal median
	sleepMedian            time.Duration
	// The regression, switched on at regressAt (Unix ms; 0 never).
	regressAt          int64
	errMult, latMult   float64
	tailShare, tailMul float64
}

// lognormal draws a lognormal variate with the given median and log-sd.
func lognormal(median, sigma float64) float64 { return median * math.Exp(sigma*rand.NormFloat64()) }

// serveUntilStdinCloses serves h on a free loopback port, prints "listen ADDR" on stdout
// for the parent, and returns when the parent closes stdin (or dies: the pipe closes too,
// so a killed recorder never leaves its children behind).
func serveUntilStdinCloses(h http.Handler) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	fmt.Printf("listen %s\n", l.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	return nil
}

func runCohort(args []string) error {
	var f cohortFlags
	fs := flag.NewFlagSet("cohort", flag.ContinueOnError)
	fs.StringVar(&f.app, "app", "", "app label")
	fs.StringVar(&f.track, "track", "", "track label (baseline, canary)")
	fs.StringVar(&f.downstream, "downstream", "", "downstream base URL")
	fs.Float64Var(&f.errP, "err", 0.01, "base probability of a 500")
	fs.Float64Var(&f.workMedian, "work", 40, "median hash rounds of 1 KiB per request")
	fs.DurationVar(&f.sleepMedian, "sleep", 12*time.Millisecond, "median of the request's own sleep (lognormal, log-sd 0.8)")
	fs.Int64Var(&f.regressAt, "regress-at", 0, "Unix ms when the regression starts (0 never)")
	fs.Float64Var(&f.errMult, "err-mult", 1, "error probability multiplier once regressed")
	fs.Float64Var(&f.latMult, "lat-mult", 1, "latency multiplier of every request once regressed")
	fs.Float64Var(&f.tailShare, "tail-share", 0, "share of requests slowed once regressed")
	fs.Float64Var(&f.tailMul, "tail-mult", 1, "latency multiplier of the slowed share")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.app == "" || f.track == "" || f.downstream == "" {
		return errors.New("-app, -track and -downstream are required")
	}
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests served, by status code.",
	}, []string{"app", "track", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "HTTP request latency.", Buckets: Buckets,
	}, []string{"app", "track"})
	reg.MustRegister(requests, duration)
	// Every code this server answers exists from the start, as a service that
	// initialises its label values does: increase() then never loses a first error.
	for _, code := range []string{"200", "500", "502"} {
		requests.WithLabelValues(f.app, f.track, code)
	}
	hist := duration.WithLabelValues(f.app, f.track)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	c := &cohort{f: f, client: client}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		code := c.handle(r.Context(), t0)
		w.WriteHeader(code)
		requests.WithLabelValues(f.app, f.track, strconv.Itoa(code)).Inc()
		hist.Observe(time.Since(t0).Seconds())
	})
	return serveUntilStdinCloses(mux)
}

type cohort struct {
	f      cohortFlags
	client *http.Client
}

// handle does one request's work and returns its status: hashing (CPU), its own sleep
// (I/O), a call to the shared downstream, a 500 with the cohort's probability, then the
// regression's extra latency.
func (c *cohort) handle(ctx context.Context, t0 time.Time) int {
	var buf [1024]byte
	sum := sha256.Sum256(buf[:])
	for range int(lognormal(c.f.workMedian, 0.6)) {
		copy(buf[:], sum[:])
		sum = sha256.Sum256(buf[:])
	}
	time.Sleep(time.Duration(lognormal(float64(c.f.sleepMedian), 0.8)))
	code := http.StatusOK
	if !c.downstream(ctx) {
		code = http.StatusBadGateway
	}
	regressed := c.f.regressAt > 0 && t0.UnixMilli() >= c.f.regressAt
	p := c.f.errP
	if regressed {
		p *= c.f.errMult
	}
	if code == http.StatusOK && rand.Float64() < p {
		code = http.StatusInternalServerError
	}
	if regressed {
		el := time.Since(t0)
		extra := (c.f.latMult - 1) * float64(el)
		if c.f.tailShare > 0 && rand.Float64() < c.f.tailShare {
			extra += (c.f.tailMul - 1) * float64(el)
		}
		if extra > 0 {
			time.Sleep(time.Duration(extra))
		}
	}
	return code
}

func (c *cohort) downstream(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.f.downstream+"/q?app="+c.f.app, nil)
	if err != nil {
		return false
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// downstream is the dependency every cohort of every app calls: its latency drifts
// (a slow swing and a mean-reverting random walk) and it has error bursts, both shared
// by the cohorts, as a database or another service is.
type downstream struct {
	median time.Duration
	mu     sync.Mutex
	logW   float64 // random walk of the log latency factor
	burst  time.Time
	burstP float64
	start  time.Time
}

func runDownstream(args []string) error {
	fs := flag.NewFlagSet("downstream", flag.ContinueOnError)
	median := fs.Duration("median", 15*time.Millisecond, "median latency (lognormal, log-sd 0.4) before the drift")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d := &downstream{median: *median, start: time.Now()}
	go d.drift()
	return serveUntilStdinCloses(http.HandlerFunc(d.serve))
}

func (d *downstream) drift() {
	for range time.Tick(time.Second) {
		d.mu.Lock()
		d.logW = 0.995*d.logW + 0.03*rand.NormFloat64()
		// About one burst every 5 minutes, 10–30 s long, failing 2–6% of calls.
		if time.Now().After(d.burst) && rand.Float64() < 1.0/300 {
			d.burst = time.Now().Add(time.Duration(10+rand.IntN(21)) * time.Second)
			d.burstP = 0.02 + 0.04*rand.Float64()
		}
		d.mu.Unlock()
	}
}

func (d *downstream) serve(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	d.mu.Lock()
	logW, inBurst, p := d.logW, now.Before(d.burst), d.burstP
	d.mu.Unlock()
	swing := 0.25 * math.Sin(2*math.Pi*now.Sub(d.start).Minutes()/15)
	time.Sleep(time.Duration(lognormal(float64(d.median)*math.Exp(swing+logW), 0.4)))
	if inBurst && rand.Float64() < p {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}
