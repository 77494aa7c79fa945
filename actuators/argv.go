package actuators

import (
	"fmt"
	"github.com/canaryd/canaryd/internal/field"
	"strings"
)

// OptionError is an argv element that starts with "-" although its template did not
// write the dash: a value ("--kubeconfig=/tmp/evil") that would become an option of its
// own. The config writes the option (--namespace={{ .Vars.ns }}), or passes values after
// a literal "--" element.
type OptionError struct {
	// Field is the element's path (command[4]).
	Field string
	// Value is the rendered element.
	Value string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%s: rendered %q starts with \"-\" from a template value: it would be an option of its own "+
		"(write the flag in the config, --name={{ .Vars.x }}, or pass values after a literal \"--\")", e.Field, Truncate(e.Value, 100))
}

// CheckArgv refuses argv elements whose leading dash a template value supplied. ts are the
// elements' templates, argv what they rendered; an element that is exactly "--" in the
// config ends the options, so the elements after it may start with a dash.
func CheckArgv(path string, ts []*Template, argv []string) error {
	for i, a := range argv {
		t := ts[i]
		if t.Static() && t.Text() == "--" {
			return nil
		}
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(t.LiteralPrefix(), "-") {
			return &OptionError{Field: field.Index(path, i), Value: a}
		}
	}
	return nil
}
