package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v2"
)

// Config is a whole canaryd config file, decoded, defaulted and validated. Get one from
// Load or Parse only: they are what guarantee every value in it is valid.
type Config struct {
	Server    Server
	Scheduler Scheduler
	// Actuation is the actuators' safety layer settings (actuators.go).
	Actuation Actuation
	// Providers, Actuators and Analyses are keyed by their name in the file.
	Providers map[string]*Provider
	Actuators map[string]*Actuator
	Analyses  map[string]*Analysis
	// Hash identifies the file's content (sha256, hex), for logs and reload.
	Hash string
}

// Server is the `server:` block.
type Server struct {
	// Listen is the HTTP API's host:port.
	Listen string `yaml:"listen"`
	// Storage is the path of the embedded store's file, or the postgres:// URL of a
	// PostgreSQL database.
	Storage string `yaml:"storage"`
	// ActuationStore, when set beside a PostgreSQL Storage, keeps the actuators' safety
	// layer in this bbolt file (one replica only) instead of in the same database (the
	// default, "", which every replica shares). With a file Storage, the safety layer
	// keeps its records in that file and this is not used.
	ActuationStore string `yaml:"actuation_store"`
	// Auth guards the HTTP API with tokens and roles (see auth.go); nil leaves it open.
	Auth *Auth `yaml:"auth,omitempty"`
	// TLS serves HTTPS from these files, reread when they change.
	TLS *TLS `yaml:"tls,omitempty"`
	// MaxBodyBytes caps a request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxRunningPerAnalysis caps the running canaries of one analysis, so a runaway
	// pipeline cannot flood the scheduler.
	MaxRunningPerAnalysis int `yaml:"max_running_per_analysis"`
	// MaxLifetime caps a canary's lifetime, the analysis' or a registration's, and how
	// far in the past a registration's start may be.
	MaxLifetime model.Duration `yaml:"max_lifetime"`
	// Retention is how long an ended canary is kept, with its intervals and actions,
	// after it ended; 0 keeps every canary forever. The audit log is not affected.
	Retention model.Duration `yaml:"retention"`
	// TrustedOrigins are the other sites (scheme://host[:port]) whose pages may send
	// mutating requests (abort, promote, …) from a browser; every other cross-origin one
	// is refused.
	TrustedOrigins []string `yaml:"trusted_origins,omitempty"`
	// MinInterval is the shortest interval an analysis or a registration may have: each
	// interval queries every metric for both cohorts.
	MinInterval model.Duration `yaml:"min_interval"`
}

// DefaultServer is the `server:` block when the file leaves it out.
func DefaultServer() Server {
	return Server{Listen: "127.0.0.1:8080", Storage: "data/canaryd.db", MaxBodyBytes: 64 << 10, MaxRunningPerAnalysis: 500,
		MaxLifetime: model.Duration(24 * time.Hour), Retention: model.Duration(30 * 24 * time.Hour),
		MinInterval: model.Duration(10 * time.Second)}
}

// UnmarshalYAML fills the defaults, then decodes the file's values onto them.
func (s *Server) UnmarshalYAML(unmarshal func(any) error) error {
	*s = DefaultServer()
	type plain Server
	return unmarshal((*plain)(s))
}

// Scheduler is the `scheduler:` block.
type Scheduler struct {
	// Workers bounds how many canaries are judged at once.
	Workers int `yaml:"workers"`
	// MaxConsecutiveErrors is how many intervals in a row may have a metric in error
	// before the canary ends as `error`.
	MaxConsecutiveErrors int `yaml:"max_consecutive_errors"`
	// QueryTimeout bounds each provider query, so one slow backend cannot hold a worker.
	QueryTimeout model.Duration `yaml:"query_timeout"`
	// CanaryRateLimit bounds the queries of one canary, so that one registered with a
	// start far in the past catches up at a bounded rate instead of in a burst.
	CanaryRateLimit RateLimit `yaml:"canary_rate_limit"`
	// Lease is how long a replica's lease on a canary lasts after its last renewal (every
	// third of it), with a PostgreSQL store: a replica that dies has its canaries resumed
	// by the others within about a Lease. Unused with a file store (one process).
	Lease model.Duration `yaml:"lease"`
}

// DefaultLease is scheduler.lease's default.
const DefaultLease = 15 * time.Second

