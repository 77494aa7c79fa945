package analysis

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/judge"
)

// Status is where a canary is in its life. Every status but running is final.
type Status string

const (
	StatusRunning  Status = "running"
	StatusPass     Status = "pass"
	StatusMarginal Status = "marginal"
	StatusFail     Status = "fail"
	StatusAborted  Status = "aborted"
	StatusError    Status = "error"
)

// Statuses lists every status, running first.
var Statuses = []Status{StatusRunning, StatusPass, StatusMarginal, StatusFail, StatusAborted, StatusError}

// Final reports whether a canary in this status is over.
func (s Status) Final() bool { return s != StatusRunning }

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Canary is a registered canary and its current state, as stored.
type Canary struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Analysis string            `json:"analysis"`
	Baseline map[string]string `json:"baseline"`
	Canary   map[string]string `json:"canary"`
	Vars     map[string]string `json:"vars,omitempty"`
	DryRun   bool              `json:"dry_run,omitempty"`
	// Key is the caller's identity for the registration (Registration.Key), "" for none.
	// At most one stored canary holds a key; it never changes.
	Key string `json:"key,omitempty"`
	// Asked is what a keyed registration gave for the fields stored resolved (lifetime,
	// interval and start get defaults), so that a repeat is compared with the request it
	// repeats rather than with those defaults. Nil without a key.
	Asked *Asked `json:"asked,omitempty"`
	// AnalysisHash names the analysis snapshot (Store.Analysis) the canary is judged by,
	// so that a reload never changes a running canary's rules.
	AnalysisHash string        `json:"analysis_hash"`
	Start        time.Time     `json:"start"`
	Lifetime     time.Duration `json:"lifetime"`
	Interval     time.Duration `json:"interval"`
	Warmup       time.Duration `json:"warmup"`
	// Thresholds replace the analysis' score thresholds for this canary when not nil
	// (Registration.Thresholds).
	Thresholds *Thresholds `json:"thresholds,omitempty"`
	// Intervals is how many intervals the lifetime holds; the last one ends at
	// Start+Lifetime.
	Intervals int `json:"intervals"`
	// NextIndex is the next interval to judge (1-based); Intervals+1 once all are judged.
	NextIndex int `json:"next_index"`
	// ConsecutiveErrors counts the latest intervals in a row with a metric in error.
	ConsecutiveErrors int `json:"consecutive_errors,omitempty"`
	// Sequential holds the evidence of each sequential metric (counts, histogram) by
	// metric name, as of the last recorded interval: judge.CountState or
	// judge.HistogramState as JSON. It is written in the same transaction as the
	// interval, so a restart resumes it exactly (never reset, never counted twice), and
	// dropped when the canary ends (the intervals keep each result).
	Sequential map[string]json.RawMessage `json:"sequential,omitempty"`
	// Preflight are the actuators' preflight checks run at registration, in the order
	// of the analysis' lists; a failed one is a warning on the canary (the analysis'
	// preflight: warn), or there is no canary (refuse).
	Preflight []PreflightResult `json:"preflight,omitempty"`

	Status Status `json:"status"`
	// Reason says why the canary has its status, in a sentence.
	Reason string `json:"reason,omitempty"`
	// Score and Verdict are the last judged interval's (Score is nil before the first).
	Score   *float64      `json:"score,omitempty"`
	Verdict judge.Verdict `json:"verdict,omitempty"`

	// FirstFailAt is when an interval first judged the canary fail (the loop's time to
	// detect counts to it).
	FirstFailAt *time.Time `json:"first_fail_at,omitempty"`
	// Recovery is the recovery watch of a canary that ended fail or aborted under an
	// analysis with a recovery block (nil otherwise). Status stays fail or aborted.
	Recovery *Recovery `json:"recovery,omitempty"`

	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
}

// Thresholds are a canary's own score thresholds: >= Pass passes, >= Marginal is
// marginal, below fails.
type Thresholds struct {
	Pass     float64 `json:"pass"`
	Marginal float64 `json:"marginal"`
}

