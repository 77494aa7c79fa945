package v1query

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// Cohorted is a single metric query whose scope filters on one cohort tag
// (avg:m{service:checkout,track:canary} by {host}.as_count()), split around that tag's
// value, so that the queries of several cohorts that differ only there can be sent as
// one query grouped by the tag.
type Cohorted struct {
	head   string   // [aggregator:]metric
	others []string // the scope's other terms, in order
	value  string   // the cohort tag's value
	by     []string // the group-by tags, the cohort tag excluded
	rest   string   // the modifiers after the scope and by: .as_count(), .rollup(…)
}

var (
	// head{scope}[ by {tags}]rest: one metric query; the rest is checked below.
	cohortQuery = regexp.MustCompile(`^((?:[a-z0-9]+:)?[A-Za-z][A-Za-z0-9_.]*)\{([^{}]*)\}(?:\s+by\s+\{([^{}]*)\})?(.*)$`)
	// A scope term in the comma syntax: a tag, its key:value, a negation, wildcards.
	// Anything else (spaces, parentheses, quotes, the AND/OR/IN syntax) is not merged.
	scopeTerm = regexp.MustCompile(`^!?[A-Za-z][A-Za-z0-9_\-:./*]*$`)
	byTag     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_\-./]*$`)
	// Modifiers: .name(args) with flat arguments, any number of them.
	modifiers = regexp.MustCompile(`^(?:\.[a-z_]+\([A-Za-z0-9_, .]*\))*$`)
)

// ParseCohorted splits q around the value of its scope's tag term (tag:value). It
// refuses (with the reason) anything it could not merge without changing what the query
// selects: not one metric query, a scope outside the comma syntax, the tag absent or
// present more than once or negated, a value that is not a plain lowercase tag value
// (Datadog stores tag values in lowercase, so the answer's tags would not match it;
// wildcards, commas, braces, spaces and quotes are refused too).
func ParseCohorted(q, tag string) (Cohorted, error) {
	m := cohortQuery.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return Cohorted{}, errors.New("not a single metric query")
	}
	c := Cohorted{head: m[1], rest: m[4]}
	if !modifiers.MatchString(c.rest) {
		return Cohorted{}, fmt.Errorf("%q after the scope is not a chain of modifiers", c.rest)
	}
	found := 0
	for _, term := range strings.Split(m[2], ",") {
		term = strings.TrimSpace(term)
		if !scopeTerm.MatchString(term) {
			return Cohorted{}, fmt.Errorf("scope term %q is outside the comma syntax", term)
		}
		k, v, _ := strings.Cut(strings.TrimPrefix(term, "!"), ":")
		if k != tag {
			if term != "*" {
				c.others = append(c.others, term)
			}
			continue
		}
		if strings.HasPrefix(term, "!") {
			return Cohorted{}, fmt.Errorf("the scope negates %s", tag)
		}
		if err := cohortValue(v); err != nil {
			return Cohorted{}, err
		}
		c.value = v
		found++
	}
	switch {
	case found == 0:
		return Cohorted{}, fmt.Errorf("the scope has no %s:<value>", tag)
	case found > 1:
		return Cohorted{}, fmt.Errorf("the scope has %s more than once", tag)
	}
	if m[3] != "" {
		for _, b := range strings.Split(m[3], ",") {
			b = strings.TrimSpace(b)
			if !byTag.MatchString(b) {
				return Cohorted{}, fmt.Errorf("group-by tag %q is not a tag key", b)
			}
			if b != tag {
				c.by = append(c.by, b)
			}
		}
	}
	return c, nil
}

// cohortValue accepts a value that selects exactly the series tagged with it: letters,
// digits, _ - : . / only, none in upper case, at most 200 characters.
func cohortValue(v string) error {
	if v == "" {
		return errors.New("the cohort tag has no value")
	}
	switch strings.ToLower(v) {
	case "and", "or", "not", "in":
		// A word of the boolean syntax, as a value in the IN list.
		return fmt.Errorf("the cohort tag's value %q is an operator of Datadog's query syntax", v)
	}
	if len([]rune(v)) > 200 {
		return errors.New("the cohort tag's value is longer than a tag")
	}
	for _, r := range v {
		switch {
		case unicode.IsUpper(r):
			return fmt.Errorf("the cohort tag's value %q has upper case (Datadog answers its tags in lower case)", v)
		case unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_-:./", r):
		default:
			return fmt.Errorf("the cohort tag's value %q has %q, which a plain tag value does not", v, r)
		}
	}
	return nil
}

// Value is the cohort tag's value.
func (c Cohorted) Value() string { return c.value }

// Key is the query without the cohort's value: queries with the same key differ only in
// it, and are merged.
func (c Cohorted) Key() string {
	return c.head + "\x00" + strings.Join(c.others, ",") + "\x00" + strings.Join(c.by, ",") + "\x00" + c.rest
}

// Merge is the query for every value at once, grouped by the tag, in the boolean syntax
// Datadog documents for a scope on several values (the comma syntax cannot say OR, and
// the two syntaxes do not mix): avg:m{service:checkout AND track IN (baseline, canary)}
// by {host,track}.as_count(). Each value must come from ParseCohorted.
func (c Cohorted) Merge(tag string, values []string) string {
	var b strings.Builder
	b.WriteString(c.head)
	b.WriteByte('{')
	for _, t := range c.others {
		if neg, ok := strings.CutPrefix(t, "!"); ok {
			t = "NOT " + neg
		}
		b.WriteString(t)
		b.WriteString(" AND ")
	}
	b.WriteString(tag)
	b.WriteString(" IN (")
	b.WriteString(strings.Join(values, ", "))
	b.WriteString(")} by {")
	b.WriteString(strings.Join(append(append([]string(nil), c.by...), tag), ","))
	b.WriteByte('}')
	b.WriteString(c.rest)
	return b.String()
}
