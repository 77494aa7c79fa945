package benchmarks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/boltstore"
	"github.com/canaryd/canaryd/analysis/pgstore"
	"github.com/canaryd/canaryd/analysis/pgstore/pgtest"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/synthetic"
	apiv1 "github.com/canaryd/canaryd/web/api/v1"
)

// scaleConfig is ten metrics on the synthetic provider, judged every 10 s.
func scaleConfig() string {
	var b strings.Builder
	b.WriteString(`
server: {max_running_per_analysis: 5000}
providers:
  sim: {type: synthetic, seed: 1}
analyses:
  scale:
    provider: sim
    interval: 10s
    step: 5s
    lifetime: 30m
    warmup: 10s
    metrics:
`)
	signals := []string{"error_rate", "latency_p50", "latency_p90", "latency_p99", "saturation", "request_rate"}
	for i := 0; i < 10; i++ {
		sig := signals[i%len(signals)]
		fmt.Fprintf(&b, "      - name: m%d-%s\n        query: 'signal=%s cohort={{ .Cohort.track }} app={{ .Vars.app }}'\n        judge: {type: mannwhitney, direction: either}\n", i, sig, sig)
	}
	return b.String()
}

// envDuration reads a duration from the environment, for longer runs by hand.
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func rssKiB() int64 { return statusKiB("VmRSS:") }

// anonKiB is the resident memory that is not the store's mapped file: the process's own.
func anonKiB() int64 { return statusKiB("RssAnon:") }

// liveHeap is the Go heap in use, right after a collection: what the process holds on
// to, as opposed to what the runtime keeps from the operating system.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func statusKiB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// scaleDaemon is the daemon's scheduler, bolt store and HTTP API in this process, on
// the synthetic provider, with n canaries registered over one interval (as deploys
// arrive, so that the load is even).
type scaleDaemon struct {
	sched *analysis.Scheduler
	store analysis.Store
	srv   *httptest.Server
	ids   []string
}

func startScaleDaemon(b *testing.B, configText string, metricsKept, n int) *scaleDaemon {
	return startScaleDaemonStored(b, configText, metricsKept, n, 0)
}

