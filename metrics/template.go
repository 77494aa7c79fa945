package metrics

import (
	"bytes"
	"fmt"
	"text/template"
)

// TemplateData is what a query template sees: .Cohort holds the cohort's variables from
// the registration (e.g. track=canary), .Vars the variables shared by both cohorts.
type TemplateData struct {
	Cohort map[string]string
	Vars   map[string]string
}

// QueryTemplate is a parsed query template. Parse once at config load, render per cohort.
type QueryTemplate struct {
	tmpl *template.Template
}

// ParseQuery parses a query template. A missing key is an error when rendered (never the
// text "<no value>" inside a query).
func ParseQuery(name, text string) (*QueryTemplate, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse query template: %w", err)
	}
	return &QueryTemplate{tmpl: t}, nil
}

// Render executes the template for one cohort.
func (q *QueryTemplate) Render(data TemplateData) (string, error) {
	if data.Cohort == nil {
		data.Cohort = map[string]string{}
	}
	if data.Vars == nil {
		data.Vars = map[string]string{}
	}
	var buf bytes.Buffer
	if err := q.tmpl.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("render query %q: %w", q.tmpl.Name(), err)
	}
	return buf.String(), nil
}
