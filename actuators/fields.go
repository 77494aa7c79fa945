package actuators

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"text/template/parse"
)

// checkFields finds, without rendering, the field references a template would fail on
// at every firing: a top-level field that Data does not have (.Sevrice), and a secret
// the actuator does not define (.Secrets.token in a webhook header, which has none).
// Variables (.Vars.ns) depend on the registration and are checked when a canary is
// registered.
func checkFields(t *Template, secrets []string) error {
	if t.tmpl.Tree == nil || t.tmpl.Tree.Root == nil {
		return nil
	}
	c := fieldChecker{secrets: secrets}
	c.node(t.tmpl.Tree.Root, true)
	return c.err
}

type fieldChecker struct {
	secrets []string
	err     error
}

var dataType = reflect.TypeFor[Data]()

func (c *fieldChecker) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

// node walks n; root says whether dot is still the template's data there (it is not
// inside range and with).
func (c *fieldChecker) node(n parse.Node, root bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, m := range n.Nodes {
			c.node(m, root)
		}
	case *parse.ActionNode:
		c.node(n.Pipe, root)
	case *parse.IfNode:
		c.node(n.Pipe, root)
		c.node(n.List, root)
		c.node(n.ElseList, root)
	case *parse.RangeNode:
		c.node(n.Pipe, root)
		c.node(n.List, false)
		c.node(n.ElseList, root)
	case *parse.WithNode:
		c.node(n.Pipe, root)
		c.node(n.List, false)
		c.node(n.ElseList, root)
	case *parse.TemplateNode:
		c.node(n.Pipe, root)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, cmd := range n.Cmds {
			c.node(cmd, root)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			c.node(a, root)
		}
	case *parse.FieldNode:
		if root {
			c.chain(n.Ident, "."+strings.Join(n.Ident, "."))
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			c.chain(n.Ident[1:], "$."+strings.Join(n.Ident[1:], "."))
		}
	}
}

// chain checks a field chain that starts at the template's data.
func (c *fieldChecker) chain(ident []string, shown string) {
	name := ident[0]
	_, isField := dataType.FieldByName(name)
	_, isMethod := dataType.MethodByName(name)
	if !isField && !isMethod {
		c.fail(".%s is not a field of the event (see the template fields in actuators/README.md)", name)
		return
	}
	if name != "Secrets" {
		return
	}
	switch {
	case len(c.secrets) == 0:
		c.fail("%s: this actuator has no secrets (only a flag actuator's secrets: map defines .Secrets)", shown)
	case len(ident) > 1 && !slices.Contains(c.secrets, ident[1]):
		c.fail(".Secrets.%s is not defined: secrets: defines %v", ident[1], c.secrets)
	}
}
