package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/canaryd/canaryd/analysis/pgstore/pgtest"
)

// Issue 17's chaos test: three canaryd serve processes on one PostgreSQL (scheduler.lease
// 2s), 30 canaries registered through all three in turn (a third regressing), and one
// replica killed with SIGKILL while they run and started again a second later. The
// other two take its leases, and the new one its share back: every canary
// ends with its verdict (one verdict action each), every interval is recorded once and
// judged once, and every verdict's webhook is delivered under one idempotency key, once —
// twice only for an action the kill interrupted mid-attempt, which a survivor resumed
// under the same key (its recover entry in the audit log says so).
func TestReplicasKill9(t *testing.T) {
	url := pgtest.Database(t)
	rc := &receiver{byKey: map[string]int{}, canary: map[string]map[string]bool{}}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	cfgPath, _ := writePGConfigAt(t, t.TempDir(), hook.URL, "")

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

	const n = 30
	ids := make([]string, n)
	by := make([]int, n) // the replica each was registered through
	for i := range n {
		track := "good"
		if i%3 == 2 {
			track = "bad"
		}
		by[i] = i % len(reps)
		var c canaryJSON
		body := map[string]any{
			"name": fmt.Sprintf("svc-%d", i), "analysis": "chaos",
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": track},
			"vars": map[string]string{"app": fmt.Sprintf("svc-%d", i)},
		}
		if code := reps[by[i]].call("POST", "/api/v1/canaries", body, &c); code != http.StatusCreated {
			t.Fatalf("register %d through replica %d: %d", i, by[i], code)
		}
		ids[i] = c.ID
	}

	// Mid-run: the canaries live 6 s, the first intervals are judged.
	const victim = 1
	time.Sleep(2500 * time.Millisecond)
	killedAt := time.Now()
	reps[victim].kill()
	victimLogs := reps[victim].logs.String()
	// It comes back a second later as a new replica and takes its share again (the other
	// two free what they hold over theirs).
	time.Sleep(time.Second)
	reborn := startServe(t, cfgPath, url)

	deadline := time.Now().Add(45 * time.Second)
	for i, id := range ids {
		p := reps[(victim+1+i%2)%len(reps)] // any survivor serves every canary
		c := p.waitEnded(id, time.Until(deadline))
		want := map[bool]string{false: "pass", true: "fail"}[i%3 == 2]
		if c.Status != want {
			t.Errorf("canary %d (%s, through replica %d): %s, want %s: %s", i, id, by[i], c.Status, want, c.Reason)
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

	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
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
				redelivered++ // the kill cut the attempt after it was sent; resumed under its key
			default:
				t.Errorf("canary %d: the webhook was called %d times under %s (resumed after the kill: %v)", i, calls, k, contains(resumed, k))
			}
		}
	}
	rc.mu.Unlock()

	// Judged once: no replica judged an interval another recorded (the result would be
	// dropped); each replica judged some; the survivors took the victim's canaries.
	logs := []string{reps[0].logs.String(), victimLogs, reps[2].logs.String()}
	for i, l := range logs {
		if d := grepLines(l, "interval result dropped"); d != "" {
			t.Errorf("replica %d judged an interval recorded by another:\n%s", i, d)
		}
		if !strings.Contains(l, "interval judged") {
			t.Errorf("replica %d judged nothing", i)
		}
	}
	took := grepLines(logs[0], "leases changed") + grepLines(logs[2], "leases changed")
	if !strings.Contains(took, `"gained"`) {
		t.Errorf("no survivor took a lease after the kill:\n%s", took)
	}
	rebornLogs := reborn.logs.String()
	if d := grepLines(rebornLogs, "interval result dropped"); d != "" {
		t.Errorf("the restarted replica judged an interval recorded by another:\n%s", d)
	}
	if !strings.Contains(rebornLogs, "interval judged") {
		t.Errorf("the restarted replica judged nothing:\n%s", grepLines(rebornLogs, "leases changed"))
	}
	// Failover: for the victim's canaries still running at the kill, the first interval
	// judged after it, counted from the kill.
	var failover time.Duration
	if err := conn.QueryRow(t.Context(), `SELECT coalesce(extract(epoch FROM max(first - $1)), 0) * 1e9 FROM (
		SELECT min((doc->>'judged_at')::timestamptz) AS first FROM intervals
		WHERE canary_id = ANY($2) AND (doc->>'judged_at')::timestamptz > $1 GROUP BY canary_id) f`,
		killedAt, victimCanaries(ids, by, victim)).Scan(&failover); err != nil {
		t.Fatal(err)
	}
	if failover <= 0 || failover > 2*time.Second+time.Second+2*time.Second {
		t.Errorf("the victim's canaries were judged again %s after the kill, want within lease (2s) + a renewal + an interval", failover)
	}
	t.Logf("3 replicas, %d canaries, one kill -9: failover %s (lease 2s, interval 1s), %d deliveries repeated under their key after the kill",
		n, failover.Round(time.Millisecond), redelivered)
}

func victimCanaries(ids []string, by []int, victim int) []string {
	var out []string
	for i, id := range ids {
		if by[i] == victim {
			out = append(out, id)
		}
	}
	return out
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
