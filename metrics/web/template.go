package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// Data is what the url and body templates see for one query.
type Data struct {
	// Query is the metric's query as rendered for the cohort (holding its values).
	Query string
	// Start and End bound the window (UTC); Step is the analysis' step.
	Start, End time.Time
	Step       time.Duration
}

// sample is the data a template is tried with at load.
var sample = Data{Query: "q", Start: time.Unix(1700000000, 0).UTC(), End: time.Unix(1700000600, 0).UTC(), Step: time.Minute}

// The places a template action can land, each with its escaper.
const (
	escPath       = "webEscapePath"
	escQuery      = "webEscapeQuery"
	escJSONString = "webEscapeJSONString"
	escJSON       = "webEscapeJSON"
)

var escapers = template.FuncMap{
	escPath: func(v any) (string, error) {
		s := fmt.Sprint(v)
		if s == "." || s == ".." {
			return "", fmt.Errorf("%q cannot be a URL path segment", s)
		}
		return url.PathEscape(s), nil
	},
	escQuery: func(v any) string { return url.QueryEscape(fmt.Sprint(v)) },
	escJSONString: func(v any) (string, error) {
		b, err := json.Marshal(fmt.Sprint(v))
		if err != nil {
			return "", err
		}
		return string(b[1 : len(b)-1]), nil
	},
	escJSON: func(v any) (string, error) {
		if d, ok := v.(time.Duration); ok {
			v = d.String()
		}
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// kind is what a template produces: the escaping each action needs follows from it.
type kind int

const (
	kindURL kind = iota
	kindJSON
	kindForm
)

// parseEscaped parses a url or body template and appends to every action the escaper of
// the place it lands (as html/template does for HTML): a URL path segment, a query
// parameter, a JSON string or a JSON value, or a form field. So a value (the rendered
// query, which holds the registration's values) can never end a path segment, add a
// parameter or a JSON key. To keep that decidable the template holds text and actions
// only (no if, range, with, define, or variables).
func parseEscaped(name, text string, k kind) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(escapers).Parse(text)
	if err != nil {
		return nil, err
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("must not define templates")
	}
	var before strings.Builder
	first := true
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			before.Write(n.Text)
		case *parse.ActionNode:
			if len(n.Pipe.Decl) > 0 {
				return nil, errors.New("must not declare variables")
			}
			esc, err := placeOf(k, before.String(), first)
			if err != nil {
				return nil, err
			}
			first = false
			n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{
				NodeType: parse.NodeCommand, Pos: n.Pos,
				Args: []parse.Node{parse.NewIdentifier(esc).SetTree(t.Tree).SetPos(n.Pos)},
			})
			if esc == escJSON {
				before.WriteString("0")
			} else {
				before.WriteString("x")
			}
		default:
			return nil, fmt.Errorf("holds %s: only text and {{ … }} actions are allowed, so that each value can be escaped for where it lands", strings.SplitN(n.String(), " ", 2)[0])
		}
	}
	return t, nil
}

// placeOf is the escaper of an action written after the text before.
func placeOf(k kind, before string, first bool) (string, error) {
	switch k {
	case kindForm:
		return escQuery, nil
	case kindJSON:
		if inJSONString(before) {
			return escJSONString, nil
		}
		return escJSON, nil
	}
	if first {
		i := strings.Index(before, "://")
		if i < 0 || !strings.ContainsAny(before[i+3:], "/?") {
			return "", errors.New("the scheme and host must be written out: a {{ … }} may only be in the path or the query")
		}
	}
	switch {
	case strings.Contains(before, "#"):
		return "", errors.New("must not have a {{ … }} in the fragment")
	case strings.Contains(before, "?"):
		return escQuery, nil
	}
	return escPath, nil
}

// inJSONString reports whether the end of text is inside a JSON string.
func inJSONString(text string) bool {
	in := false
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '\\':
			if in {
				i++
			}
		case '"':
			in = !in
		}
	}
	return in
}

func execute(t *template.Template, d Data) (string, error) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return "", err
	}
	return buf.String(), nil
}
