package config

import (
	"fmt"
	"regexp"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// lines maps the paths of a file's keys and list items to the line they start on, so
// that every error, found by the path the decoding gives it, can name its line. A list
// item that has a valid name is under both its index and its name (metrics[error-rate]).
type lines map[string]int

// scanLines walks data's YAML tree, recording each path's line and every key given twice
// in a mapping (yaml.v2 stops at the first one, hiding every other error). It returns the
// document without the repeated keys (the first stays), for the decoding to go on.
func scanLines(data []byte, errs *Errors) (lines, []byte) {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return lines{}, data
	}
	ls := lines{}
	dups := false
	var walk func(n *yamlv3.Node, path string)
	walk = func(n *yamlv3.Node, path string) {
		if path != "" {
			if _, ok := ls[path]; !ok {
				ls[path] = n.Line
			}
		}
		switch n.Kind {
		case yamlv3.MappingNode:
			first := map[string]int{}
			kept := n.Content[:0:0]
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if line, seen := first[k.Value]; seen {
					dups = true
					*errs = append(*errs, FieldError{Path: join(path, k.Value), Msg: fmt.Sprintf("given twice (first on line %d); the first is used", line), Line: k.Line})
					continue
				}
				first[k.Value] = k.Line
				kept = append(kept, k, v)
				if _, ok := ls[join(path, k.Value)]; !ok {
					ls[join(path, k.Value)] = k.Line
				}
				walk(v, join(path, k.Value))
			}
			n.Content = kept
		case yamlv3.SequenceNode:
			for i, item := range n.Content {
				ls[index(path, i)] = item.Line
				if name := itemName(item); nameRe.MatchString(name) {
					if _, ok := ls[path+"["+name+"]"]; !ok {
						ls[path+"["+name+"]"] = item.Line
					}
					walk(item, path+"["+name+"]")
				}
				walk(item, index(path, i))
			}
		}
	}
	walk(doc.Content[0], "")
	if !dups {
		return ls, data
	}
	out, err := yamlv3.Marshal(&doc)
	if err != nil {
		return ls, data
	}
	return ls, out
}

func itemName(n *yamlv3.Node) string {
	if n.Kind != yamlv3.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" && n.Content[i+1].Kind == yamlv3.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

// line is the line of path, or of its nearest ancestor that has one.
func (ls lines) line(path string) int {
	for path != "" {
		if l, ok := ls[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

var unknownKeyRe = regexp.MustCompile(`^unknown field "([^"]+)"`)

// setLines gives every error that has none the line of its path (an unknown key's own
// line, not its parent's).
func (ls lines) setLines(errs Errors) {
	for i := range errs {
		if errs[i].Line != 0 {
			continue
		}
		if m := unknownKeyRe.FindStringSubmatch(errs[i].Msg); m != nil {
			if l, ok := ls[join(errs[i].Path, m[1])]; ok {
				errs[i].Line = l
				continue
			}
		}
		errs[i].Line = ls.line(errs[i].Path)
	}
}

var (
	syntaxLineRe = regexp.MustCompile(`^yaml: line (\d+): `)
	// openQuoteRe is a value that opens a quote the line does not close.
	openQuoteRe = regexp.MustCompile(`^\s*(?:-\s+)?(?:[^#"'\s][^:#]*:\s+)?("(?:[^"\\]|\\.)*|'(?:[^']|'')*)$`)
)

// syntaxError is a YAML syntax error at the line it starts on: the parser reports an
// unclosed quote where it ran out of input, lines below the quote.
func syntaxError(data []byte, err error) FieldError {
	msg := err.Error()
	fe := FieldError{Msg: strings.TrimPrefix(msg, "yaml: ")}
	m := syntaxLineRe.FindStringSubmatch(msg)
	if m == nil {
		return fe
	}
	fe.Msg = strings.TrimPrefix(msg, m[0])
	fmt.Sscan(m[1], &fe.Line)
	for i, l := range strings.Split(string(data), "\n") {
		if i+1 > fe.Line {
			break
		}
		if openQuoteRe.MatchString(l) {
			fe.Line = i + 1
			fe.Msg = "a quoted value is not closed on this line (the parser read on to: " + fe.Msg + ")"
			break
		}
	}
	return fe
}
