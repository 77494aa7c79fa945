package eval

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v2"
)

// ParseVariant builds a target from another with some settings changed, so that a
// proposed tuning is measured next to what ships. The spec reads
//
//	NAME=BASE:key=value,metric.key=value,...
//
// A plain key is an analysis setting (warmup=5m, score={pass: 90, marginal: 70}); a
// dotted one is a key of that metric's judge block (error-rate.allowed_increase=1.5).
// Values are YAML scalars or flow collections; the result is validated as any analysis.
func ParseVariant(spec string, targets []Target) (Target, error) {
	name, rest, ok := strings.Cut(spec, "=")
	if !ok || name == "" {
		return Target{}, fmt.Errorf("variant %q: want NAME=BASE:key=value[,key=value]", spec)
	}
	baseName, list, ok := strings.Cut(rest, ":")
	if !ok || list == "" {
		return Target{}, fmt.Errorf("variant %q: want NAME=BASE:key=value[,key=value]", spec)
	}
	var base *Target
	for i := range targets {
		if targets[i].Name == baseName {
			base = &targets[i]
		}
	}
	if base == nil {
		return Target{}, fmt.Errorf("variant %s: no analysis %q to start from", name, baseName)
	}
	var src yaml.MapSlice
	if err := yaml.Unmarshal(base.Source, &src); err != nil {
		return Target{}, fmt.Errorf("variant %s: %w", name, err)
	}
	for _, kv := range splitTop(list) {
		key, val, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return Target{}, fmt.Errorf("variant %s: %q: want key=value", name, kv)
		}
		var v any
		if err := yaml.Unmarshal([]byte(val), &v); err != nil {
			return Target{}, fmt.Errorf("variant %s: %s: %w", name, key, err)
		}
		metric, jkey, nested := strings.Cut(key, ".")
		if !nested {
			src = setKey(src, key, v)
			continue
		}
		if err := setJudgeKey(src, metric, jkey, v); err != nil {
			return Target{}, fmt.Errorf("variant %s: %w", name, err)
		}
	}
	out, err := yaml.Marshal(src)
	if err != nil {
		return Target{}, fmt.Errorf("variant %s: %w", name, err)
	}
	t, err := newTarget(name, out, base.asWritten)
	if err != nil {
		return Target{}, fmt.Errorf("variant %s: %w", name, err)
	}
	t.File = base.File
	return t, nil
}

// splitTop splits on commas outside brackets and braces, so flow values keep theirs.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func setKey(m yaml.MapSlice, key string, v any) yaml.MapSlice {
	for i := range m {
		if m[i].Key == key {
			m[i].Value = v
			return m
		}
	}
	return append(m, yaml.MapItem{Key: key, Value: v})
}

func setJudgeKey(src yaml.MapSlice, metric, key string, v any) error {
	for _, it := range src {
		if it.Key != "metrics" {
			continue
		}
		list, _ := it.Value.([]any)
		for i, raw := range list {
			m, _ := raw.(yaml.MapSlice)
			found := false
			for _, f := range m {
				if f.Key == "name" && f.Value == metric {
					found = true
				}
			}
			if !found {
				continue
			}
			for j := range m {
				if m[j].Key == "judge" {
					j2, _ := m[j].Value.(yaml.MapSlice)
					m[j].Value = setKey(j2, key, v)
					list[i] = m
					return nil
				}
			}
			list[i] = append(m, yaml.MapItem{Key: "judge", Value: yaml.MapSlice{{Key: key, Value: v}}})
			return nil
		}
	}
	return fmt.Errorf("no metric %q", metric)
}
