package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"
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
	// refs are the template's direct references to a variable (.Cohort.x, $.Vars.y), in
	// the order they are written: where Render looks for the one a failed render missed.
	refs []varRef
}

type varRef struct {
	scope, name string
	node        parse.Node
}

// MissingVarError is a render that needed a variable the data does not hold: Scope is
// "Cohort" or "Vars", Name the variable. Its text is text/template's own.
type MissingVarError struct {
	Scope string
	Name  string
	Err   error
}

func (e *MissingVarError) Error() string { return e.Err.Error() }
func (e *MissingVarError) Unwrap() error { return e.Err }

// ParseQuery parses a query template. A missing key is an error when rendered (never the
// text "<no value>" inside a query).
func ParseQuery(name, text string) (*QueryTemplate, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse query template: %w", err)
	}
	q := &QueryTemplate{tmpl: t}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			q.refs = collectRefs(q.refs, tt.Root)
		}
	}
	return q, nil
}

// Render executes the template for one cohort. A variable the template needs and data
// lacks is a *MissingVarError (wrapped).
func (q *QueryTemplate) Render(data TemplateData) (string, error) {
	if data.Cohort == nil {
		data.Cohort = map[string]string{}
	}
	if data.Vars == nil {
		data.Vars = map[string]string{}
	}
	var buf bytes.Buffer
	if err := q.tmpl.Execute(&buf, data); err != nil {
		if mv := q.missing(err, data); mv != nil {
			err = mv
		}
		return "", fmt.Errorf("render query %q: %w", q.tmpl.Name(), err)
	}
	return buf.String(), nil
}

// missing finds the variable a failed execution needed: among the references to a
// variable data lacks, the one at the place the execution stopped (text/template names
// that place as ErrorContext does), else the only one.
func (q *QueryTemplate) missing(err error, data TemplateData) *MissingVarError {
	var ee template.ExecError
	if !errors.As(err, &ee) {
		return nil
	}
	var absent []varRef
	for _, r := range q.refs {
		m := data.Cohort
		if r.scope == "Vars" {
			m = data.Vars
		}
		if _, ok := m[r.name]; !ok {
			absent = append(absent, r)
		}
	}
	for _, r := range absent {
		if loc, _ := q.tmpl.ErrorContext(r.node); strings.Contains(err.Error(), loc+":") {
			return &MissingVarError{Scope: r.scope, Name: r.name, Err: err}
		}
	}
	if len(absent) == 1 {
		return &MissingVarError{Scope: absent[0].scope, Name: absent[0].name, Err: err}
	}
	return nil
}

// collectRefs appends the variable references under n, in the order they are written.
func collectRefs(refs []varRef, n parse.Node) []varRef {
	add := func(node parse.Node, ident []string) {
		if len(ident) >= 2 && (ident[0] == "Cohort" || ident[0] == "Vars") {
			refs = append(refs, varRef{scope: ident[0], name: ident[1], node: node})
		}
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n != nil {
			for _, c := range n.Nodes {
				refs = collectRefs(refs, c)
			}
		}
	case *parse.ActionNode:
		refs = collectRefs(refs, n.Pipe)
	case *parse.PipeNode:
		if n != nil {
			for _, c := range n.Cmds {
				refs = collectRefs(refs, c)
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			refs = collectRefs(refs, a)
		}
	case *parse.FieldNode:
		add(n, n.Ident)
	case *parse.VariableNode:
		if len(n.Ident) > 0 && n.Ident[0] == "$" {
			add(n, n.Ident[1:])
		}
	case *parse.ChainNode:
		refs = collectRefs(refs, n.Node)
	case *parse.IfNode:
		refs = collectBranch(refs, &n.BranchNode)
	case *parse.RangeNode:
		refs = collectBranch(refs, &n.BranchNode)
	case *parse.WithNode:
		refs = collectBranch(refs, &n.BranchNode)
	case *parse.TemplateNode:
		refs = collectRefs(refs, n.Pipe)
	}
	return refs
}

func collectBranch(refs []varRef, b *parse.BranchNode) []varRef {
	refs = collectRefs(refs, b.Pipe)
	refs = collectRefs(refs, b.List)
	return collectRefs(refs, b.ElseList)
}
