package config

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sort"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/field"
	"github.com/canaryd/canaryd/metrics"
)

// Kinds are the provider and actuator types a config file may name, each with what
// decodes, validates and builds it. config knows no backend: the binary registers them
// (cmd/canaryd/kinds.go), a test registers the few it uses.
type Kinds struct {
	Providers map[string]ProviderKind
	Actuators map[string]ActuatorKind
}

// ProviderKind is one provider type. Make it with ProviderKindOf.
type ProviderKind struct {
	// RateLimit is the kind's default `rate_limit`, sized for what such a backend takes.
	RateLimit RateLimit
	decode    func(b []byte, path string, errs *Errors) (any, bool)
	build     func(cfg any, logger *zap.Logger) (metrics.Provider, error)
}

// ProviderKindOf makes the kind of a provider package whose *Config validates itself
// and whose New builds it.
func ProviderKindOf[C any, PC validator[C], P metrics.Provider](newFn func(C, *zap.Logger) (P, error), rateLimit RateLimit) ProviderKind {
	return ProviderKind{
		RateLimit: rateLimit,
		decode:    decodeKind[C, PC],
		build: func(cfg any, logger *zap.Logger) (metrics.Provider, error) {
			return newFn(cfg.(C), logger)
		},
	}
}

// ActuatorDefaults are what an actuator entry of a kind gets for the safety keys it
// leaves out.
type ActuatorDefaults struct {
	// Notification kinds tell people rather than change a system: they are never held
	// for approval, and the breaker and cooldown do not apply to them by default.
	Notification bool
	// Attempts is the default number of tries of a retryable failure.
	Attempts int
}

// ActuatorKind is one actuator type. Make it with ActuatorKindOf.
type ActuatorKind struct {
	Defaults ActuatorDefaults
	// Preflight says whether the kind has a preflight check (its actuator has the
	// Preflight method, see actuators.ActionPreflight); an entry of a kind without one
	// may not set a preflight key.
	Preflight bool
	decode    func(b []byte, path string, errs *Errors) (any, bool)
	build     func(cfg any, o actuators.Options) (actuators.Actuator, error)
}

// ActuatorKindOf makes the kind of an actuator package whose *Config validates itself
// and whose New builds it.
func ActuatorKindOf[C any, PC validator[C], A actuators.Actuator](newFn func(C, actuators.Options) (A, error), d ActuatorDefaults) ActuatorKind {
	_, pre := any(*new(A)).(preflighter)
	if reflect.TypeFor[A]().Kind() == reflect.Interface {
		// The constructor picks the type per entry (pagerduty: alert or change): which
		// one has a check is known only once built, so the keys are the kind's config's
		// to refuse, and the guard runs the check of those that have one.
		pre = true
	}
	return ActuatorKind{
		Defaults:  d,
		Preflight: pre,
		decode:    decodeKind[C, PC],
		build: func(cfg any, o actuators.Options) (actuators.Actuator, error) {
			return newFn(cfg.(C), o)
		},
	}
}

// preflighter is an actuator with a preflight check; only its presence matters here.
type preflighter interface {
	Preflight(ctx context.Context, e actuators.Event) (actuators.Result, error)
}

// validator is a kind's *Config: it reports every invalid key by its YAML path.
type validator[C any] interface {
	*C
	Validate() field.Errors
}

// decodeKind decodes an entry strictly into the kind's Config and validates it, every
// error under the entry's path.
func decodeKind[C any, PC validator[C]](b []byte, path string, errs *Errors) (any, bool) {
	var c C
	if !decodeBytes(b, &c, path, errs) {
		return nil, false
	}
	fes := PC(&c).Validate()
	errs.AddAll(path, fes)
	return c, len(fes) == 0
}

func (k Kinds) providerTypes() []string { return sortedKeys(k.Providers) }
func (k Kinds) actuatorTypes() []string { return sortedKeys(k.Actuators) }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// typeOf takes an entry's `type` and checks it against the registered names.
func typeOf(what, typ string, names []string, path string, errs *Errors) bool {
	switch {
	case typ == "":
		errs.Add(join(path, "type"), "required, one of %v", names)
	case !slices.Contains(names, typ):
		errs.Add(join(path, "type"), "unknown %s type %q, want one of %v", what, typ, names)
	default:
		return true
	}
	return false
}

var errNoKind = errors.New("not decoded by a registered kind")
