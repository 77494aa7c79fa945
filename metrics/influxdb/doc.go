// Package influxdb is the metrics.Provider for InfluxDB: it runs one cohort's rendered
// InfluxQL through 1.x's HTTP API (POST /query, epoch=ms), or its Flux script through
// /api/v2/query (InfluxDB 2.x, or 1.8+ with flux-enabled; language: flux), and turns every
// returned series or table into streams. It owns the HTTP retries for those calls; it
// never judges, never caches, and never logs or returns a credential.
//
// # Why plain HTTP
//
// The official 1.x client (github.com/influxdata/influxdb1-client/v2) resolves from the
// module proxy, but its HTTPConfig builds its own http.Client (address, username,
// password, TLS, proxy): it cannot take the client http_config builds (authorization,
// bearer token files, http_headers, oauth2), and it decodes values into []interface{}
// of json.Number. The documented /query API is small: a form-encoded POST, an answer of
// {"results": [{"series": [{"name", "tags", "columns", "values"}], "error"}], "error"}.
//
// # The query
//
// The template renders InfluxQL with two placeholders the provider fills for each window:
// $timeFilter (time >= <start>ms AND time <= <end>ms) and $step (the step as an InfluxQL
// duration, e.g. 60s), so a query reads
//
//	SELECT sum("count") FROM "http_requests" WHERE "track" = '{{ .Cohort.track }}' AND $timeFilter GROUP BY time($step) fill(none)
//
// InfluxDB aligns time buckets to the epoch and labels each by its start. A query that
// groups by time($step) is put on the canary's grid instead: time($step) becomes
// time(<step>, <start modulo step>), $timeFilter covers [start − step, last) (last the
// grid's last point at or before end), and each point is labelled by its bucket's end,
// so the point at t holds [t − step, t), as a Prometheus rate or Flux's aggregateWindow
// does, and the counts and histogram judges read every step once, whole. Other queries
// run as written over [start, end]. A query without $timeFilter is refused: it would
// read the measurement's whole history.
// Each series (one per GROUP BY tag set) and each value column beside time is a stream,
// labelled with the series' tags, measurement and field (the column's name). A null
// value (an empty bucket without fill()) is no point; a string or boolean value is an error.
//
// # Flux
//
// With language: flux the provider goes through the official 2.x client
// (github.com/influxdata/influxdb-client-go/v2: its query API sends the script, the org
// parameter and the dialect, reads {"code", "message"} errors, and parses the annotated
// CSV) on the HTTP client http_config builds, the token (token, token_file or token_env)
// as its `Authorization: Token …`. The window reaches the script as the record v that
// InfluxDB's UI and Grafana define, which the provider writes before the script's first
// statement (InfluxDB 1.8 takes no extern or params in a query request, so the record is
// Flux text, on the first statement's line to keep error positions' line numbers):
//
//	v = {timeRangeStart: <start − step>, timeRangeStop: <end>, windowPeriod: <step>,
//	     windowOffset: <start modulo step>}
//
// so a metric reads
//
//	from(bucket: "app")
//	  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
//	  |> filter(fn: (r) => r._measurement == "http" and r.track == "{{ .Cohort.track }}")
//	  |> aggregateWindow(every: v.windowPeriod, offset: v.windowOffset, fn: mean, createEmpty: false)
//
// aggregateWindow labels a window by its stop, and the offset puts its windows on the
// canary's steps, so the points are at start … end, each over the step that ends there
// (as a Prometheus rate's); without it windows align to the epoch, off the canary's
// steps when it did not start on a multiple of the step. (InfluxDB 1.8's Flux has the
// offset on window only: window(every: v.windowPeriod, offset: v.windowOffset) |>
// mean() |> duplicate(column: "_stop", as: "_time") |> window(every: inf).) A script that does not read both bounds is refused. Each table (a
// result's group key) is a stream labelled with its group key's columns but _start and
// _stop (and result, for a yield other than _result); its points are _time and _value
// (double, long or unsignedLong; a null is no point). A table without _time (an aggregate
// over the whole range) or without a numeric _value is an error that says what to write.
//
// Every cohort and shared value is pasted as the content of a Flux string (EscapeValue:
// quote and backslash escaped, $ as \x24 so that no ${…} interpolates, control
// characters as \n, \t, \xHH), so a template writes "{{ .Cohort.track }}" in quotes; a
// value in a regex is written regexp.compile(v: "{{ … }}") for the same reason.
//
// The tests run on a real server: InfluxDB 1.8.3 built from the module proxy
// (influxtest.FluxBinary), which serves Flux at /api/v2/query and takes the 2.x client
// with the token "user:password" and buckets "db/rp". What only 2.x answers (400 with
// {"code", "message"}, 429, an error table) is tested on a loopback server shaped as the
// documented API.
package influxdb
