// Package influxdb is the metrics.Provider for InfluxDB 1.x: it runs one cohort's
// rendered InfluxQL through the HTTP API (POST /query, epoch=ms) and turns every returned
// series into streams. It owns the HTTP retries for those calls; it never judges, never
// caches, and never logs or returns a credential.
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
// InfluxDB aligns time buckets to the epoch, so with a step that does not divide the
// start, the first bucket is labelled before Query.Start. A query without $timeFilter is refused: it would read the measurement's whole history.
// Each series (one per GROUP BY tag set) and each value column beside time is a stream,
// labelled with the series' tags, measurement and field (the column's name). A null
// value (an empty bucket without fill()) is no point; a string or boolean value is an error.
package influxdb
