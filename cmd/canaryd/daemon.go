package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/canaryd/canaryd/actuators/guard"
	"github.com/canaryd/canaryd/actuators/guard/pgguard"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/boltstore"
	"github.com/canaryd/canaryd/analysis/pgstore"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/internal/identity"
	"github.com/canaryd/canaryd/internal/redact"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/synthetic"
	"github.com/canaryd/canaryd/web"
	"github.com/canaryd/canaryd/web/auth"
	"github.com/canaryd/canaryd/web/sameorigin"
)

// Shutdown budget: SIGTERM must see the process gone within 10 s, so the HTTP server
// and the scheduler each get a share of it.
const (
	httpShutdownGrace  = 3 * time.Second
	schedShutdownGrace = 4 * time.Second
	actShutdownGrace   = 2 * time.Second
	storeLockTimeout   = 5 * time.Second
	// storeCheckTimeout bounds the check of the store file at start (boltstore.OpenWith).
	storeCheckTimeout = 20 * time.Second
	// storeConnectTimeout bounds reaching a PostgreSQL store at start (and migrating it).
	storeConnectTimeout = 10 * time.Second
	// storePingTimeout bounds /readyz's check that a PostgreSQL store answers.
	storePingTimeout = 2 * time.Second
)

// daemonOptions say how to run the daemon. Exactly one of ConfigPath (the file, reread
// on reload) and ConfigSource (a fixed config, for the demo) is set.
type daemonOptions struct {
	ConfigPath   string
	ConfigSource []byte
	// Listen and Storage override the config's server block when not empty.
	Listen  string
	Storage string
	Logger  *zap.Logger
	Clock   analysis.Clock
	// sim is the simulated rollbacks that the config's synthetic providers and
	// synthetic_rollback actuators share, for the daemon's life (newDaemon makes it).
	sim *synthetic.Rollbacks
}

// daemon is canaryd serve's wiring: the config, the providers built from it, the store,
// the scheduler and the HTTP API. Reloads swap the config and providers whole.
type daemon struct {
	o     daemonOptions
	log   *zap.Logger
	reg   *prometheus.Registry
	m     *analysis.Metrics
	store analysis.Store
	// actStore is the bbolt file of the safety layer: the store's own file, or
	// server.actuation_store beside a PostgreSQL store (closed after the store); nil when
	// the safety layer is in the PostgreSQL database (guardStore).
	actStore *boltstore.Store
	// guardStore is the safety layer's store: in actStore, or in the PostgreSQL database.
	guardStore guard.Store
	sched      *analysis.Scheduler
	tokens     *auth.Tokens
	// origins refuses cross-site mutating requests (server.trusted_origins).
	origins *sameorigin.Policy
	act     *guard.Guard  // the actuators' safety layer
	certs   *certReloader // nil without TLS

	reloadMu  sync.Mutex // one reload at a time
	cfg       *config.Config
	providers map[string]builtProvider

	ready atomic.Bool
	// storeLost is whether the last ping of a PostgreSQL store failed (pingStore).
	storeLost atomic.Bool
	// retention is server.retention of the config in force (a reload changes it).
	retention atomic.Int64
}

type builtProvider struct {
	entry *config.Provider
	prov  metrics.Provider
}

