package ui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
)

// BenchmarkReport renders a failed canary's report: 4 metrics (one of each judge and a
// second Mann-Whitney) at 15 s points, judged every minute; 30 intervals is the design's
// golden-signals canary, 360 a six-hour one.
func BenchmarkReport(b *testing.B) {
	_, a := loadAnalysis(b)
	for _, n := range []int{30, 360} {
		b.Run(fmt.Sprintf("intervals=%d", n), func(b *testing.B) {
			a := *a
			a.Lifetime = time.Duration(n) * a.Interval
			d := fixtureDetail(&a, n, true, true)
			h := New(withAnalysis{fakeSource: newFakeSource(d), a: &a}, Options{Now: func() time.Time { return d.UpdatedAt }})
			req := httptest.NewRequest(http.MethodGet, "/canaries/"+d.ID, nil)
			size := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}

// BenchmarkList renders the list page of 500 canaries.
func BenchmarkList(b *testing.B) {
	_, a := loadAnalysis(b)
	src := &fakeSource{details: map[string]*analysis.Detail{}}
	for i := range 500 {
		d := fixtureDetail(a, 0, false, false)
		c := *d.Canary
		c.ID, c.CreatedAt = fmt.Sprintf("canary%010d", i), c.CreatedAt.Add(time.Duration(i)*time.Minute)
		src.details[c.ID] = &analysis.Detail{Canary: &c}
		src.order = append(src.order, c.ID)
	}
	h := New(src, Options{Now: func() time.Time { return fixtureStart.Add(time.Hour) }})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
