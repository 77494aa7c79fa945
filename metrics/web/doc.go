// Package web is the generic HTTP/JSON metrics.Provider (type: web), for services
// canaryd has no provider of its own for (SigNoz, LightStep, an internal metrics API): it
// renders the configured url and body templates for one cohort's query and window, sends
// the request, and reads the points out of the JSON answer with RFC 9535 JSONPaths
// (github.com/theory/jsonpath). It never judges, never caches, and never logs or returns
// a header's value.
//
// # Templates and escaping
//
// The url and body are Go templates over Data: {{ .Query }} (the metric's query, rendered
// with the cohort's values), {{ .Start }}, {{ .End }} (time.Time, UTC: {{ .Start.Unix }},
// {{ .Start.UnixMilli }}, {{ .Start.Format "2006-01-02T15:04:05Z07:00" }}) and {{ .Step }}
// (time.Duration: {{ .Step.Seconds }}). Every action's output is escaped for the place it
// lands, as html/template escapes for HTML: a URL path segment (percent-encoded, / too,
// and "." or ".." refused), a query parameter, a JSON string's inside, a JSON value
// (written as JSON: a string is quoted), a form field. To keep the place decidable a
// template holds text and actions only (no if, range, with), and the url's scheme and host
// are literal.
//
// # Points
//
// points is a JSONPath to the array of points; one that selects several arrays
// ($.data.result[*].values) gives a stream per array, labelled match=<index>. time and
// value are JSONPaths from one point ($[0] and $[1] for [t, v] pairs). A time is unix
// seconds (fractions kept to the millisecond), unix_ms, or an RFC 3339 string; a value is
// a number or a numeric string; a null value is no point. A singular points path ($.a.b)
// that selects nothing is an error (the answer is not the shape the config expects); a
// path with a wildcard that selects nothing, an empty array, or null is no data.
package web