// DefaultScheduler is the `scheduler:` block when the file leaves it out.
func DefaultScheduler() Scheduler {
	return Scheduler{Workers: 32, MaxConsecutiveErrors: 3, QueryTimeout: model.Duration(30 * time.Second),
		CanaryRateLimit: RateLimit{QPS: 10, Burst: 100}, Lease: model.Duration(DefaultLease)}
}

// UnmarshalYAML fills the defaults, then decodes the file's values onto them.
func (s *Scheduler) UnmarshalYAML(unmarshal func(any) error) error {
	*s = DefaultScheduler()
	type plain Scheduler
	return unmarshal((*plain)(s))
}

// Actuator is one `actuators:` entry: its kind's own Config (webhook.Config,
// exec.Config, …, decoded by the kind's package) and the safety keys every kind shares
// (actuators.go).
type Actuator struct {
	Name string
	Type string
	// Raw is the entry without its `type` key.
	Raw yaml.MapSlice
	// Config is the kind's decoded and validated config.
	Config any
	// Notification: the actuator tells people (slack, pagerduty by default); it is never
	// held for approval.
	Notification bool
	// Breaker and Cooldown are the entry's own or the actuation block's (none for
	// notifications unless the entry sets them).
	Breaker  Breaker
	Cooldown time.Duration
	// Attempts is how many times a retryable failure is tried.
	Attempts int
	// Resume is ResumeRetry or ResumeSkip.
	Resume string
	// PreflightTimeout bounds the kind's preflight check, when it has one
	// (preflight_timeout; default actuators.DefaultPreflightTimeout, at most
	// actuators.MaxPreflightTimeout).
	PreflightTimeout time.Duration
	// Source is the entry as YAML; two entries with the same Source build the same
	// actuator, so a reload can keep the ones that did not change.
	Source []byte
	// kind builds it.
	kind ActuatorKind
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// fileYAML is the top level of the file, each section kept raw so that its errors can be
// reported with their path.
type fileYAML struct {
	Server    rawNode       `yaml:"server"`
	Scheduler rawNode       `yaml:"scheduler"`
	Actuation rawNode       `yaml:"actuation"`
	Providers yaml.MapSlice `yaml:"providers"`
	Actuators yaml.MapSlice `yaml:"actuators"`
	Analyses  yaml.MapSlice `yaml:"analyses"`
}

// Load reads and parses a config file, with the provider and actuator types in kinds.
func Load(path string, kinds Kinds) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(b, kinds)
}

// Parse decodes, defaults and validates a config whose providers and actuators are of
// the types in kinds. On failure the error is an Errors with every problem found.
func Parse(data []byte, kinds Kinds) (*Config, error) {
	var errs Errors
	ls, cleaned := scanLines(data, &errs)
	f, ok := parseFile(cleaned, &errs)
	if !ok {
		if len(errs) > 0 && errs[len(errs)-1].Line == 0 {
			ls.setLines(errs)
		}
		return nil, errs
	}
	sum := sha256.Sum256(data)
	c := &Config{
		Server:    DefaultServer(),
		Scheduler: DefaultScheduler(),
		Actuation: DefaultActuation(),
		Providers: map[string]*Provider{},
		Actuators: map[string]*Actuator{},
		Analyses:  map[string]*Analysis{},
		Hash:      hex.EncodeToString(sum[:]),
	}
	c.parseBlocks(f, &errs)
	eachEntry("providers", f.Providers, c.Providers, &errs, func(name, path string, v any) *Provider {
		return parseProvider(name, v, path, kinds, &errs)
	})
	eachEntry("actuators", f.Actuators, c.Actuators, &errs, func(name, path string, v any) *Actuator {
		return parseActuator(name, v, path, kinds, &c.Actuation, &errs)
	})
	eachEntry("analyses", f.Analyses, c.Analyses, &errs, func(name, path string, v any) *Analysis {
		src, err := yaml.Marshal(v)
		if err != nil {
			errs.Add(path, "re-encode: %v", err)
			return nil
		}
		a := parseAnalysis(name, src, path, &errs)
		if a != nil {
			c.checkAnalysis(a, path, &errs)
		}
		return a
	})
	if len(errs) > 0 {
		ls.setLines(errs)
		return nil, errs
	}
	return c, nil
}