// newDaemon loads the config, opens the store and builds the scheduler; it starts
// nothing. An invalid config or a store that cannot be opened is an error here, before
// anything listens.
func newDaemon(o daemonOptions) (*daemon, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = analysis.RealClock{}
	}
	if o.sim == nil {
		o.sim = synthetic.NewRollbacks()
	}
	cfg, err := o.loadConfig()
	if err != nil {
		return nil, err
	}
	d := &daemon{o: o, log: o.Logger, reg: prometheus.NewRegistry()}
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.m = analysis.NewMetrics(d.reg)
	provs, err := d.buildProviders(cfg)
	if err != nil {
		return nil, err
	}
	// Before the store is opened: a refused credential stops the start here.
	if err := d.checkProviders(provs, true); err != nil {
		return nil, err
	}
	if err := d.openStore(cfg); err != nil {
		return nil, err
	}
	// One cache of analysis snapshots for the scheduler, which judges by them, and the
	// safety layer, which plans by them.
	snaps := analysis.NewSnapshots(d.store)
	gopts := guard.Options{
		Store: d.guardStore, Canaries: d.store, Config: cfg, Logger: d.log, Metrics: guard.NewMetrics(d.reg),
		StoreErrors: d.m.StoreErrors, Clock: o.Clock, Analyses: snaps,
	}
	// On PostgreSQL, replicas share the canaries by leases, and the safety layer's
	// unfinished actions by owner (when it is in the database too).
	var leases analysis.Leases
	if pg, ok := d.store.(*pgstore.Store); ok {
		replica, err := replicaName()
		if err != nil {
			d.closeStore()
			return nil, err
		}
		l := pg.Leases(replica, time.Duration(cfg.Scheduler.Lease))
		leases = l
		if _, shared := d.guardStore.(*pgguard.Store); shared {
			gopts.Replica, gopts.Alive, gopts.AdoptEvery = replica, l.Alive, l.TTL()
		}
		d.log.Info("replica on a shared store: canaries split by leases", zap.String("replica", replica),
			zap.Duration("lease", l.TTL()))
	}
	d.act, err = guard.New(gopts)
	if err != nil {
		d.closeStore()
		return nil, err
	}
	d.sched = analysis.NewScheduler(analysis.Options{
		Store: d.store, Snapshots: snaps, Clock: o.Clock, Logger: d.log, Metrics: d.m, Actuation: d.act,
		CheckRegistration:    d.act.CheckRegistration,
		Preflight:            d.act.Preflight,
		Workers:              cfg.Scheduler.Workers,
		MaxConsecutiveErrors: cfg.Scheduler.MaxConsecutiveErrors,
		QueryTimeout:         time.Duration(cfg.Scheduler.QueryTimeout),
		CanaryRateLimit:      cfg.Scheduler.CanaryRateLimit,
		Limits:               analysis.LimitsOf(cfg.Server),
		ShutdownGrace:        schedShutdownGrace,
		Leases:               leases,
	})
	d.tokens = auth.New(cfg.Server.Auth)
	d.origins = sameorigin.New(cfg.Server.TrustedOrigins)
	if !d.tokens.Enabled() {
		d.log.Warn("the API has no authentication (server.auth): anyone who reaches it can abort and promote canaries")
	}
	if t := cfg.Server.TLS; t != nil {
		if d.certs, err = newCertReloader(t.CertFile, t.KeyFile, d.log); err != nil {
			d.closeStore()
			return nil, err
		}
	}
	d.install(cfg, provs)
	return d, nil
}

