package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v2"
)

// FieldError is one problem in a config file, at a dotted path such as
// analyses.golden-signals.metrics[1].judge.max.
type FieldError struct {
	Path string
	Msg  string
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errors is every problem found in a file; loading reports them all rather than the first.
type Errors []FieldError

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

func (es *Errors) add(path, format string, args ...any) {
	*es = append(*es, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// join builds a child path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

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
		errs.add(path, "re-encode: %v", err)
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
			errs.add(path, "%s", cleanYAMLError(m))
		}
		return false
	}
	errs.add(path, "%s", cleanYAMLError(strings.TrimPrefix(err.Error(), "yaml: ")))
	return false
}

func cleanYAMLError(m string) string {
	m = lineRe.ReplaceAllString(m, "")
	m = unknownRe.ReplaceAllString(m, `unknown field "$1"`)
	m = twiceRe.ReplaceAllString(m, `key "$1" given twice`)
	m = typeRe.ReplaceAllString(m, "into a mapping")
	return m
}
