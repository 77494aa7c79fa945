package promtest

import (
	"context"
	"net"
	"net/http"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
)

// Base is every exported counter's value at the exporter's start. Starting far from zero
// keeps rate()'s extrapolation from being cut short at the counter's zero, so rate() over
// a Counter is its PerSecond whenever the window holds two samples or more.
const Base = 1e6

// Counter is a series that grows by PerSecond every second.
type Counter struct {
	Name      string
	Labels    map[string]string
	PerSecond float64
}

// Histogram is a classic histogram whose observations arrive at fixed rates: Buckets maps
// each upper bound to the observations per second at or below it (cumulative, as on the
// wire; +Inf is added as CountPerSecond).
type Histogram struct {
	Name           string
	Labels         map[string]string
	Buckets        map[float64]float64
	CountPerSecond float64
	SumPerSecond   float64
}

// Exporter is what ServeExporter exposes.
type Exporter struct {
	Counters   []Counter
	Histograms []Histogram
}

// ServeExporter serves e's series on a loopback /metrics (client_golang's promhttp) and
// returns the host:port to scrape. Every sample carries its own timestamp (the
// millisecond it was computed for), so Prometheus stores points that lie exactly on the
// lines the rates define: assertions on rate() then need no timing slack.
func ServeExporter(t testing.TB, e Exporter) (target string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{e: e, start: time.Now().UnixMilli()})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("promtest: exporter listen: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return l.Addr().String()
}

// collector computes every value at collection time from the elapsed milliseconds.
type collector struct {
	e     Exporter
	start int64 // Unix ms
}

// Describe sends nothing: an unchecked collector, since its series are fixed by the test.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	nowMS := time.Now().UnixMilli()
	now := time.UnixMilli(nowMS)
	elapsed := float64(nowMS-c.start) / 1000
	emit := func(name string, labels map[string]string, v float64) {
		names, values := split(labels)
		d := prometheus.NewDesc(name, "promtest series", names, nil)
		m := prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, values...)
		ch <- prometheus.NewMetricWithTimestamp(now, m)
	}
	for _, ctr := range c.e.Counters {
		emit(ctr.Name, ctr.Labels, Base+ctr.PerSecond*elapsed)
	}
	// Histograms go out as their _bucket, _count and _sum counters: a const histogram
	// would round the bucket counts to integers and blur the known rates.
	for _, h := range c.e.Histograms {
		bounds := make([]float64, 0, len(h.Buckets))
		for le := range h.Buckets {
			bounds = append(bounds, le)
		}
		sort.Float64s(bounds)
		for _, le := range bounds {
			emit(h.Name+"_bucket", with(h.Labels, "le", strconv.FormatFloat(le, 'g', -1, 64)), Base+h.Buckets[le]*elapsed)
		}
		emit(h.Name+"_bucket", with(h.Labels, "le", "+Inf"), Base+h.CountPerSecond*elapsed)
		emit(h.Name+"_count", h.Labels, Base+h.CountPerSecond*elapsed)
		emit(h.Name+"_sum", h.Labels, Base+h.SumPerSecond*elapsed)
	}
}

func split(labels map[string]string) (names, values []string) {
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		values = append(values, labels[k])
	}
	return names, values
}

func with(labels map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for lk, lv := range labels {
		out[lk] = lv
	}
	out[k] = v
	return out
}

// WaitFor polls the instant query promql until it returns at least n series, or fails the
// test after timeout.
func WaitFor(t testing.TB, url, promql string, n int, timeout time.Duration) {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	a := v1.NewAPI(c)
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, _, _, err := a.Query(ctx, promql, time.Now())
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case v.Type() == model.ValVector && len(v.(model.Vector)) >= n:
			return
		default:
			last = v.String()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("promtest: %q did not return %d series within %s; last answer: %s", promql, n, timeout, last)
}