// openStore opens server.storage: a bbolt file, which the safety layer shares, or a
// PostgreSQL database (a postgres:// URL), whose tables the safety layer shares too
// (every replica's), unless server.actuation_store names a bbolt file for it.
func (d *daemon) openStore(cfg *config.Config) error {
	bolt := cfg.Server.Storage
	if pgstore.IsURL(cfg.Server.Storage) {
		pg, err := pgstore.Open(context.Background(), cfg.Server.Storage, pgstore.Options{
			ConnectTimeout: storeConnectTimeout, Logger: d.log.Named("store"),
		})
		if err != nil {
			return fmt.Errorf("store: %w", err) // names the URL without its password
		}
		d.store = pg
		bolt = cfg.Server.ActuationStore
		if bolt == "" {
			ctx, cancel := context.WithTimeout(context.Background(), storeConnectTimeout)
			defer cancel()
			gs, err := pgguard.Open(ctx, pg.Pool())
			if err != nil {
				pg.Close()
				d.store = nil
				return fmt.Errorf("store: cannot use PostgreSQL at %s: %w", pg.URL(), err)
			}
			d.guardStore = gs
			return nil
		}
		d.log.Warn("server.actuation_store keeps the safety layer in a bbolt file beside PostgreSQL: run one replica only (leave it empty to share the database)",
			zap.String("actuation_store", bolt))
	}
	bs, err := boltstore.OpenWith(bolt, boltstore.Options{
		LockTimeout: storeLockTimeout, CheckTimeout: storeCheckTimeout, Logger: d.log.Named("store"),
	})
	if err == nil {
		d.actStore = bs
		if d.store == nil {
			d.store = bs
		}
		gs, err := guard.NewBoltStore(bs.DB())
		if err != nil {
			d.closeStore()
			return err
		}
		d.guardStore = gs
		return nil
	}
	if d.store != nil {
		d.store.Close()
		d.store = nil
	}
	if errors.As(err, new(*boltstore.DamagedError)) {
		return err // says what is wrong with the file and what to do
	}
	return fmt.Errorf("store: %w (is another canaryd using %s?)", err, bolt)
}

// replicaName names this process among the replicas of a shared store: the host's name
// (a pod's), the pid and random bytes, new at every start, so that a restarted replica
// never passes for the one that died.
func replicaName() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "canaryd"
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("replica name: %w", err)
	}
	return fmt.Sprintf("%s-%d-%x", host, os.Getpid(), b), nil
}

// closeStore closes the store and the safety layer's file.
func (d *daemon) closeStore() error {
	var err error
	if d.store != nil && d.store != analysis.Store(d.actStore) {
		err = d.store.Close()
	}
	if d.actStore != nil {
		err = errors.Join(err, d.actStore.Close())
	}
	return err
}

// storeName is server.storage for logs: a URL without its password.
func storeName(storage string) string {
	if pgstore.IsURL(storage) {
		return pgstore.Redact(storage)
	}
	return storage
}

// pingStore checks that the store answers, for /readyz: a PostgreSQL database may be
// lost while canaryd runs; a bbolt file is open for as long as the process. The answer
// does not say where the database is (anyone who reaches /readyz reads it); the log says
// why, once when it is lost and once when it is back.
func (d *daemon) pingStore(ctx context.Context) error {
	p, ok := d.store.(interface{ Ping(context.Context) error })
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, storePingTimeout)
	defer cancel()
	err := p.Ping(ctx)
	if lost := err != nil; d.storeLost.Swap(lost) != lost {
		if lost {
			d.log.Error("the store does not answer; not ready until it does", zap.String("storage", storeName(d.cfg.Server.Storage)), zap.Error(err))
		} else {
			d.log.Info("the store answers again", zap.String("storage", storeName(d.cfg.Server.Storage)))
		}
	}
	if err != nil {
		return errors.New("not ready: the store (PostgreSQL) does not answer; the log says why")
	}
	return nil
}

// loadConfig reads the config and applies the command line's overrides.
func (o daemonOptions) loadConfig() (*config.Config, error) {
	var cfg *config.Config
	var err error
	if o.ConfigPath == "" {
		cfg, err = config.Parse(o.ConfigSource, kindsWith(o.sim))
	} else {
		cfg, err = config.Load(o.ConfigPath, kindsWith(o.sim))
	}
	if err != nil {
		return nil, err
	}
	if o.Listen != "" {
		cfg.Server.Listen = o.Listen
	}
	if o.Storage != "" {
		cfg.Server.Storage = o.Storage
	}
	return cfg, nil
}

// buildProviders builds the providers of cfg, reusing those whose entry has not changed
// so that a reload keeps their connections.
func (d *daemon) buildProviders(cfg *config.Config) (map[string]builtProvider, error) {
	out := make(map[string]builtProvider, len(cfg.Providers))
	for name, entry := range cfg.Providers {
		if old, ok := d.providers[name]; ok && old.entry.Unchanged(entry) {
			out[name] = old
			continue
		}
		p, err := entry.Build(d.log)
		if err != nil {
			return nil, err
		}
		out[name] = builtProvider{entry: entry, prov: p}
	}
	return out, nil
}

