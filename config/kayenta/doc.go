// Package kayenta converts Spinnaker Kayenta's canary configs into canaryd's terms: each
// metric's judge settings as a judge.MetricSpec with Kayenta's semantics (effect_size,
// tolerance, critical bounds, muted, several groups), its query as a canaryd template
// (Kayenta's scope and location are the cohort variables scope and location), and a
// note on every field that could not be carried over. `canaryd import kayenta` prints
// the result as YAML; the remote-judge route (web/kayentajudge) judges with its specs.
// It reads and writes no file and knows no provider beyond the query syntax.
package kayenta
