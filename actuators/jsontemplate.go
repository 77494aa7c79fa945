package actuators

import (
	"encoding/json"
	"fmt"
	"github.com/canaryd/canaryd/internal/field"
	"reflect"
	"text/template/parse"
)

// A JSON body template's actions are escaped for where they land, so a value (a reason,
// a variable, a secret) can never end a string or add a key: inside a JSON string an
// action's text is escaped as string content ({"token": "{{ .Secrets.t }}"} with a quote
// in the secret stays one string); outside a string it becomes one JSON value (a number
// or boolean as is, any other text as a JSON string). An action already ending in json
// is left as it is.
const (
	escJSONString = "_canaryd_json_string"
	escJSONValue  = "_canaryd_json_value"
)

var jsonEscapers = map[string]any{
	escJSONString: func(v any) (string, error) {
		b, err := marshalNoHTML(stringOf(v))
		if err != nil {
			return "", err
		}
		return string(b[1 : len(b)-1]), nil
	},
	escJSONValue: func(v any) (string, error) {
		rv := reflect.ValueOf(v)
		for rv.IsValid() && (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface) {
			if rv.IsNil() {
				return "null", nil
			}
			rv = rv.Elem()
		}
		if !rv.IsValid() {
			return "null", nil
		}
		switch rv.Kind() {
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
			b, err := json.Marshal(rv.Interface())
			return string(b), err
		case reflect.String:
			// Text that is a JSON number ({{ .ScoreText }}: 40.0) stays a number.
			s := rv.String()
			var n json.Number
			if json.Unmarshal([]byte(s), &n) == nil && s == n.String() {
				return s, nil
			}
		}
		b, err := marshalNoHTML(stringOf(v))
		return string(b), err
	},
}

func marshalNoHTML(s string) ([]byte, error) { return MarshalJSON(s) }

// ParseJSONTemplate parses a JSON body template and escapes each of its actions for
// where it lands (see jsonEscapers). An {{ if }} or {{ range }} must leave the JSON as
// inside or outside a string as it found it.
func ParseJSONTemplate(name, text string) (*Template, error) {
	t, err := ParseTemplate(name, text)
	if err != nil {
		return nil, err
	}
	w := &jsonRewriter{}
	if t.tmpl.Tree != nil && t.tmpl.Tree.Root != nil {
		w.list(t.tmpl.Tree.Root)
	}
	if w.err != nil {
		return nil, fmt.Errorf("JSON template: %w", w.err)
	}
	return t, nil
}

// jsonRewriter walks a template in text order, tracking whether the JSON is inside a
// string.
type jsonRewriter struct {
	inString bool
	escaped  bool // the last string byte was a backslash
	err      error
}

func (w *jsonRewriter) list(l *parse.ListNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			w.text(n.Text)
		case *parse.ActionNode:
			if len(n.Pipe.Decl) > 0 {
				continue // {{ $x := … }} prints nothing
			}
			if w.inString {
				escape(n.Pipe, escJSONString)
			} else if !endsIn(n.Pipe, "json") {
				escape(n.Pipe, escJSONValue)
			}
		case *parse.IfNode:
			w.branch(&n.BranchNode)
		case *parse.RangeNode:
			w.branch(&n.BranchNode)
		case *parse.WithNode:
			w.branch(&n.BranchNode)
		case *parse.CommentNode:
		default:
			if w.err == nil {
				w.err = fmt.Errorf("%s is not supported in a JSON body", n)
			}
		}
	}
}

func (w *jsonRewriter) branch(b *parse.BranchNode) {
	start := *w
	w.list(b.List)
	if w.inString != start.inString && w.err == nil {
		w.err = fmt.Errorf("%s opens or closes a JSON string; keep the quotes outside it", b)
	}
	w.inString, w.escaped = start.inString, start.escaped
	w.list(b.ElseList)
	if w.inString != start.inString && w.err == nil {
		w.err = fmt.Errorf("the else of %s opens or closes a JSON string; keep the quotes outside it", b)
	}
	w.inString, w.escaped = start.inString, start.escaped
}

func (w *jsonRewriter) text(s []byte) {
	for _, c := range s {
		switch {
		case w.escaped:
			w.escaped = false
		case w.inString && c == '\\':
			w.escaped = true
		case c == '"':
			w.inString = !w.inString
		}
	}
}

func endsIn(p *parse.PipeNode, fn string) bool {
	if n := len(p.Cmds); n > 0 {
		if last := p.Cmds[n-1]; len(last.Args) >= 1 {
			if id, ok := last.Args[0].(*parse.IdentifierNode); ok && id.Ident == fn {
				return true
			}
		}
	}
	return false
}

// CheckJSONTemplate parses a JSON body template under field, recording what is wrong.
func CheckJSONTemplate(es *field.Errors, field, text string) *Template {
	t, err := ParseJSONTemplate(field, text)
	if err != nil {
		es.Add(field, "%v", err)
		return nil
	}
	return t
}