func (d *daemon) install(cfg *config.Config, provs map[string]builtProvider) {
	env := &analysis.Env{Config: cfg, Providers: make(map[string]metrics.Provider, len(provs)),
		RateLimits: make(map[string]config.RateLimit, len(provs))}
	for name, bp := range provs {
		env.Providers[name] = bp.prov
		env.RateLimits[name] = bp.entry.RateLimit
	}
	d.cfg, d.providers = cfg, provs
	d.m.InitProviders(slices.Sorted(maps.Keys(provs)))
	var watched []string
	for name, a := range cfg.Analyses {
		if a.Recovery != nil {
			watched = append(watched, name)
		}
	}
	d.m.InitRecovery(watched)
	d.retention.Store(int64(cfg.Server.Retention))
	d.sched.SetLimits(analysis.LimitsOf(cfg.Server))
	d.sched.SetEnv(env)
	d.m.ReloadSuccess.Set(1)
	d.m.ReloadSuccessTime.SetToCurrentTime()
}

// pinger is a provider that can tell cheaply whether its backend answers.
type pinger interface {
	Ping(ctx context.Context) error
}

// keyRefusal is a Ping error that says the backend refused the provider's credential
// (Datadog's 403 on /api/v1/validate), as opposed to not answering.
type keyRefusal interface {
	KeyRefused() bool
}

// providerCheckTimeout bounds the startup check of each provider.
const providerCheckTimeout = 10 * time.Second

// checkProviders asks each provider once, all at once, whether its backend answers and
// logs the outcome (warn when not): a wrong address or credential shows in the log at
// once instead of as nodata or error canaries later. At start (atStart), a credential
// the backend refuses is an error naming the provider, so that the daemon does not start
// (every canary on it would end error); a backend that does not answer is only a
// warning, since it may be down for a moment. At a reload it only logs.
func (d *daemon) checkProviders(provs map[string]builtProvider, atStart bool) error {
	names := slices.Sorted(maps.Keys(provs))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		bp := provs[name]
		pg, ok := bp.prov.(pinger)
		if !ok {
			d.log.Debug("provider has no startup check", zap.String("provider", name), zap.String("type", bp.entry.Type))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), providerCheckTimeout)
			defer cancel()
			began := time.Now()
			err := pg.Ping(ctx)
			if err == nil {
				d.log.Info("provider answers", zap.String("provider", name), zap.String("type", bp.entry.Type),
					zap.Duration("took", time.Since(began)))
				return
			}
			var kr keyRefusal
			if atStart && errors.As(err, &kr) && kr.KeyRefused() {
				errs[i] = fmt.Errorf("provider %q (%s) refuses its key, so canaryd does not start (fix the key, or the site or api_url it is sent to): %w",
					name, bp.entry.Type, redact.Error(err))
				return
			}
			d.log.Warn("provider does not answer; its canaries will end nodata or error until it does",
				zap.String("provider", name), zap.String("type", bp.entry.Type), zap.Error(redact.Error(err)))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reload rereads the config file. A bad file keeps the old config and says why; running