// ScoreThresholds are the thresholds c is judged by: the analysis', with c's own pass
// and marginal when it has them.
func (c *Canary) ScoreThresholds(analysis judge.Thresholds) judge.Thresholds {
	if c.Thresholds != nil {
		analysis.Pass, analysis.Marginal = c.Thresholds.Pass, c.Thresholds.Marginal
	}
	return analysis
}

// Asked is what a registration gave for lifetime, interval, start and end: zero for a
// field left out.
type Asked struct {
	Lifetime time.Duration `json:"lifetime,omitempty"`
	Interval time.Duration `json:"interval,omitempty"`
	Start    time.Time     `json:"start,omitzero"`
	End      time.Time     `json:"end,omitzero"`
}

// Ended is when a final canary ended: EndedAt, or UpdatedAt for a record without it.
// Retention counts from it.
func (c *Canary) Ended() time.Time {
	if c.EndedAt != nil {
		return *c.EndedAt
	}
	return c.UpdatedAt
}

// IntervalEnd is when interval i (1-based) of c ends: every Interval after Start, the last
// one cut at Start+Lifetime.
func (c *Canary) IntervalEnd(i int) time.Time {
	end := c.Start.Add(time.Duration(i) * c.Interval)
	if last := c.Start.Add(c.Lifetime); i >= c.Intervals || end.After(last) {
		return last
	}
	return end
}

// FirstJudged is the index of c's first judged interval: intervals that end inside the
// warmup have nothing to judge.
func (c *Canary) FirstJudged() int {
	i := 1
	for i < c.Intervals && !c.IntervalEnd(i).After(c.Start.Add(c.Warmup)) {
		i++
	}
	return i
}

// Looks is how many intervals judge c, each re-testing the window since its warmup.
func (c *Canary) Looks() int { return max(c.Intervals-c.FirstJudged()+1, 1) }

// IntervalCount is how many intervals fit in lifetime: ceil(lifetime / interval).
func IntervalCount(lifetime, interval time.Duration) int {
	if interval <= 0 {
		return 0
	}
	return int((lifetime + interval - 1) / interval)
}

// IntervalResult is one judged interval of a canary. (CanaryID, Index) is its key: an
// interval is recorded once, whatever happens around it.
type IntervalResult struct {
	CanaryID string `json:"canary_id"`
	Index    int    `json:"index"`
	// Start and End are the queried window: from Start+warmup to the interval's end.
	Start    time.Time            `json:"start"`
	End      time.Time            `json:"end"`
	JudgedAt time.Time            `json:"judged_at"`
	Score    judge.ScoreResult    `json:"score"`
	Metrics  []judge.MetricResult `json:"metrics"`
	// Points are, per metric, the points this interval added to the canary's record: only
	// what is after the previous interval's end, so the record grows with the series and
	// not with its square.
	Points []MetricPoints `json:"points,omitempty"`
}

// MetricPoints are one metric's new points for both cohorts, each cohort's streams
// merged into one value per timestamp (their mean) and non-finite values left out.
type MetricPoints struct {
	Metric   string      `json:"metric"`
	Baseline []TimeValue `json:"baseline"`
	Canary   []TimeValue `json:"canary"`
	// Whole: the points are exactly what the judge read of these steps (nothing merged
	// away that it reads apart, no non-finite value left out), so a later interval reads
	// them from the record instead of querying those steps again.
	Whole bool `json:"whole,omitempty"`
}

// TimeValue is a point as stored: Unix milliseconds and a finite value, encoded as a
// two-element array to keep the record small.
type TimeValue [2]float64

// Series joins the points of every interval of a canary, per metric in the analysis'
// order of first appearance: the whole series each cohort has shown so far.
func Series(results []IntervalResult) []MetricPoints {
	var out []MetricPoints
	idx := map[string]int{}
	for _, r := range results {
		for _, mp := range r.Points {
			i, ok := idx[mp.Metric]
			if !ok {
				i = len(out)
				idx[mp.Metric] = i
				out = append(out, MetricPoints{Metric: mp.Metric})
			}
			out[i].Baseline = append(out[i].Baseline, mp.Baseline...)
			out[i].Canary = append(out[i].Canary, mp.Canary...)
		}
	}
	return out
}

