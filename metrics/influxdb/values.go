package influxdb

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckValue refuses a registration value that would not stay inside an InfluxQL string.
// Templates paste values into single-quoted tag values ("track" = '{{ .Cohort.track }}')
// or double-quoted identifiers, where `'` and `"` end them and `\` escapes; a `;` would
// start another statement if a template left a value unquoted, and a control character
// has no place in a tag. (In a regex, =~ /…/, the value's regex characters and `/` are
// the template author's to escape.) A Flux provider refuses nothing: EscapeValue makes
// every value a Flux string's content.
func (p *Provider) CheckValue(v string) error {
	if p.cfg.Language == LanguageFlux {
		return nil
	}
	if i := strings.IndexFunc(v, func(r rune) bool {
		return r == '\'' || r == '"' || r == '\\' || r == ';' || unicode.IsControl(r)
	}); i >= 0 {
		return fmt.Errorf("%q cannot be in an InfluxQL string (no quote, backslash, semicolon or control character)", []rune(v[i:])[0])
	}
	return nil
}

// EscapeValue is how a registration value is pasted into this provider's queries: for
// Flux, as the content of a string literal ("{{ .Cohort.track }}"), so that no value can
// end the string or interpolate an expression (${…}); InfluxQL values are pasted as they
// are (CheckValue refused those that would not stay inside a string).
func (p *Provider) EscapeValue(v string) string {
	if p.cfg.Language != LanguageFlux {
		return v
	}
	return FluxString(v)
}

// FluxString escapes s as the content of a Flux string literal: `\` and `"` by a
// backslash, newline, carriage return and tab as \n, \r, \t, every `$` as \x24 (so that
// none can start an interpolation, ${…}, even with a `{` the template writes after the
// value), and other control characters and bytes that are not UTF-8 as \xHH.
func FluxString(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool {
		return r == '\\' || r == '"' || r == '$' || r < 0x20 || r == 0x7f || r == utf8.RuneError
	}) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\' || r == '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '$' || r < 0x20 || r == 0x7f || (r == utf8.RuneError && size == 1):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