// canaries keep the analysis they started with either way.
func (d *daemon) reload(ctx context.Context) error {
	if d.o.ConfigPath == "" {
		return errors.New("this daemon runs a built-in config; there is no file to reload")
	}
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, err := d.o.loadConfig()
	if err == nil {
		var provs map[string]builtProvider
		if provs, err = d.buildProviders(cfg); err == nil {
			err = d.act.Configure(cfg)
		}
		if err == nil {
			if keepRestartOnly(&cfg.Server, d.cfg.Server) {
				d.log.Warn("server listen, storage, tls or max_body_bytes changed; they take effect at the next restart",
					zap.String("listen", d.cfg.Server.Listen), zap.String("storage", storeName(d.cfg.Server.Storage)))
			}
			d.tokens.Set(cfg.Server.Auth)
			d.origins.Set(cfg.Server.TrustedOrigins)
			if cfg.Scheduler != d.cfg.Scheduler {
				d.log.Warn("the scheduler block changed; it takes effect at the next restart")
			}
			d.install(cfg, provs)
			go d.checkProviders(provs, false) // at a reload it only logs: no error to handle
			d.log.Info("config reloaded", zap.String("file", d.o.ConfigPath), zap.String("hash", cfg.Hash),
				zap.Int("analyses", len(cfg.Analyses)))
			if aerr := d.act.RecordReload(ctx, cfg.Hash, nil); aerr != nil {
				d.log.Error("audit log: record reload", zap.Error(aerr))
			}
			return nil
		}
	}
	d.m.ReloadSuccess.Set(0)
	err = redact.Error(err) // a provider address in the message may carry credentials
	d.log.Error("config reload failed; keeping the old config", zap.String("file", d.o.ConfigPath), zap.Error(err))
	if aerr := d.act.RecordReload(ctx, "", err); aerr != nil {
		d.log.Error("audit log: record reload", zap.Error(aerr))
	}
	return err
}

// keepRestartOnly puts back into next the server settings a reload cannot change (what
// the listener, the store and the API handler were built with) and reports whether the
// file changed any of them. The rest of the block — tokens and the registration limits —
// applies at once.
func keepRestartOnly(next *config.Server, cur config.Server) bool {
	var nextTLS, curTLS config.TLS
	if next.TLS != nil {
		nextTLS = *next.TLS
	}
	if cur.TLS != nil {
		curTLS = *cur.TLS
	}
	changed := next.Listen != cur.Listen || next.Storage != cur.Storage || next.ActuationStore != cur.ActuationStore ||
		next.MaxBodyBytes != cur.MaxBodyBytes || nextTLS != curTLS
	next.Listen, next.Storage, next.ActuationStore, next.MaxBodyBytes, next.TLS = cur.Listen, cur.Storage, cur.ActuationStore, cur.MaxBodyBytes, cur.TLS
	return changed
}

// handler is the daemon's HTTP surface.
func (d *daemon) handler() http.Handler {
	var reload func(context.Context) error
	if d.o.ConfigPath != "" {
		reload = d.reload
	}
	return web.New(web.Options{
		Canaries: d.sched, Actuations: d.act, Events: d.act, Tokens: d.tokens, Origins: d.origins,
		Gatherer: d.reg, Reload: reload, MaxBody: d.cfg.Server.MaxBodyBytes, Logger: d.log,
		Clock: d.o.Clock, Kayenta: d.sched,
		Ready: func() error {
			return readiness(d.ready.Load(), d.act.PendingOutcomes(), d.pingStore(context.Background()))
		},
	})
}

// readiness is /readyz's answer: not ready while starting or stopping, nor while the
// store does not answer (a PostgreSQL database lost), nor while actions that happened
// wait for the store to accept their outcome (a full disk): until then a restart would
// fire them again.
func readiness(serving bool, pendingOutcomes int, storeErr error) error {
	if !serving {
		return errors.New("not ready: starting or shutting down")
	}
	if storeErr != nil {
		return storeErr
	}
	if pendingOutcomes > 0 {
		return fmt.Errorf("not ready: %d action outcomes not yet written to the store (retrying)", pendingOutcomes)
	}
	return nil
}

