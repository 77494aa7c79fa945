package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/canaryd/canaryd/analysis/pgstore/pgtest"
)

// Issue 17's chaos test: three canaryd serve processes on one PostgreSQL (scheduler.lease
// 2s, interval 1s, canaries of 6 s), 60 canaries registered through the three in turn (a
// third regressing, their fail webhook on a loopback receiver that counts), three at a
// time between 20 kill -9s of a random replica (seeded: the seed is logged, and
// CANARYD_CHAOS_SEED replays it), each started again at once. Every kill lands while
// canaries run and verdicts are being delivered. The others take its leases, and the new
// one its share back: every canary ends with its verdict (one verdict action each), every
// interval is recorded once and judged once, and every verdict's webhook is delivered
// under one idempotency key, once — twice only for an action a kill interrupted
// mid-attempt, which a survivor resumed under the same key (its recover entry in the
// audit log says so).
func TestReplicasKill9(t *testing.T) {
	const (
		n     = 60
		kills = 20
		lease = 2 * time.Second
	)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CANARYD_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CANARYD_CHAOS_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (CANARYD_CHAOS_SEED=%d replays the kills)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 17))

	url := pgtest.Database(t)
	rc := &receiver{byKey: map[string]int{}, canary: map[string]map[string]bool{}}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	cfgPath, _ := writePGConfigAt(t, t.TempDir(), hook.URL, "")
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	// Started together: they migrate once between them.
	reps := make([]*proc, 3)
	var wg sync.WaitGroup
	for i := range reps {
		wg.Add(1)
		go func() { defer wg.Done(); reps[i] = startServe(t, cfgPath, url) }()
	}
	wg.Wait()
	for i, p := range reps {
		if p == nil {
			t.Fatalf("replica %d did not start", i)
		}
	}
	all := append([]*proc(nil), reps...) // every process, killed ones too

	ids := make([]string, 0, n)
	register := func() {
		i := len(ids)
		track := "good"
		if i%3 == 2 {
			track = "bad"
		}
		var c canaryJSON
		body := map[string]any{
			"name": fmt.Sprintf("svc-%d", i), "analysis": "chaos",
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": track},
			"vars": map[string]string{"app": fmt.Sprintf("svc-%d", i)},
		}
		if code := reps[i%len(reps)].call("POST", "/api/v1/canaries", body, &c); code != http.StatusCreated {
			t.Fatalf("register %d through replica %d: %d", i, i%len(reps), code)
		}
		ids = append(ids, c.ID)
	}

	// Each kill: what the victim held then, for the failover.
	type killed struct {
		at   time.Time
		held []string
	}
	var cuts []killed
	start := time.Now()
	for range kills {
		for range n / kills {
			register()
		}
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		v := rng.IntN(len(reps))
		rows, err := conn.Query(t.Context(), `SELECT canary_id FROM leases WHERE owner = $1`, replicaOf(t, reps[v]))
		if err != nil {
			t.Fatal(err)
		}
		held, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		cuts = append(cuts, killed{time.Now(), held})
		reps[v].kill()
		reps[v] = startServe(t, cfgPath, url) // at once: it takes a share back once the leases move
		all = append(all, reps[v])
	}
	t.Logf("%d kills in %s", kills, time.Since(start).Round(time.Millisecond))

	deadline := time.Now().Add(45 * time.Second)
	for i, id := range ids {
		c := reps[i%len(reps)].waitEnded(id, time.Until(deadline)) // any replica serves every canary
		want := map[bool]string{false: "pass", true: "fail"}[i%3 == 2]
		if c.Status != want {
			t.Errorf("canary %d (%s): %s, want %s: %s", i, id, c.Status, want, c.Reason)
		}
		verdicts := 0
		for _, a := range c.Actions {
			if a.Kind == "verdict" {
				verdicts++
			}
		}
		if verdicts != 1 {
			t.Errorf("canary %d: %d verdicts: %+v", i, verdicts, c.Actions)
		}
		idx := make([]int, 0, len(c.Intervals))
		for _, iv := range c.Intervals {
			idx = append(idx, iv.Index)
		}
		ok := len(idx) > 0 && (want == "fail" || idx[len(idx)-1] == c.Count)
		for j := 1; ok && j < len(idx); j++ {
			ok = idx[j] == idx[j-1]+1
		}
		if !ok {
			t.Errorf("canary %d: intervals %v of %d", i, idx, c.Count)
		}
	}

	// Every verdict's action, succeeded, fired by the safety layer once across replicas.
	type actuation struct{ Key, State, Owner string }
	for i, id := range ids {
		for {
			var out struct{ Actuations []actuation }
			if code := reps[0].call("GET", "/api/v1/canaries/"+id+"/actuations", nil, &out); code != http.StatusOK {
				t.Fatalf("actuations of %s: %d", id, code)
			}
			if len(out.Actuations) > 1 {
				t.Fatalf("canary %d: %d actions planned, want 1: %+v", i, len(out.Actuations), out.Actuations)
			}
			if len(out.Actuations) == 1 && out.Actuations[0].State == "succeeded" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("canary %d: action not done: %+v", i, out.Actuations)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	var twice int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM (SELECT canary_id, idx FROM intervals GROUP BY 1, 2 HAVING count(*) > 1) d`).Scan(&twice); err != nil || twice != 0 {
		t.Errorf("%d intervals recorded twice (%v)", twice, err)
	}
	rows, err := conn.Query(t.Context(), `SELECT doc->>'key' FROM guard_audit WHERE doc->>'kind' = 'recover' AND doc->>'key' <> ''`)
	if err != nil {
		t.Fatal(err)
	}
	resumed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}

	rc.mu.Lock()
	redelivered := 0
	for i, id := range ids {
		if len(rc.canary[id]) != 1 {
			t.Errorf("canary %d: the webhook saw %d idempotency keys, want 1", i, len(rc.canary[id]))
		}
		for k := range rc.canary[id] {
			switch calls := rc.byKey[k]; {
			case calls == 1:
			case calls == 2 && contains(resumed, k):
				redelivered++ // a kill cut the attempt after it was sent; resumed under its key
			default:
				t.Errorf("canary %d: the webhook was called %d times under %s (resumed after a kill: %v)", i, calls, k, contains(resumed, k))
			}
		}
	}
	rc.mu.Unlock()

	// Judged once: no process judged an interval another recorded (the result would be
	// dropped); restarted ones judged some; survivors took leases.
	judging, gained := 0, false
	for i, p := range all {
		l := p.logs.String()
		if d := grepLines(l, "interval result dropped"); d != "" {
			t.Errorf("process %d judged an interval recorded by another:\n%s", i, d)
		}
		if i >= len(reps) && strings.Contains(l, "interval judged") {
			judging++
		}
		gained = gained || strings.Contains(grepLines(l, "leases changed"), `"gained"`)
	}
	if judging == 0 {
		t.Errorf("none of the %d restarted replicas judged anything", kills)
	}
	if !gained {
		t.Errorf("no replica took a lease")
	}
	// Failover, per kill: for the canaries the victim held, the first interval judged
	// after the kill, counted from it (a canary whose taker was killed in turn waits for
	// a second lease; the median says what one kill costs).
	var failovers []time.Duration
	for _, c := range cuts {
		var d time.Duration
		if err := conn.QueryRow(t.Context(), `SELECT coalesce(extract(epoch FROM max(first - $1)), 0) * 1e9 FROM (
			SELECT min((doc->>'judged_at')::timestamptz) AS first FROM intervals
			WHERE canary_id = ANY($2) AND (doc->>'judged_at')::timestamptz > $1 GROUP BY canary_id) f`,
			c.at, c.held).Scan(&d); err != nil {
			t.Fatal(err)
		}
		if d > 0 {
			failovers = append(failovers, d)
		}
	}
	slices.Sort(failovers)
	if len(failovers) == 0 {
		t.Fatalf("no kill cut a canary short")
	}
	median, worst := failovers[len(failovers)/2], failovers[len(failovers)-1]
	if median > lease+time.Second+2*time.Second {
		t.Errorf("the victims' canaries were judged again a median %s after a kill (%v), want within lease (2s) + a renewal + an interval", median, failovers)
	}
	t.Logf("3 replicas, %d canaries, %d kill -9s in %s: failover median %s, worst %s over %d kills that held canaries (lease 2s, interval 1s), %d deliveries repeated under their key after a kill",
		n, kills, time.Since(start).Round(time.Millisecond), median.Round(time.Millisecond), worst.Round(time.Millisecond), len(failovers), redelivered)
}

// replicaOf is the replica name a serve process logged at start.
func replicaOf(t *testing.T, p *proc) string {
	t.Helper()
	m := regexp.MustCompile(`"replica":"([^"]+)"`).FindStringSubmatch(grepLines(p.logs.String(), "canaries split by leases"))
	if m == nil {
		t.Fatalf("no replica name in the log:\n%s", p.logs.String())
	}
	return m[1]
}
func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// server.max_running_per_analysis holds across replicas: canaries registered through
// one count against a registration through another (once a lease renewal has read them).
func TestReplicasShareRunningLimit(t *testing.T) {
	url := pgtest.Database(t)
	dir := t.TempDir()
	cfgPath, _ := writePGConfigAt(t, dir, "http://127.0.0.1:1/hook", "")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(b), "server: {min_interval: 1s,", "server: {min_interval: 1s, max_running_per_analysis: 3,", 1)
	src = strings.Replace(src, "lifetime: 6s", "lifetime: 30s", 1)
	if err := os.WriteFile(cfgPath, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	a, bb := startServe(t, cfgPath, url), startServe(t, cfgPath, url)
	register := func(p *proc, i int) int {
		body := map[string]any{
			"name": fmt.Sprintf("svc-%d", i), "analysis": "chaos",
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": "good"},
			"vars": map[string]string{"app": fmt.Sprintf("svc-%d", i)},
		}
		return p.call("POST", "/api/v1/canaries", body, nil)
	}
	for i, p := range []*proc{a, a, bb} {
		if code := register(p, i); code != http.StatusCreated {
			t.Fatalf("registration %d: %d", i, code)
		}
	}
	time.Sleep(1500 * time.Millisecond) // more than a renewal (every lease/3)
	for name, p := range map[string]*proc{"a": a, "b": bb} {
		if code := register(p, 9); code != http.StatusTooManyRequests {
			t.Errorf("a fourth running canary through %s: %d, want 429", name, code)
		}
	}
}
