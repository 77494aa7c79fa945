package datadog

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// maxTagLen is Datadog's limit on a tag's length.
const maxTagLen = 200

// CheckValue refuses a registration value that could not be a Datadog tag value. Values
// land in scopes such as `{service:{{ .Vars.app }},track:{{ .Cohort.track }}}`, where a
// `,` adds a tag, `!` negates one, `*` is a wildcard, `}` ends the scope and a space or
// `OR` starts another expression: so only what a tag may hold is allowed — Unicode
// letters and digits, `_`, `-`, `:`, `.` and `/` — at most 200 characters.
func (p *Provider) CheckValue(v string) error {
	return checkTagValue(v)
}

func checkTagValue(v string) error {
	if n := utf8.RuneCountInString(v); n > maxTagLen {
		return fmt.Errorf("%d characters; a Datadog tag holds at most %d", n, maxTagLen)
	}
	for _, r := range v {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			continue
		}
		switch r {
		case '_', '-', ':', '.', '/':
			continue
		}
		return fmt.Errorf("%q cannot be in a Datadog tag value (letters, digits and _ - : . / only)", r)
	}
	return nil
}