// run serves until ctx ends or SIGTERM/SIGINT, reloading on SIGHUP. On the way out it
// stops taking requests, lets in-flight intervals finish briefly, and closes the store.
func (d *daemon) run(ctx context.Context, ln net.Listener) error {
	// The safety layer first: it resumes actions a crash left unfinished and plans those
	// of canaries that ended without them, before the scheduler ends any more.
	if err := d.act.Start(); err != nil {
		d.closeStore()
		return err
	}
	rep, err := d.act.Recover(ctx)
	if err != nil {
		d.act.Stop(ctx)
		d.closeStore()
		return fmt.Errorf("recover actions: %w", err)
	}
	if rep != (guard.RecoverReport{}) {
		d.log.Info("actions recovered", zap.Int("resumed", rep.Resumed), zap.Int("abandoned", rep.Abandoned),
			zap.Int("planned", rep.Planned), zap.Int("stale", rep.Stale), zap.Int("awaiting_approval", rep.Awaiting))
	}
	if err := d.sched.Start(ctx); err != nil {
		d.act.Stop(ctx)
		d.closeStore()
		return err
	}
	retCtx, stopRetention := context.WithCancel(context.Background())
	retDone := make(chan struct{})
	go func() { defer close(retDone); d.retain(retCtx) }()
	srv := &http.Server{
		Handler:           d.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(d.log.Named("http")),
	}
	serveErr := make(chan error, 1)
	if d.certs != nil {
		srv.TLSConfig = d.certs.config()
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	d.ready.Store(true)
	d.log.Info("canaryd serving", zap.String("listen", ln.Addr().String()), zap.String("storage", storeName(d.cfg.Server.Storage)))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	err = nil
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-serveErr:
			break loop
		case s := <-sigs:
			if s == syscall.SIGHUP {
				// Logged, audited and shown in canaryd_config_last_reload_successful.
				_ = d.reload(identity.With(ctx, identity.Actor{Name: "signal:SIGHUP"}))
				continue
			}
			d.log.Info("shutting down", zap.String("signal", s.String()))
			break loop
		}
	}
	d.ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), httpShutdownGrace)
	if serr := srv.Shutdown(sctx); serr != nil {
		d.log.Warn("http shutdown", zap.Error(serr))
		srv.Close()
	}
	cancel()
	stopRetention()
	<-retDone
	sctx, cancel = context.WithTimeout(context.Background(), schedShutdownGrace)
	d.sched.Stop(sctx)
	cancel()
	// Actions in flight get what is left of the budget; the rest resume at the next start.
	sctx, cancel = context.WithTimeout(context.Background(), actShutdownGrace)
	d.act.Stop(sctx)
	cancel()
	if cerr := d.closeStore(); cerr != nil {
		d.log.Error("close store", zap.Error(cerr))
	}
	d.log.Info("canaryd stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Retention runs in batches of retentionBatch canaries (one store transaction each), a
// pass every tenth of the retention, between retentionMinEvery and retentionMaxEvery.
const (
	retentionBatch    = 200
	retentionMinEvery = time.Second
	retentionMaxEvery = 10 * time.Minute
)

// retain deletes ended canaries older than server.retention, with their intervals and
// actions, until ctx ends: a pass at start, then one every tenth of the retention.
func (d *daemon) retain(ctx context.Context) {
	for {
		ret := time.Duration(d.retention.Load())
		every := retentionMaxEvery
		if ret > 0 {
			before := time.Now().Add(-ret)
			n, err := d.sched.DeleteEnded(ctx, before, retentionBatch)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				d.log.Error("retention: delete ended canaries", zap.Error(err))
			case n > 0:
				d.log.Info("retention: deleted ended canaries", zap.Int("canaries", n),
					zap.Duration("retention", ret), zap.Time("ended_before", before))
			}
			every = min(max(ret/10, retentionMinEvery), retentionMaxEvery)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// newLogger builds the zap logger of --log-level and --log-format.
func newLogger(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.Development = false
		cfg.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("--log-format: %q is not json or console", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil // every canary event matters; volume is low
	cfg.OutputPaths, cfg.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return cfg.Build()
}