// ActionKind is what ended a canary: the scheduler's verdict, or a human's abort or
// promotion. The guard's audit log records it as its entry's kind.
type ActionKind string

const (
	ActionVerdict ActionKind = "verdict"
	ActionAbort   ActionKind = "abort"
	ActionPromote ActionKind = "promote"
)

// Cause is why a canary ended. (The actuators call the analysis list that fires — on_fail,
// on_pass, … — the trigger; a cause is never called that in Go.)
type Cause string

const (
	// CauseLifetime: the last interval was judged; its verdict is the canary's.
	CauseLifetime Cause = "lifetime"
	// CauseCritical: a critical metric failed.
	CauseCritical Cause = "critical"
	// CauseErrors: too many intervals in a row had metrics in error, or the analysis
	// snapshot could not be read.
	CauseErrors Cause = "errors"
	// CauseNoData: the lifetime ended with no metric to score.
	CauseNoData Cause = "nodata"
	// CauseUnjudged: the lifetime ended with a critical metric that could not be judged.
	CauseUnjudged Cause = "unjudged"
	// CauseAPI: a human aborted or promoted the canary.
	CauseAPI Cause = "api"
)

// Action is something done about a canary: its verdict, an abort, a promotion. Actuators
// (a later layer) fire from these; until then they are the audit trail.
type Action struct {
	CanaryID string     `json:"canary_id"`
	Seq      uint64     `json:"seq"`
	Time     time.Time  `json:"time"`
	Kind     ActionKind `json:"kind"`
	Status   Status     `json:"status"`
	// Cause says why: lifetime, critical, errors, nodata, unjudged, api. Stored and
	// served as "trigger", as it always was.
	Cause  Cause  `json:"trigger"`
	Reason string `json:"reason,omitempty"`
	// Actuate is false when the actuators must not fire (dry run, ?actuate=false).
	Actuate bool `json:"actuate"`
}

// Mutation changes a canary inside a store transaction and returns the actions to record
// with the change. It may run more than once (a store may retry a transaction), so it
// must depend only on the canary it is given. Returning an error leaves everything as it
// was.
type Mutation func(c *Canary) ([]Action, error)

// Errors a Store returns.
var (
	ErrNotFound       = errors.New("canary not found")
	ErrIntervalExists = errors.New("interval already recorded")
	ErrExists         = errors.New("canary already exists")
	// ErrKeyExists is Create's answer for a canary whose Key another stored canary holds.
	ErrKeyExists = errors.New("a canary with this key already exists")
)

// SummaryStore is optionally implemented by a Store that can read a canary's intervals
// without their points, which the API's JSON does not show: decoding them is most of the
// cost of reading a long-running canary.
type SummaryStore interface {
	IntervalSummaries(ctx context.Context, id string) ([]IntervalResult, error)
}

// Cursor is a canary's place in the list order: newest first, by creation time (Unix
// nanoseconds, clamped to what int64 holds) and then by id, both descending.
type Cursor struct {
	Created int64
	ID      string
}

// CursorOf is c's place in the list order.
func CursorOf(c *Canary) Cursor { return Cursor{Created: CreatedNanos(c.CreatedAt), ID: c.ID} }

// CreatedNanos is t in Unix nanoseconds, clamped to int64 (UnixNano is undefined outside
// the years 1678..2262), so that every time has a place in the order.
func CreatedNanos(t time.Time) int64 {
	switch {
	case t.Year() < 1678:
		return math.MinInt64
	case t.Year() > 2261:
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Before reports whether a comes before b in the list order (a is newer).
func (a Cursor) Before(b Cursor) bool {
	if a.Created != b.Created {
		return a.Created > b.Created
	}
	return a.ID > b.ID
}

// Encode makes the opaque cursor of the API and the pages (next_cursor).
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.Created, 10) + ":" + c.ID))
}

