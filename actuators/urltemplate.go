package actuators

import (
	"fmt"
	"github.com/canaryd/canaryd/internal/field"
	"net/url"
	"reflect"
	"strings"
	"text/template/parse"
)

// A URL template's actions are escaped for the part of the URL they land in, so that a
// value fills one path segment or one query value and never adds a segment, a parameter
// or a host ("../../admin/delete?all=1&x=" stays one escaped segment). The escapers are
// appended to each action's pipeline when the template is parsed, as html/template does.
const (
	escHost     = "_canaryd_url_host"
	escUserinfo = "_canaryd_url_userinfo"
	escPath     = "_canaryd_url_path"
	escQuery    = "_canaryd_url_query"
	escFragment = "_canaryd_url_fragment"
)

var urlEscapers = map[string]any{
	escHost: func(v any) (string, error) {
		s := stringOf(v)
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
				return "", fmt.Errorf("value %q cannot be part of the URL's host (letters, digits, '-', '.' and '_' only)", s)
			}
		}
		return s, nil
	},
	escUserinfo: func(v any) string { return strings.ReplaceAll(url.QueryEscape(stringOf(v)), "+", "%20") },
	escPath: func(v any) string {
		s := stringOf(v)
		// A whole segment of dots would climb the path once a server normalises it.
		if strings.Trim(s, ".") == "" && s != "" {
			return strings.Repeat("%2E", len(s))
		}
		return url.PathEscape(s)
	},
	escQuery:    func(v any) string { return url.QueryEscape(stringOf(v)) },
	escFragment: func(v any) string { return url.PathEscape(stringOf(v)) },
}

// stringOf prints v as text/template would: pointers are followed, nil is empty.
func stringOf(v any) string {
	rv := reflect.ValueOf(v)
	for rv.IsValid() && (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface) {
		if rv.IsNil() {
			return ""
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return ""
	}
	return fmt.Sprint(rv.Interface())
}

type urlPart int

const (
	partScheme urlPart = iota
	partAuthority
	partPath
	partQuery
	partFragment
)

// ParseURLTemplate parses a URL template and escapes each of its actions for where it
// lands: a host label (letters, digits, '-', '.', '_' only, else the render fails),
// userinfo, a path segment, a query key or value, the fragment. The scheme and the
// "://" must be literal: a value never chooses where canaryd sends a request's scheme.
// An action whose pipeline already ends in urlquery is left as it is.
func ParseURLTemplate(name, text string) (*Template, error) {
	t, err := ParseTemplate(name, text)
	if err != nil {
		return nil, err
	}
	w := &urlRewriter{}
	if t.tmpl.Tree != nil && t.tmpl.Tree.Root != nil {
		w.list(t.tmpl.Tree.Root)
	}
	w.flush(escHost)
	if w.err != nil {
		return nil, w.err
	}
	return t, nil
}

type urlRewriter struct {
	part   urlPart
	scheme strings.Builder // the literal text before "://"
	// pending are the authority's actions: userinfo if an "@" follows, else host.
	pending []*parse.PipeNode
	err     error
}

func (w *urlRewriter) list(l *parse.ListNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			w.text(string(n.Text))
		case *parse.ActionNode:
			if len(n.Pipe.Decl) == 0 {
				w.action(n.Pipe)
			}
		case *parse.IfNode:
			w.branch(&n.BranchNode)
		case *parse.RangeNode:
			w.branch(&n.BranchNode)
		case *parse.WithNode:
			w.branch(&n.BranchNode)
		case *parse.CommentNode:
		default:
			w.fail("%s is not supported in a URL template", n)
		}
	}
}

// branch walks both branches from the same part; the URL is as far along after it as
// the furthest branch went.
func (w *urlRewriter) branch(b *parse.BranchNode) {
	start := w.part
	w.list(b.List)
	after := w.part
	w.part = start
	w.list(b.ElseList)
	w.part = max(after, w.part)
}

func (w *urlRewriter) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf(format, args...)
	}
}

func (w *urlRewriter) text(s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch w.part {
		case partScheme:
			w.scheme.WriteByte(c)
			if strings.HasSuffix(w.scheme.String(), "://") {
				w.part = partAuthority
			}
		case partAuthority:
			switch c {
			case '@':
				w.flush(escUserinfo)
			case '/':
				w.flush(escHost)
				w.part = partPath
			case '?':
				w.flush(escHost)
				w.part = partQuery
			case '#':
				w.flush(escHost)
				w.part = partFragment
			}
		case partPath:
			switch c {
			case '?':
				w.part = partQuery
			case '#':
				w.part = partFragment
			}
		case partQuery:
			if c == '#' {
				w.part = partFragment
			}
		}
	}
}

func (w *urlRewriter) action(p *parse.PipeNode) {
	switch w.part {
	case partScheme:
		w.fail("URL template: write the scheme and \"://\" literally before any {{ }} (a value must not choose them)")
	case partAuthority:
		w.pending = append(w.pending, p)
	case partPath:
		escape(p, escPath)
	case partQuery:
		escape(p, escQuery)
	case partFragment:
		escape(p, escFragment)
	}
}

func (w *urlRewriter) flush(fn string) {
	for _, p := range w.pending {
		escape(p, fn)
	}
	w.pending = nil
}

func escape(p *parse.PipeNode, fn string) {
	if n := len(p.Cmds); n > 0 {
		if last := p.Cmds[n-1]; len(last.Args) == 1 {
			if id, ok := last.Args[0].(*parse.IdentifierNode); ok && id.Ident == "urlquery" {
				return
			}
		}
	}
	p.Cmds = append(p.Cmds, &parse.CommandNode{
		NodeType: parse.NodeCommand, Pos: p.Pos,
		Args: []parse.Node{parse.NewIdentifier(fn).SetTree(nil).SetPos(p.Pos)},
	})
}

// CheckURLTemplate parses a URL template under field, recording what is wrong; a URL
// without actions is checked as a URL now. It returns nil when the template is unusable.
func CheckURLTemplate(es *field.Errors, field, text string, secrets ...string) *Template {
	t, err := ParseURLTemplate(field, text)
	if err != nil {
		es.Add(field, "%v", err)
		return nil
	}
	if err := checkFields(t, secrets); err != nil {
		es.Add(field, "%v", err)
	}
	CheckURL(es, field, text)
	return t
}