var topLineRe = regexp.MustCompile(`^line (\d+): `)

// parseFile decodes the top level, keeping each section raw.
func parseFile(data []byte, errs *Errors) (fileYAML, bool) {
	var f fileYAML
	err := yaml.UnmarshalStrict(data, &f)
	if err == nil {
		return f, true
	}
	// The top level keeps yaml's line numbers: they are relative to the file here.
	if te, ok := err.(*yaml.TypeError); ok {
		for _, m := range te.Errors {
			fe := FieldError{Msg: unknownRe.ReplaceAllString(m, `unknown field "$1"`)}
			if l := topLineRe.FindStringSubmatch(fe.Msg); l != nil {
				fe.Line, _ = strconv.Atoi(l[1])
				fe.Msg = fe.Msg[len(l[0]):]
			}
			if u := unknownRe.FindStringSubmatch(m); u != nil {
				if near := nearest(u[1], yamlKeys(reflect.TypeFor[fileYAML](), nil)); near != "" {
					fe.Msg += fmt.Sprintf(" (did you mean %q?)", near)
				}
			}
			*errs = append(*errs, fe)
		}
	} else {
		*errs = append(*errs, syntaxError(data, err))
	}
	return f, false
}

// parseBlocks decodes and validates the server, scheduler and actuation blocks onto
// c's defaults.
func (c *Config) parseBlocks(f fileYAML, errs *Errors) {
	if !f.Server.isZero() {
		decodeAt(f.Server.v, &c.Server, "server", errs)
	}
	if !f.Scheduler.isZero() {
		decodeAt(f.Scheduler.v, &c.Scheduler, "scheduler", errs)
	}
	if !f.Actuation.isZero() {
		decodeAt(f.Actuation.v, &c.Actuation, "actuation", errs)
	}
	c.Server.validate("server", errs)
	c.Scheduler.validate("scheduler", errs)
	c.Actuation.validate("actuation", errs)
}

// eachEntry parses every named entry of a section into m, refusing bad and repeated
// names; parse returns nil for an entry it refused.
func eachEntry[V any](section string, ms yaml.MapSlice, m map[string]*V, errs *Errors, parse func(name, path string, v any) *V) {
	for _, item := range ms {
		name, path, ok := entryName(section, item.Key, errs)
		if !ok {
			continue
		}
		if _, dup := m[name]; dup {
			errs.Add(path, "defined twice")
			continue
		}
		if v := parse(name, path, item.Value); v != nil {
			m[name] = v
		}
	}
}

// checkAnalysis checks what an analysis owes the rest of the file: the server's bounds
// and its references to providers and actuators. It is not in parseAnalysis so that a
// running canary's snapshot stays loadable whatever the bounds are now and after its
// provider is renamed.
func (c *Config) checkAnalysis(a *Analysis, path string, errs *Errors) {
	if a.Lifetime > time.Duration(c.Server.MaxLifetime) {
		errs.Add(join(path, "lifetime"), "%s is longer than server.max_lifetime (%s)", model.Duration(a.Lifetime), c.Server.MaxLifetime)
	}
	switch {
	case a.Interval > 0 && a.Interval < time.Duration(c.Server.MinInterval):
		errs.Add(join(path, "interval"), "%s is shorter than server.min_interval (%s)", model.Duration(a.Interval), c.Server.MinInterval)
	case a.Interval > 0 && a.Interval < a.Step:
		errs.Add(join(path, "interval"), "%s is shorter than the step (%s)", model.Duration(a.Interval), model.Duration(a.Step))
	}
	for i, m := range a.Metrics {
		if m.Spec.Kind.Window() && m.Spec.For > a.Lifetime-a.Warmup {
			errs.Add(join(metricPath(join(path, "metrics"), i, m.Name), "judge.for"), "%s is longer than the judged part of a canary (lifetime %s − warmup %s): the metric could never fail",
				model.Duration(m.Spec.For), model.Duration(a.Lifetime), model.Duration(a.Warmup))
		}
	}
	if a.Recovery != nil && a.Recovery.Within > time.Duration(c.Server.MaxLifetime) {
		errs.Add(join(path, "recovery.within"), "%s is longer than server.max_lifetime (%s)", model.Duration(a.Recovery.Within), c.Server.MaxLifetime)
	}
	if a.Provider != "" {
		if _, ok := c.Providers[a.Provider]; !ok {
			errs.Add(join(path, "provider"), "unknown provider %q", a.Provider)
		}
	}
	for _, h := range a.Hooks() {
		for i, n := range h.Actuators {
			if _, ok := c.Actuators[n]; !ok {
				errs.Add(index(join(path, h.Key), i), "unknown actuator %q", n)
			}
		}
	}
}

