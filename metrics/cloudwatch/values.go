package cloudwatch

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// maxValueLen is CloudWatch's limit on a dimension value.
const maxValueLen = 1024

// CheckValue refuses a registration value that could change a query rather than fill it.
// Values land in JSON strings ("Value": "{{ .Cohort.track }}") and in SEARCH expressions
// (SEARCH('{AWS/ELB,LoadBalancer} LoadBalancer="{{ .Vars.lb }}"', 'Sum')), where `"` and
// `'` end a string, `\` escapes, a space, `=`, `*`, a comma, a bracket or a parenthesis
// adds a term, and AND/OR/NOT join them: so only letters, digits and `_ - . : / @ #` are
// allowed, at most 1024 characters.
func (p *Provider) CheckValue(v string) error {
	if n := utf8.RuneCountInString(v); n > maxValueLen {
		return fmt.Errorf("%d characters; a CloudWatch dimension value holds at most %d", n, maxValueLen)
	}
	for _, r := range v {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			continue
		}
		switch r {
		case '_', '-', '.', ':', '/', '@', '#':
			continue
		}
		return fmt.Errorf("%q cannot be in a CloudWatch query value (letters, digits and _ - . : / @ # only)", r)
	}
	return nil
}
