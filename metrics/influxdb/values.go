package influxdb

import (
	"fmt"
	"strings"
	"unicode"
)

// CheckValue refuses a registration value that would not stay inside an InfluxQL string.
// Templates paste values into single-quoted tag values ("track" = '{{ .Cohort.track }}')
// or double-quoted identifiers, where `'` and `"` end them and `\` escapes; a `;` would
// start another statement if a template left a value unquoted, and a control character
// has no place in a tag. (In a regex, =~ /…/, the value's regex characters and `/` are
// the template author's to escape.)
func (p *Provider) CheckValue(v string) error {
	if i := strings.IndexFunc(v, func(r rune) bool {
		return r == '\'' || r == '"' || r == '\\' || r == ';' || unicode.IsControl(r)
	}); i >= 0 {
		return fmt.Errorf("%q cannot be in an InfluxQL string (no quote, backslash, semicolon or control character)", []rune(v[i:])[0])
	}
	return nil
}
