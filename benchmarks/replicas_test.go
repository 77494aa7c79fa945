package benchmarks

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/pgstore"
	"github.com/canaryd/canaryd/analysis/pgstore/pgtest"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/synthetic"
)

// replica is one scheduler with its own store handle (its own connection pool) and
// leases, as one canaryd serve process has.
type replica struct {
	name   string
	store  *pgstore.Store
	leases *crashable
	sched  *analysis.Scheduler
	reg    *prometheus.Registry
}

// crashable is a replica's leases whose release at shutdown can be skipped, so that a
// Stop looks like a crash to the others (they wait for the leases to expire).
type crashable struct {
	*pgstore.Leases
	crashed atomic.Bool
}

func (c *crashable) ReleaseAll(ctx context.Context) error {
	if c.crashed.Load() {
		return nil
	}
	return c.Leases.ReleaseAll(ctx)
}

func (r *replica) judged(b *testing.B) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "canaryd_intervals_judged_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// BenchmarkReplicas runs 1, 2 and then 3 schedulers in this process on one PostgreSQL (a
// private cluster, pgtest), each with its own pool and leases (scheduler.lease 5 s):
// CANARYD_REPLICAS_CANARIES canaries (default 2,000) × 10 Mann-Whitney metrics on the
// synthetic provider, interval 10 s, registered through the replicas in turn by 16
// clients. It reports registrations/s, intervals judged/s over CANARYD_REPLICAS_DURATION
// (default 40 s) in total and per replica, the lag (judged-at minus due, from the store),
// the database's commits/s, and, with 2 or 3 replicas, the failover: one replica stops as if
// killed (its leases not released) and the time until the others hold every running
// canary is measured. One op is the whole run: use -benchtime=1x.
func BenchmarkReplicas(b *testing.B) {
	canaries := 2000
	if v, err := strconv.Atoi(os.Getenv("CANARYD_REPLICAS_CANARIES")); err == nil && v > 0 {
		canaries = v
	}
	duration := envDuration("CANARYD_REPLICAS_DURATION", 40*time.Second)
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			for range b.N {
				runReplicas(b, n, canaries, duration)
			}
		})
	}
}

func runReplicas(b *testing.B, n, canaries int, duration time.Duration) {
	ctx := context.Background()
	url := pgtest.Database(b)
	cfg, err := config.Parse([]byte(scaleConfig()), testKinds())
	if err != nil {
		b.Fatal(err)
	}
	cfg.Server.MaxRunningPerAnalysis = canaries
	prov, err := synthetic.New(synthetic.Config{Seed: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	const lease = 5 * time.Second
	reps := make([]*replica, n)
	for i := range reps {
		st, err := pgstore.Open(ctx, url, pgstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		r := &replica{name: fmt.Sprintf("bench-%d", i), store: st, reg: prometheus.NewRegistry()}
		r.leases = &crashable{Leases: st.Leases(r.name, lease)}
		r.sched = analysis.NewScheduler(analysis.Options{Store: st, Leases: r.leases, Metrics: analysis.NewMetrics(r.reg),
			Limits: analysis.LimitsOf(cfg.Server)})
		r.sched.SetEnv(&analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{"sim": prov}})
		if err := r.sched.Start(ctx); err != nil {
			b.Fatal(err)
		}
		reps[i] = r
	}
	defer func() {
		for _, r := range reps {
			r.sched.Stop(ctx)
			r.store.Close()
		}
	}()

	// Registrations, through the replicas in turn, 16 at a time, their starts spread over
	// one interval so that the load is even.
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1)) - 1
				if j >= canaries {
					return
				}
				_, err := reps[j%n].sched.Register(ctx, analysis.Registration{
					Name: fmt.Sprintf("svc-%d", j), Analysis: "scale",
					Baseline: map[string]string{"track": "baseline"}, Canary: map[string]string{"track": "canary"},
					Vars:  map[string]string{"app": fmt.Sprintf("svc-%d", j)},
					Start: t0.Add(time.Duration(j) * 10 * time.Second / time.Duration(canaries)),
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	regTook := time.Since(t0)
	b.ReportMetric(float64(canaries)/regTook.Seconds(), "registrations/s")

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	commits := func() (n int64) {
		if err := conn.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	// The first judged intervals (after the 10 s warmup) are due from t0+20s to t0+30s.
	time.Sleep(time.Until(t0.Add(32 * time.Second)))
	before := make([]float64, n)
	for i, r := range reps {
		before[i] = r.judged(b)
	}
	c0, w0 := commits(), time.Now()
	time.Sleep(duration)
	c1, w1 := commits(), time.Now()
	total := 0.0
	per := ""
	for i, r := range reps {
		d := r.judged(b) - before[i]
		total += d
		per += fmt.Sprintf(" %.1f", d/w1.Sub(w0).Seconds())
	}
	var p50, p99 float64
	var recorded int
	if err := conn.QueryRow(ctx, `SELECT count(*), coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), 0), coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), 0)
		FROM (SELECT extract(epoch FROM (doc->>'judged_at')::timestamptz - (doc->>'end')::timestamptz) AS lag FROM intervals
		WHERE (doc->>'judged_at')::timestamptz BETWEEN $1 AND $2) l`, w0, w1).Scan(&recorded, &p50, &p99); err != nil {
		b.Fatal(err)
	}
	secs := w1.Sub(w0).Seconds()
	b.ReportMetric(total/secs, "intervals/s")
	b.ReportMetric(p50*1000, "lag-p50-ms")
	b.ReportMetric(p99*1000, "lag-p99-ms")
	b.ReportMetric(float64(c1-c0)/secs, "db-commits/s")
	b.Logf("%d replicas, %d canaries: %d registered in %s; %.1f intervals/s judged (per replica:%s), %d recorded in the window; lag p50 %.0f ms, p99 %.0f ms; %.0f commits/s",
		n, canaries, canaries, regTook.Round(time.Millisecond), total/secs, per, recorded, p50*1000, p99*1000, float64(c1-c0)/secs)

	if n < 2 {
		return
	}
	// Failover: replica 0 stops as if killed; the others take its canaries when its
	// leases expire.
	victim := reps[0]
	var held int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM leases WHERE owner = $1 AND expires > now()", victim.name).Scan(&held); err != nil {
		b.Fatal(err)
	}
	victim.leases.crashed.Store(true)
	crash := time.Now()
	victim.sched.Stop(ctx)
	for {
		var orphans int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM canaries c WHERE c.status = 'running' AND NOT EXISTS (
			SELECT 1 FROM leases l WHERE l.canary_id = c.id AND l.owner <> $1 AND l.expires > now())`, victim.name).Scan(&orphans); err != nil {
			b.Fatal(err)
		}
		if orphans == 0 {
			break
		}
		if time.Since(crash) > 10*lease {
			b.Fatalf("%d canaries still without a live replica's lease %s after the crash", orphans, time.Since(crash))
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(crash)
	b.ReportMetric(took.Seconds(), "failover-s")
	b.Logf("failover: the %d canaries of a killed replica held by the others %s after the kill (lease %s, renewed every %s)",
		held, took.Round(10*time.Millisecond), lease, lease/3)
}