// ParseCursor reads a cursor made by Encode; ok is false for anything else.
func ParseCursor(s string) (c Cursor, ok bool) {
	if len(s) > 200 {
		return Cursor{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, false
	}
	ns, id, found := strings.Cut(string(b), ":")
	if !found || id == "" || strings.ContainsFunc(id, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) {
		return Cursor{}, false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return Cursor{}, false
	}
	return Cursor{Created: n, ID: id}, true
}

// ListQuery asks for a page of the list.
type ListQuery struct {
	// Status keeps only canaries with this status ("" for all).
	Status Status
	// Limit is the most canaries in the page (> 0).
	Limit int
	// After starts the page after this place (nil: at the newest canary).
	After *Cursor
	// Key keeps only the canary with this key ("" for all): a page of at most one.
	Key string
}

// KeyPage is the page of q for the one canary that holds q.Key (nil for none): a store
// finds it by its key index, then applies the rest of q here.
func KeyPage(c *Canary, q ListQuery) Page {
	if c == nil || (q.Status != "" && c.Status != q.Status) || (q.After != nil && !q.After.Before(CursorOf(c))) {
		return Page{}
	}
	return Page{Canaries: []*Canary{c}}
}

// Page is a page of the list, newest first. Next is where the next page starts, nil when
// this one is the last.
type Page struct {
	Canaries []*Canary
	Next     *Cursor
}

// Store persists canaries, their interval results and their actions. It is the only
// state the scheduler keeps across restarts, and is small on purpose: a shared SQL store
// that lets several replicas split the canaries implements the same methods.
type Store interface {
	// Create stores a new canary and the analysis snapshot it is judged by. It returns
	// ErrExists for a stored id, and ErrKeyExists, storing nothing, when c.Key is not ""
	// and a stored canary holds it: of concurrent Creates with one key, one wins.
	Create(ctx context.Context, c *Canary, analysisSource []byte) error
	// Get returns a canary, or ErrNotFound.
	Get(ctx context.Context, id string) (*Canary, error)
	// GetByKey returns the canary that holds a key, or ErrNotFound. A key is bound while
	// its canary is stored: DeleteEnded frees it with the canary.
	GetByKey(ctx context.Context, key string) (*Canary, error)
	// List returns the canaries with the given status (all when status is ""), oldest
	// first.
	List(ctx context.Context, status Status) ([]*Canary, error)
	// ListPage returns a page of the canaries with q.Status (and q.Key), newest first,
	// reading no more of the store than the page needs (every canary is never loaded at
	// once).
	ListPage(ctx context.Context, q ListQuery) (Page, error)
	// CountByStatus counts the stored canaries by status.
	CountByStatus(ctx context.Context) (map[Status]int, error)
	// DeleteEnded deletes at most max canaries whose status is final and that ended
	// before the given time (EndedAt, or UpdatedAt without one), oldest first, with their
	// intervals and actions, and returns them (as they were, without intervals).
	DeleteEnded(ctx context.Context, before time.Time, max int) ([]*Canary, error)
	// Update applies fn to the stored canary and records its actions, atomically.
	Update(ctx context.Context, id string, fn Mutation) (*Canary, error)
	// RecordInterval stores r and applies fn to its canary, atomically. It returns
	// ErrIntervalExists, changing nothing, when (r.CanaryID, r.Index) is already stored.
	RecordInterval(ctx context.Context, r *IntervalResult, fn Mutation) (*Canary, error)
	// Intervals returns a canary's recorded intervals in index order.
	Intervals(ctx context.Context, id string) ([]IntervalResult, error)
	// Actions returns a canary's actions in the order they were recorded.
	Actions(ctx context.Context, id string) ([]Action, error)
	// Analysis returns an analysis snapshot by its hash.
	Analysis(ctx context.Context, hash string) ([]byte, error)
	Close() error
}
