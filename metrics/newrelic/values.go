package newrelic

import (
	"fmt"
	"strings"
	"unicode"
)

// CheckValue refuses a registration value that would not stay inside an NRQL string.
// Templates paste values into single-quoted strings (appName = '{{ .Vars.app }}'), where
// `'` ends the string and `\` escapes; a backtick quotes an attribute name, `"` is not
// NRQL's string quote but has no place in a tag, and a control character none in a
// query.
func (p *Provider) CheckValue(v string) error {
	if i := strings.IndexFunc(v, func(r rune) bool {
		return r == '\'' || r == '"' || r == '\\' || r == '`' || unicode.IsControl(r)
	}); i >= 0 {
		return fmt.Errorf("%q cannot be in an NRQL string (no quote, backtick, backslash or control character)", []rune(v[i:])[0])
	}
	return nil
}
