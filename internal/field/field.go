// Package field is the one error type for a config value that is wrong: config, the
// judge, the providers and the actuators all report with it, each path spelt as in the
// YAML (timeout, command[2], judge.max), and each caller prefixes its own position.
package field

import (
	"fmt"
	"strings"
)

// Error is one problem at a dotted path such as analyses.golden.metrics[1].judge.max;
// an empty Path is the value as a whole.
type Error struct {
	Path string
	Msg  string
	// Line is the line of the file the path is at, when known (0 otherwise); Error
	// leaves it out, check-config prints it as file:line.
	Line int
}

func (e Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errors is every problem found; checks report them all rather than the first.
type Errors []Error

// Add records a problem at path.
func (es *Errors) Add(path, format string, args ...any) {
	*es = append(*es, Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// AddAll records others' problems under path.
func (es *Errors) AddAll(path string, others Errors) {
	for _, e := range others {
		e.Path = Join(path, e.Path)
		*es = append(*es, e)
	}
}

// Err returns es as an error, or nil when empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Join is the path of key under path; an index (key "[2]") is appended without a dot.
func Join(path, key string) string {
	switch {
	case path == "":
		return key
	case key == "":
		return path
	case strings.HasPrefix(key, "["):
		return path + key
	}
	return path + "." + key
}

// Index is the path of element i of a list.
func Index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }
