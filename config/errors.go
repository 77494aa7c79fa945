package config

import (
	"errors"
	"fmt"
	"github.com/canaryd/canaryd/internal/field"
	"reflect"
	"regexp"
	"slices"
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
	// yaml.v2 names no key, and stops at the first value its unmarshaler refuses: decode
	// each leaf alone to find every key at fault.
	var tree yaml.MapSlice
	if yaml.Unmarshal(b, &tree) == nil && narrow(tree, reflect.TypeOf(out).Elem(), path, errs) {
		return false
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

// narrow decodes every leaf of tree on its own into a new value of t and records each
// one's errors at its key (an unknown key at its parent, with the nearest known key). It
// reports whether it found any.
func narrow(tree yaml.MapSlice, t reflect.Type, path string, errs *Errors) bool {
	found := false
	for _, leaf := range leafPaths(tree, nil) {
		doc := only(tree, leaf)
		b, err := yaml.Marshal(doc)
		if err != nil {
			continue
		}
		err = yaml.UnmarshalStrict(b, reflect.New(t).Interface())
		if err == nil {
			continue
		}
		msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs = te.Errors
		}
		keys := make([]string, len(leaf))
		for i, k := range leaf {
			keys[i] = fmt.Sprint(k)
		}
		for _, m := range msgs {
			found = true
			if u := unknownRe.FindStringSubmatch(m); u != nil {
				parent := keys[:len(keys)-1]
				msg := fmt.Sprintf("unknown field %q", u[1])
				if near := nearest(u[1], yamlKeys(t, parent)); near != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", near)
				}
				errs.Add(joinKeys(path, parent), "%s", msg)
				break
			}
			errs.Add(joinKeys(path, keys), "%s", cleanYAMLError(m))
		}
	}
	return found
}

func joinKeys(path string, keys []string) string {
	for _, k := range keys {
		path = join(path, k)
	}
	return path
}

// leafPaths lists the key paths to every value of tree that is not itself a mapping.
func leafPaths(tree yaml.MapSlice, prefix []any) [][]any {
	var out [][]any
	for _, it := range tree {
		p := append(slices.Clone(prefix), it.Key)
		if sub, ok := it.Value.(yaml.MapSlice); ok && len(sub) > 0 {
			out = append(out, leafPaths(sub, p)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// only is tree with nothing but the value at keys.
func only(tree yaml.MapSlice, keys []any) yaml.MapSlice {
	for _, it := range tree {
		// Keys may be sequences or maps (YAML allows them), which == cannot compare.
		if !reflect.DeepEqual(it.Key, keys[0]) {
			continue
		}
		if len(keys) == 1 {
			return yaml.MapSlice{it}
		}
		sub, _ := it.Value.(yaml.MapSlice)
		return yaml.MapSlice{{Key: it.Key, Value: only(sub, keys[1:])}}
	}
	return nil
}

// yamlKeys are the keys a value of type t takes at keys below it, when t is a struct
// there (nil otherwise).
func yamlKeys(t reflect.Type, keys []string) []string {
	for {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if len(keys) == 0 {
			break
		}
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			f, ok := fieldByKey(t, keys[0])
			if !ok {
				return nil
			}
			t = f.Type
		default:
			return nil
		}
		keys = keys[1:]
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		if k := yamlName(t.Field(i)); k != "" && k != "-" {
			out = append(out, k)
		}
	}
	return out
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if yamlName(t.Field(i)) == key {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

// nearest is the candidate within two edits of key (the closest; none when two are as
// close), for a "did you mean".
func nearest(key string, candidates []string) string {
	best, bestD, tie := "", 3, false
	for _, c := range candidates {
		d := editDistance(key, c)
		switch {
		case d < bestD:
			best, bestD, tie = c, d, false
		case d == bestD:
			tie = true
		}
	}
	if tie || bestD > 2 || bestD >= len(key) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, with a transposition counting
// as one edit (wokrers → workers).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

func cleanYAMLError(m string) string {
	m = lineRe.ReplaceAllString(m, "")
	m = unknownRe.ReplaceAllString(m, `unknown field "$1"`)
	m = twiceRe.ReplaceAllString(m, `key "$1" given twice`)
	m = typeRe.ReplaceAllString(m, "into a mapping")
	return m
}
