package config

import (
	"errors"
	"github.com/canaryd/canaryd/internal/field"
	"regexp"
	"strings"

	"gopkg.in/yaml.v2"
)

// FieldError is one problem in a config file, at a dotted path such as
// analyses.golden-signals.metrics[error-rate].judge.max.
type FieldError = field.Error

// Errors is every problem found in a file; loading reports them all rather than the first.
type Errors = field.Errors

func join(path, key string) string { return field.Join(path, key) }

func index(path string, i int) string { return field.Index(path, i) }

// rawNode keeps a YAML subtree undecoded, so that each part of the file can be decoded on
// its own and its errors prefixed with the part's path (yaml.v2 errors carry only a line).
type rawNode struct {
	v any
}

func (r *rawNode) UnmarshalYAML(unmarshal func(any) error) error { return unmarshal(&r.v) }

func (r rawNode) MarshalYAML() (any, error) { return r.v, nil }

func (r rawNode) isZero() bool { return r.v == nil }

var (
	lineRe    = regexp.MustCompile(`^line \d+: `)
	unknownRe = regexp.MustCompile(`field (\S+) not found in type \S+`)
	twiceRe   = regexp.MustCompile(`field (\S+) already set in type \S+`)
	typeRe    = regexp.MustCompile(`into (\[\])?\*?configs\.\w+$`)
)

// decodeAt strictly decodes the subtree raw into out and records every error under path.
// Line numbers are dropped from the messages: they would be relative to the re-encoded
// subtree, not to the file, and the path says where the problem is.
func decodeAt(raw any, out any, path string, errs *Errors) bool {
	b, err := yaml.Marshal(raw)
	if err != nil {
		errs.Add(path, "re-encode: %v", err)
		return false
	}
	return decodeBytes(b, out, path, errs)
}

func decodeBytes(b []byte, out any, path string, errs *Errors) bool {
	err := yaml.UnmarshalStrict(b, out)
	if err == nil {
		return true
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, m := range te.Errors {
			errs.Add(path, "%s", cleanYAMLError(m))
		}
		return false
	}
	errs.Add(path, "%s", cleanYAMLError(strings.TrimPrefix(err.Error(), "yaml: ")))
	return false
}

func cleanYAMLError(m string) string {
	m = lineRe.ReplaceAllString(m, "")
	m = unknownRe.ReplaceAllString(m, `unknown field "$1"`)
	m = twiceRe.ReplaceAllString(m, `key "$1" given twice`)
	m = typeRe.ReplaceAllString(m, "into a mapping")
	return m
}
