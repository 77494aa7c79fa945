package prometheus

import (
	"fmt"
	"strings"
	"unicode"
)

// CheckValue refuses a registration value that would not stay inside a PromQL string.
// Templates paste values into double-quoted label values (`track="{{ .Cohort.track }}"`),
// where `"` ends the string, `\` starts an escape, and a newline or any control character
// is not allowed; everything else is the value. (In a regex matcher, `=~"…"`, a value's
// regex characters are the template author's to escape; the shipped analyses match with
// `=` only.)
func (p *Provider) CheckValue(v string) error {
	if i := strings.IndexFunc(v, func(r rune) bool { return r == '"' || r == '\\' || unicode.IsControl(r) }); i >= 0 {
		return fmt.Errorf("%q cannot be in a PromQL label value (no double quote, backslash or control character)", []rune(v[i:])[0])
	}
	return nil
}