// startScaleDaemonStored is startScaleDaemon on a store that already holds stored ended
// canaries (as a daemon does after weeks of deploys), written before the scheduler starts.
func startScaleDaemonStored(b *testing.B, configText string, metricsKept, n, stored int) *scaleDaemon {
	b.Helper()
	cfg, err := config.Parse([]byte(configText), testKinds())
	if err != nil {
		b.Fatal(err)
	}
	if metricsKept > 0 {
		cfg.Analyses["scale"].Metrics = cfg.Analyses["scale"].Metrics[:metricsKept]
	}
	prov, err := synthetic.New(synthetic.Config{Seed: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	st := benchStore(b)
	seedEnded(b, st, stored)
	d := &scaleDaemon{store: st, sched: analysis.NewScheduler(analysis.Options{Store: st})}
	d.sched.SetEnv(&analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{"sim": prov}})
	if err := d.sched.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	d.srv = httptest.NewServer(apiv1.New(apiv1.Options{Reader: d.sched, Registrar: d.sched, Operator: d.sched}))
	t0 := time.Now()
	for j := 0; j < n; j++ {
		c, err := d.sched.Register(context.Background(), analysis.Registration{
			Name: fmt.Sprintf("svc-%d", j), Analysis: "scale",
			Baseline: map[string]string{"track": "baseline"}, Canary: map[string]string{"track": "canary"},
			Vars:  map[string]string{"app": fmt.Sprintf("svc-%d", j)},
			Start: t0.Add(time.Duration(j) * 10 * time.Second / time.Duration(n)),
		})
		if err != nil {
			b.Fatal(err)
		}
		d.ids = append(d.ids, c.ID)
	}
	return d
}

// benchStore is the daemon benchmarks' store: a bbolt file, or with
// CANARYD_BENCH_STORAGE=postgres a database on a private PostgreSQL cluster (pgtest).
func benchStore(b *testing.B) analysis.Store {
	b.Helper()
	if os.Getenv("CANARYD_BENCH_STORAGE") == "postgres" {
		st, err := pgstore.Open(context.Background(), pgtest.Database(b), pgstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "c.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// seedEnded writes n ended canaries shaped like the registrations of the load test,
// created over the last 20 days, without syncing each commit (the figures are about
// reading them).
func seedEnded(b *testing.B, st analysis.Store, n int) {
	b.Helper()
	if n == 0 {
		return
	}
	if bs, ok := st.(*boltstore.Store); ok {
		bs.DB().NoSync = true
		defer func() { bs.DB().NoSync = false; _ = bs.DB().Sync() }()
	}
	now := time.Now()
	for j := 0; j < n; j++ {
		created := now.Add(-20 * 24 * time.Hour).Add(time.Duration(j) * 20 * 24 * time.Hour / time.Duration(n))
		ended := created.Add(30 * time.Minute)
		score := 100.0
		c := &analysis.Canary{
			ID: fmt.Sprintf("seed%012d", j), Name: fmt.Sprintf("svc-%d v1.%d.0", j%300, j), Analysis: "scale",
			AnalysisHash: "seeded", Baseline: map[string]string{"track": "baseline"}, Canary: map[string]string{"track": "canary"},
			Vars: map[string]string{"app": fmt.Sprintf("svc-%d", j%300)}, Start: created, Lifetime: 30 * time.Minute,
			Interval: 10 * time.Second, Warmup: 10 * time.Second, Intervals: 180, NextIndex: 181,
			Status: analysis.StatusPass, Reason: "lifetime reached: the last interval scored 100 (pass at 95)",
			Score: &score, Verdict: "pass", CreatedAt: created, UpdatedAt: ended, EndedAt: &ended,
		}
		if err := st.Create(context.Background(), c, []byte("seeded")); err != nil {
			b.Fatal(err)
		}
	}
}

func (d *scaleDaemon) stop() {
	d.srv.Close()
	d.sched.Stop(context.Background())
	d.store.Close()
}

// BenchmarkDaemonScale runs the daemon's scheduler, store and HTTP API in this process
// with 1,000 running canaries × 10 metrics judged every 10 s on the synthetic provider,
// while 200 pollers each GET a random canary once a second over loopback HTTP. It
// reports the scheduling lag (judged-at minus interval end, from the store), the API's
// latency and the process's RSS. One op is the whole run (CANARYD_SCALE_DURATION,
// default 90 s): use -benchtime=1x.
func BenchmarkDaemonScale(b *testing.B) {
	const canaries, pollers = 1000, 200
	duration := envDuration("CANARYD_SCALE_DURATION", 90*time.Second)
	for i := 0; i < b.N; i++ {
		rssStart := rssKiB()
		d := startScaleDaemon(b, scaleConfig(), 0, canaries)
		st, srv, ids := d.store, d.srv, d.ids

		var mu sync.Mutex
		var apiLat []time.Duration
		apiErrs := 0
		ctx, cancel := context.WithTimeout(context.Background(), duration)
		var wg sync.WaitGroup
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: pollers}}
		for p := 0; p < pollers; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(p), 7))
				// Pollers are not in step: each starts at its own moment within the second.
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Duration(rng.Int64N(int64(time.Second)))):
				}
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					start := time.Now()
					resp, err := client.Get(srv.URL + "/api/v1/canaries/" + ids[rng.IntN(len(ids))])
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
					lat := time.Since(start)
					mu.Lock()
					if err != nil {
						apiErrs++
					} else {
						apiLat = append(apiLat, lat)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		cancel()
		rssEnd := rssKiB()
		d.srv.Close()
		d.sched.Stop(context.Background())

		var lags []time.Duration
		for _, id := range ids {
			rs, err := st.Intervals(context.Background(), id)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range rs {
				lags = append(lags, r.JudgedAt.Sub(r.End))
			}
		}
		st.Close()
		slices.Sort(lags)
		slices.Sort(apiLat)
		b.ReportMetric(float64(len(lags)), "intervals")
		b.ReportMetric(float64(quantile(lags, 0.5).Milliseconds()), "lag_p50_ms")
		b.ReportMetric(float64(quantile(lags, 0.99).Milliseconds()), "lag_p99_ms")
		b.ReportMetric(float64(quantile(apiLat, 0.5).Microseconds())/1000, "api_p50_ms")
		b.ReportMetric(float64(quantile(apiLat, 0.99).Microseconds())/1000, "api_p99_ms")
		b.ReportMetric(float64(apiErrs), "api_errors")
		b.ReportMetric(float64(rssStart)/1024, "rss_start_MiB")
		b.ReportMetric(float64(rssEnd)/1024, "rss_end_MiB")
	}
}

