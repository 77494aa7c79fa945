package graphite

import (
	"fmt"
	"unicode"
)

// maxValue is the longest value kept: a path node is a file name on the server.
const maxValue = 255

// CheckValue refuses a registration value that is not one plain node of a Graphite path.
// Templates paste values into a path (app.{{ .Cohort.track }}.latency) or a function's
// string argument, where `.` adds a node, `*`, `?`, `[`, `{` and `,` widen the match to
// other series, `(`, `)` and `,` call or end functions, and quotes end a string.
// Graphite's own convention for a dotted value (a version) is to write `_` for `.`.
func (p *Provider) CheckValue(v string) error {
	if len(v) > maxValue {
		return fmt.Errorf("longer than %d bytes (a Graphite path node)", maxValue)
	}
	for _, r := range v {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == ':' || r == '#' || r == '@') {
			return fmt.Errorf("%q cannot be in a Graphite path node (letters, digits, _ - : # @ only; write a version's dots as _)", r)
		}
	}
	return nil
}
