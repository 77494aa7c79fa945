package benchmarks

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/canaryd/canaryd/metrics"
)

// The provider decode benchmarks share their set-up: an answer recorded from the real
// server through recordThrough (or written in the documented shape), replayed by
// replayAnswer, and measured per point by benchDecode.

// recordThrough serves a pass-through to upstream that keeps the last answer's body in
// *body. The request's body is read whole first, so that it is forwarded with its
// length (wsgiref, graphite-web's server, takes no chunked body).
func recordThrough(b *testing.B, upstream string, body *[]byte) (url string) {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.Path, bytes.NewReader(in))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		*body, _ = io.ReadAll(resp.Body)
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(*body)
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

// replayAnswer serves body as contentType to every request.
func replayAnswer(b *testing.B, contentType string, body []byte) (url string) {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

// benchDecode runs q through p b.N times, each answer points points, and reports the
// nanoseconds, allocations and answer bytes (answerBytes in all) per point.
func benchDecode(b *testing.B, p metrics.Provider, q metrics.Query, points, answerBytes int) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, err := p.Query(ctx, q)
		if err != nil || s.Len() != points {
			b.Fatalf("%d points, %v; want %d", s.Len(), err, points)
		}
	}
	n := float64(points)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/point")
	b.ReportMetric(testing.AllocsPerRun(1, func() { _, _ = p.Query(ctx, q) })/n, "allocs/point")
	b.ReportMetric(float64(answerBytes)/n, "answer-B/point")
}