// BenchmarkAPILoad is issue 8's load and soak: 1,000 running canaries (5 metrics, 10 s
// interval) while an open-loop generator sends 500 requests/s to the HTTP API — 85% polls
// of one canary, 2% lists of the running ones, 6.5% registrations and 6.5% aborts (so
// about 1,000 keep running) — for CANARYD_LOAD_DURATION (default 5m). Latency is
// measured from when each request was due, so a stalled server cannot hide its backlog.
// One op is the whole run: use -benchtime=1x.
//
// Issue 13 adds CANARYD_LOAD_STORED (ended canaries in the store before the run, default
// 0) and CANARYD_LOAD_LISTERS (clients that GET the first page of the whole list, 100
// canaries, back to back through the run, default 0), and reports the peak RSS sampled
// every 50 ms.
func BenchmarkAPILoad(b *testing.B) {
	const canaries, rate = 1000, 500
	duration := envDuration("CANARYD_LOAD_DURATION", 5*time.Minute)
	stored, _ := strconv.Atoi(os.Getenv("CANARYD_LOAD_STORED"))
	listers, _ := strconv.Atoi(os.Getenv("CANARYD_LOAD_LISTERS"))
	// Each lister's pages per second; 0 sends them back to back (a closed loop, the
	// most memory pressure), otherwise on a schedule, latency counted from when due.
	listRate, _ := strconv.ParseFloat(os.Getenv("CANARYD_LOAD_LIST_RATE"), 64)
	for i := 0; i < b.N; i++ {
		d := startScaleDaemonStored(b, strings.Replace(scaleConfig(), "lifetime: 30m", "lifetime: 1h", 1), 5, canaries, stored)
		sched, srv := d.sched, d.srv
		var idMu sync.Mutex
		ids := d.ids
		// running is a queue of the canaries still running: aborts take the oldest and
		// registrations join the end, so about 1,000 keep running through the run.
		running := append([]string(nil), d.ids...)
		interval := time.Second / rate
		n := int(duration / interval)
		type sample struct {
			kind string
			lat  time.Duration
			err  bool
		}
		// The generator's own records and ids are allocated up front, so that the heap
		// measured at the end grows only with what the daemon holds.
		got := make([]sample, 0, n)
		ids = slices.Grow(ids, n)
		running = slices.Grow(running, n)
		runtime.GC()
		rssStart, anonStart, heapStart := rssKiB(), anonKiB(), liveHeap()
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
		samples := make(chan sample, 4096)
		collected := make(chan struct{})
		go func() {
			for s := range samples {
				got = append(got, s)
			}
			close(collected)
		}()
		rng := rand.New(rand.NewPCG(1, 2))
		var wg sync.WaitGroup
		sem := make(chan struct{}, 512)
		stopSide := make(chan struct{})
		var sideWG sync.WaitGroup
		var peakKiB atomic.Int64
		sideWG.Add(1)
		go func() {
			defer sideWG.Done()
			for {
				if r := rssKiB(); r > peakKiB.Load() {
					peakKiB.Store(r)
				}
				select {
				case <-stopSide:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
		for l := 0; l < listers; l++ {
			sideWG.Add(1)
			go func() {
				defer sideWG.Done()
				next := time.Now().Add(time.Duration(l) * time.Second / time.Duration(max(1, listers)))
				for {
					t0 := time.Now()
					if listRate > 0 {
						t0 = next
						next = next.Add(time.Duration(float64(time.Second) / listRate))
					}
					select {
					case <-stopSide:
						return
					case <-time.After(time.Until(t0)):
					}
					resp, err := client.Get(srv.URL + "/api/v1/canaries?limit=100")
					failed := err != nil
					if err == nil {
						var page struct {
							Canaries []json.RawMessage `json:"canaries"`
						}
						failed = json.NewDecoder(resp.Body).Decode(&page) != nil || len(page.Canaries) != 100 || resp.StatusCode != 200
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					samples <- sample{kind: "page100", lat: time.Since(t0), err: failed}
				}
			}()
		}
		start := time.Now()
		seq := 0
		for k := 0; k < n; k++ {
			due := start.Add(time.Duration(k) * interval)
			time.Sleep(time.Until(due))
			r := rng.Float64()
			idMu.Lock()
			target := ids[rng.IntN(len(ids))]
			if r >= 0.935 && len(running) > 0 {
				target, running = running[0], running[1:]
			}
			idMu.Unlock()
			seq++
			name := seq
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				var req *http.Request
				kind := "get"
				switch {
				case r < 0.85:
					req, _ = http.NewRequest("GET", srv.URL+"/api/v1/canaries/"+target, nil)
				case r < 0.87:
					kind = "list"
					req, _ = http.NewRequest("GET", srv.URL+"/api/v1/canaries?status=running", nil)
				case r < 0.935:
					kind = "register"
					body := fmt.Sprintf(`{"name":"load-%d","analysis":"scale","baseline":{"track":"baseline"},"canary":{"track":"canary"},"vars":{"app":"load-%d"}}`, name, name)
					req, _ = http.NewRequest("POST", srv.URL+"/api/v1/canaries", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
				default:
					kind = "abort"
					req, _ = http.NewRequest("POST", srv.URL+"/api/v1/canaries/"+target+"/abort?actuate=false", nil)
				}
				resp, err := client.Do(req)
				failed := err != nil
				if err == nil {
					var v struct {
						ID string `json:"id"`
					}
					dec := json.NewDecoder(resp.Body)
					if kind == "register" {
						_ = dec.Decode(&v)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok := resp.StatusCode/100 == 2
					failed = !ok
					if kind == "register" && v.ID != "" {
						idMu.Lock()
						ids = append(ids, v.ID)
						running = append(running, v.ID)
						idMu.Unlock()
					}
				}
				samples <- sample{kind: kind, lat: time.Since(due), err: failed}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(stopSide)
		sideWG.Wait()
		close(samples)
		<-collected
		runtime.GC()
		rssEnd, anonEnd, heapEnd := rssKiB(), anonKiB(), liveHeap()
		stillRunning, _ := sched.List(context.Background(), analysis.StatusRunning)
		d.stop()

		var lats []time.Duration
		byKind := map[string][]time.Duration{}
		errs := 0
		for _, s := range got {
			byKind[s.kind] = append(byKind[s.kind], s.lat)
			if s.err {
				errs++
			}
			if s.kind == "page100" {
				continue // closed loop: not part of the open-loop rate's latency
			}
			lats = append(lats, s.lat)
		}
		slices.Sort(lats)
		for kind, ls := range byKind {
			slices.Sort(ls)
			b.ReportMetric(float64(quantile(ls, 0.99).Microseconds())/1000, kind+"_p99_ms")
		}
		b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "req/s")
		if ls := byKind["page100"]; len(ls) > 0 {
			b.ReportMetric(float64(len(ls))/elapsed.Seconds(), "page100/s")
			b.ReportMetric(float64(quantile(ls, 0.5).Microseconds())/1000, "page100_p50_ms")
		}
		b.ReportMetric(float64(peakKiB.Load())/1024, "rss_peak_MiB")
		b.ReportMetric(float64(quantile(lats, 0.5).Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(quantile(lats, 0.99).Microseconds())/1000, "p99_ms")
		b.ReportMetric(float64(lats[len(lats)-1].Microseconds())/1000, "max_ms")
		b.ReportMetric(float64(errs), "errors")
		b.ReportMetric(float64(len(stillRunning)), "running_at_end")
		b.ReportMetric(float64(anonStart)/1024, "anon_start_MiB")
		b.ReportMetric(float64(anonEnd)/1024, "anon_end_MiB")
		b.ReportMetric(float64(heapStart)/(1<<20), "heap_start_MiB")
		b.ReportMetric(float64(heapEnd)/(1<<20), "heap_end_MiB")
		b.ReportMetric(float64(rssStart)/1024, "rss_start_MiB")
		b.ReportMetric(float64(rssEnd)/1024, "rss_end_MiB")
	}
}

// BenchmarkListPage is the cost of one GET /api/v1/canaries page of 100 (the default)
// through the API handler, without the network, on a store holding 1,000 or 35,000 ended
// canaries: the same, since a page reads the list index and 100 canaries, whatever the
// store holds.
func BenchmarkListPage(b *testing.B) {
	for _, stored := range []int{1000, 35000} {
		b.Run(fmt.Sprintf("stored=%d", stored), func(b *testing.B) {
			st, err := boltstore.Open(filepath.Join(b.TempDir(), "c.db"), time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			seedEnded(b, st, stored)
			sched := analysis.NewScheduler(analysis.Options{Store: st})
			h := apiv1.New(apiv1.Options{Reader: sched, Registrar: sched, Operator: sched})
			for _, q := range []string{"", "?status=pass", "?status=running"} {
				b.Run("query="+q, func(b *testing.B) {
					req := httptest.NewRequest("GET", "/api/v1/canaries"+q, nil)
					b.ReportAllocs()
					var bytes int
					for b.Loop() {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, req)
						if rec.Code != 200 {
							b.Fatalf("status %d", rec.Code)
						}
						bytes = rec.Body.Len()
					}
					b.ReportMetric(float64(bytes), "bytes/page")
				})
			}
		})
	}
}
