package datadog

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pacer spreads one provider's requests over the budget Datadog's rate-limit headers
// announce, as documented at https://docs.datadoghq.com/api/latest/rate-limits:
//
//	X-RateLimit-Limit      number of requests allowed in a time period
//	X-RateLimit-Period     length of time in seconds for resets (calendar aligned)
//	X-RateLimit-Remaining  number of allowed requests left in the current time period
//	X-RateLimit-Reset      time in seconds until the next reset
//
// Each answer (a 429 too) updates the budget; each request takes the next slot: at once
// while more than a tenth of the period's limit is left (a burst of due intervals is
// answered now), then the rest spread evenly until the reset; none is sent while none
// is left, and after the reset the period's limit is assumed. Before any header it lets
// everything through. One pacer serves all the canaries of a provider, so the
// organisation's budget is shared, not raced for.
type pacer struct {
	mu        sync.Mutex
	known     bool
	limit     int           // per period, 0 when not announced
	period    time.Duration // 0 when not announced
	remaining int
	resetAt   time.Time
	next      time.Time // the earliest start of the next request
}

// rateHeaders is what one answer said of the rate limit; ok is false without a usable
// Remaining and Reset.
type rateHeaders struct {
	limit, remaining int
	period, reset    time.Duration
	ok               bool
}

func parseRateHeaders(h http.Header) rateHeaders {
	num := func(name string) (int64, bool) {
		n, err := strconv.ParseInt(strings.TrimSpace(h.Get(name)), 10, 64)
		return n, err == nil && n >= 0 && n <= 1<<31
	}
	var r rateHeaders
	rem, okRem := num("X-RateLimit-Remaining")
	reset, okReset := num("X-RateLimit-Reset")
	if !okRem || !okReset || reset > int64(24*time.Hour/time.Second) {
		return r
	}
	r.remaining, r.reset, r.ok = int(rem), time.Duration(reset)*time.Second, true
	if l, ok := num("X-RateLimit-Limit"); ok {
		r.limit = int(l)
	}
	if p, ok := num("X-RateLimit-Period"); ok && p <= int64(24*time.Hour/time.Second) {
		r.period = time.Duration(p) * time.Second
	}
	return r
}

// observe records what an answer received at now said.
func (p *pacer) observe(r rateHeaders, now time.Time) {
	if !r.ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.known, p.remaining, p.resetAt = true, r.remaining, now.Add(r.reset)
	if r.limit > 0 && r.period > 0 {
		p.limit, p.period = r.limit, r.period
	}
}

// exhausted records a 429 that announced no budget: nothing is sent for wait.
func (p *pacer) exhausted(wait time.Duration, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.known, p.remaining, p.resetAt = true, 0, now.Add(wait)
}

// reserve is when a request wanted at now may start. With take, the slot is the
// request's: the next one starts a spacing later. Without, it only says how long to wait
// (the scheduler's wait before a query, outside the query's timeout).
func (p *pacer) reserve(now time.Time, take bool) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	slot := now
	if !p.known {
		return slot
	}
	if p.next.After(slot) {
		slot = p.next
	}
	if p.remaining <= 0 && slot.Before(p.resetAt) {
		slot = p.resetAt
	}
	if !take {
		return slot // a look changes nothing
	}
	if !slot.Before(p.resetAt) {
		// Past the period the headers described: a new period's budget, if announced.
		if p.limit <= 0 || p.period <= 0 {
			p.known, p.next = false, time.Time{}
			return slot
		}
		if n := slot.Sub(p.resetAt)/p.period + 1; n > 0 {
			p.resetAt = p.resetAt.Add(n * p.period)
		}
		p.remaining = p.limit
	}
	// Above the reserve, a request goes at once: a burst (every canary's interval due
	// together) is answered now while the budget has room for it. The reserve, a tenth
	// of the period's limit, is spread evenly until the reset, so a demand over the
	// budget slows down before it runs out instead of stopping until the reset.
	if p.remaining <= p.limit/10 {
		p.next = slot.Add(p.resetAt.Sub(slot) / time.Duration(p.remaining))
	}
	p.remaining--
	return slot
}