func entryName(section string, key any, errs *Errors) (name, path string, ok bool) {
	name, isStr := key.(string)
	if !isStr {
		name = fmt.Sprint(key)
	}
	path = join(section, name)
	if !isStr || !nameRe.MatchString(name) {
		errs.Add(path, "name must match %s", nameRe)
		return name, path, false
	}
	return name, path, true
}

func (s *Server) validate(path string, errs *Errors) {
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		errs.Add(join(path, "listen"), "must be host:port: %v", err)
	}
	if s.Storage == "" {
		errs.Add(join(path, "storage"), "must not be empty")
	}
	if scheme, _, isURL := strings.Cut(s.Storage, "://"); isURL {
		// The value is not quoted: it may hold a password.
		if sc := strings.ToLower(scheme); sc != "postgres" && sc != "postgresql" {
			errs.Add(join(path, "storage"), "a URL must be postgres://user@host:port/db?sslmode=… (its scheme is not postgres); a path names a bbolt file")
		} else if u, err := url.Parse(s.Storage); err != nil || (u.Host == "" && u.Query().Get("host") == "") {
			errs.Add(join(path, "storage"), "not a valid postgres://user@host:port/db URL (the host is missing or the URL does not parse; escape reserved characters of the password with %%XX)")
		}
	}
	if s.MaxBodyBytes < 1024 || s.MaxBodyBytes > 16<<20 {
		errs.Add(join(path, "max_body_bytes"), "must be between 1024 and 16777216")
	}
	if s.MaxRunningPerAnalysis <= 0 {
		errs.Add(join(path, "max_running_per_analysis"), "must be > 0")
	}
	if s.MaxLifetime <= 0 {
		errs.Add(join(path, "max_lifetime"), "must be > 0")
	}
	for i, o := range s.TrustedOrigins {
		u, err := url.Parse(strings.TrimSuffix(o, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
			errs.Add(fmt.Sprintf("%s[%d]", join(path, "trusted_origins"), i), "%q is not an origin: scheme://host[:port] with http or https, nothing more", o)
		}
	}
	if s.MinInterval <= 0 {
		errs.Add(join(path, "min_interval"), "must be > 0")
	}
	if s.Auth != nil {
		s.Auth.validate(join(path, "auth"), errs)
	}
	if s.TLS != nil {
		s.TLS.validate(join(path, "tls"), errs)
	}
}

func (s *Scheduler) validate(path string, errs *Errors) {
	if s.Workers <= 0 {
		errs.Add(join(path, "workers"), "must be > 0")
	}
	if s.MaxConsecutiveErrors <= 0 {
		errs.Add(join(path, "max_consecutive_errors"), "must be > 0")
	}
	if s.QueryTimeout <= 0 {
		errs.Add(join(path, "query_timeout"), "must be > 0")
	}
	if l := time.Duration(s.Lease); l < time.Second || l > 10*time.Minute {
		errs.Add(join(path, "lease"), "%s must be between 1s and 10m (renewed every third of it; a dead replica's canaries wait that long)", l)
	}
	s.CanaryRateLimit.validate(join(path, "canary_rate_limit"), errs)
}

func parseActuator(name string, raw any, path string, kinds Kinds, defaults *Actuation, errs *Errors) *Actuator {
	var ms yaml.MapSlice
	if !decodeAt(raw, &ms, path, errs) {
		return nil
	}
	a := &Actuator{Name: name}
	for _, it := range ms {
		if it.Key == "type" {
			a.Type, _ = it.Value.(string)
			continue
		}
		a.Raw = append(a.Raw, it)
	}
	if !typeOf("actuator", a.Type, kinds.actuatorTypes(), path, errs) {
		return nil
	}
	if !decodeActuator(a, path, kinds.Actuators[a.Type], defaults, errs) {
		return nil
	}
	return a
}
