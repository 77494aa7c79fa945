package web

// CheckValue accepts every value the registration's own rules allow (no quote, backslash
// or control character): whatever the rendered query holds is escaped for where it lands
// (a URL path segment, a query parameter, a JSON string, a form field), so no value can
// add a parameter, change the path or add a JSON key. What the query text means to the
// service behind the URL (a PromQL or SQL string inside a parameter) is the template
// author's to quote, as with any provider.
func (p *Provider) CheckValue(v string) error { return nil }
