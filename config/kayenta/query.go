package kayenta

import (
	"fmt"
	"regexp"
	"strings"
)

// cohortVars are the scope attributes of Kayenta's that differ between its control and
// experiment scopes: canaryd's cohort variables. Every other template variable (its
// extendedScopeParams, project) is a shared variable.
var cohortVars = map[string]bool{"scope": true, "location": true}

// tmpl builds a canaryd query template from literal text and variables, so that the
// literal text never opens or closes an action (a PromQL "{{", or Datadog's "{" right
// before a variable).
type tmpl struct {
	segs []seg
}

type seg struct {
	text   string
	action bool
}

func (t *tmpl) lit(s string) { t.segs = append(t.segs, seg{text: s}) }

func (t *tmpl) variable(name string) {
	scope := ".Vars."
	if cohortVars[name] {
		scope = ".Cohort."
	}
	t.segs = append(t.segs, seg{text: "{{ " + scope + name + " }}", action: true})
}

// quoteLit renders a literal as a template action printing it.
func quoteLit(s string) string { return `{{"` + s + `"}}` }

func (t *tmpl) String() string {
	var b strings.Builder
	for i, sg := range t.segs {
		if sg.action {
			b.WriteString(sg.text)
			continue
		}
		s := sg.text
		var head, tail string
		// A "}" right after an action, or a "{" right before one, would join its
		// delimiters ("}}}", "{{{").
		if i > 0 && t.segs[i-1].action && strings.HasPrefix(s, "}") {
			head, s = quoteLit("}"), s[1:]
		}
		if i+1 < len(t.segs) && t.segs[i+1].action && strings.HasSuffix(s, "{") {
			s, tail = s[:len(s)-1], quoteLit("{")
		}
		b.WriteString(head)
		for len(s) > 0 {
			switch {
			case strings.HasPrefix(s, "{{"):
				b.WriteString(quoteLit("{{"))
				s = s[2:]
			case strings.HasPrefix(s, "}}"):
				b.WriteString(quoteLit("}}"))
				s = s[2:]
			default:
				b.WriteByte(s[0])
				s = s[1:]
			}
		}
		b.WriteString(tail)
	}
	return b.String()
}

var (
	varRe        = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	singleQuoted = regexp.MustCompile(`'\$\{([A-Za-z_][A-Za-z0-9_]*)\}'`)
)

// expand translates a Kayenta template (commons-text StringSubstitutor: ${name}, $${…}
// a literal ${…}) into t.
func expand(t *tmpl, s string) error {
	s = strings.ReplaceAll(s, `$\{`, "${") // Kayenta's stored escape of a template
	for {
		i := strings.Index(s, "$")
		if i < 0 {
			t.lit(s)
			return nil
		}
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			t.lit(s[:i] + "$")
			s = s[i+2:]
			j := strings.Index(s, "}")
			if j < 0 {
				t.lit(s)
				return nil
			}
			t.lit(s[:j+1])
			s = s[j+1:]
		case strings.HasPrefix(s[i:], "${"):
			t.lit(s[:i])
			j := strings.Index(s[i:], "}")
			if j < 0 {
				return fmt.Errorf("unclosed ${ in template")
			}
			name := s[i+2 : i+j]
			if !varRe.MatchString(name) {
				return fmt.Errorf("template variable ${%.40s}: only plain names carry over ([A-Za-z_][A-Za-z0-9_]*, no defaults)", name)
			}
			t.variable(name)
			s = s[i+j+1:]
		default:
			t.lit(s[:i+1])
			s = s[i+1:]
		}
	}
}

// template is the query's own template: its customInlineTemplate, or the canary
// config's template its customFilterTemplate names.
func template(c *CanaryConfig, q Query) (string, error) {
	switch {
	case q.CustomFilter != "":
		return "", fmt.Errorf("customFilter is deprecated and Kayenta refuses it: use customInlineTemplate")
	case q.CustomInlineTemplate != "":
		return q.CustomInlineTemplate, nil
	case q.CustomFilterTemplate != "":
		t, ok := c.Templates[q.CustomFilterTemplate]
		if !ok {
			return "", fmt.Errorf("customFilterTemplate %q is not in the config's templates", q.CustomFilterTemplate)
		}
		return t, nil
	}
	return "", nil
}

// translateQuery renders a metric's query as canaryd runs it, as Kayenta's metrics
// service for the type builds it; skip says why it could not.
func translateQuery(c *CanaryConfig, q Query) (provider, query, skip string) {
	src, err := template(c, q)
	if err != nil {
		return "", "", err.Error()
	}
	var t tmpl
	switch q.Type {
	case "prometheus":
		// A variable in a single-quoted label value ('${scope}') moves to double quotes:
		// canaryd checks a Prometheus value against what a double-quoted one may hold.
		src = singleQuoted.ReplaceAllString(src, `"$${$1}"`)
		if strings.HasPrefix(src, "PromQL:") {
			body := strings.TrimPrefix(src, "PromQL:")
			if strings.TrimSpace(body) == "" {
				// An empty query is no query: canaryd's config refuses it, so the metric is
				// left out with the reason rather than written as query: "".
				return "", "", "the PromQL: template is empty"
			}
			if err := expand(&t, body); err != nil {
				return "", "", err.Error()
			}
			return "prometheus", t.String(), ""
		}
		if q.MetricName == "" {
			return "", "", "a prometheus query needs metricName or a PromQL: template"
		}
		t.lit("avg(" + q.MetricName + "{")
		n := 0
		sep := func() {
			if n > 0 {
				t.lit(",")
			}
			n++
		}
		switch {
		case src != "":
			// Kayenta splits the expanded filter on commas and puts the label bindings after it.
			sep()
			if err := expand(&t, src); err != nil {
				return "", "", err.Error()
			}
		case q.ResourceType == "aws_ec2_instance":
			sep()
			t.lit(`asg_groupName="`)
			t.variable("scope")
			t.lit(`",zone=~"`)
			t.variable("location")
			t.lit(`.{1}"`)
		case q.ResourceType == "gce_instance":
			sep()
			t.lit(`instance=~"`)
			t.variable("scope")
			t.lit(`-.{4}",zone=~".+/zones/`)
			t.variable("location")
			t.lit(`-.{1}"`)
		case q.ResourceType == "":
			return "", "", "a prometheus query with neither a template nor a resourceType takes its resource type from each execution's scope: set resourceType or a PromQL: template"
		default:
			return "", "", fmt.Sprintf("resourceType %q: Kayenta itself refuses it (aws_ec2_instance, gce_instance or a template)", q.ResourceType)
		}
		for _, b := range q.LabelBindings {
			sep()
			t.lit(b)
		}
		t.lit("})")
		if len(q.GroupByFields) > 0 {
			t.lit(" by (" + strings.Join(q.GroupByFields, ",") + ")")
		}
		return "prometheus", t.String(), ""
	case "datadog":
		if src != "" {
			if err := expand(&t, src); err != nil {
				return "", "", err.Error()
			}
			return "datadog", t.String(), ""
		}
		if q.MetricName == "" {
			return "", "", "a datadog query needs metricName or customInlineTemplate"
		}
		t.lit(q.MetricName + "{")
		t.variable("scope")
		t.lit("}")
		return "datadog", t.String(), ""
	case "":
		return "", "", "the query has no type"
	}
	return "", "", fmt.Sprintf("query type %q: canaryd has no provider for it (prometheus and datadog queries carry over)", q.Type)
}
