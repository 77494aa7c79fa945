package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// check-config names each error's file, line and path down to the key, reports every
// error (a repeated key included), and says "did you mean" for a near miss (issue 19,
// item 8).
func TestCheckConfigOutput(t *testing.T) {
	const prom = "providers:\n  prom: {type: prometheus, address: \"http://127.0.0.1:9090\"}\n"
	const analysis = "analyses:\n" +
		"  web:\n" +
		"    provider: prom\n" +
		"    lifetime: 30m\n" +
		"    warmup: 25m\n" +
		"    metrics:\n" +
		"      - name: error-rate\n" +
		"        query: 'errors{track=\"{{ .Cohort.track }}\"}'\n" +
		"      - name: p99\n" +
		"        query: 'p99{track=\"{{ .Cohort.track }}\"}'\n" +
		"        judge: {type: ratio, max: 1.5, for: 10m}\n"
	cases := []struct {
		name, src string
		want      []string // the lines after the header, F standing for the file
	}{
		{
			name: "duration at its key, near-miss key",
			src:  "scheduler:\n  wokers: 3\n  query_timeout: 30\nanalyses: {}\n",
			want: []string{
				`F:3: scheduler.query_timeout: not a valid duration string: "30"`,
				`F:2: scheduler: unknown field "wokers" (did you mean "workers"?)`,
			},
		},
		{
			name: "near-miss top-level key",
			src:  "analyses: {}\nschedular: {workers: 3}\n",
			want: []string{`F:2: unknown field "schedular" (did you mean "scheduler"?)`},
		},
		{
			name: "a repeated key hides nothing",
			src:  "scheduler:\n  workers: 3\n  workers: 4\nserver: {listen: nope}\nanalyses: {}\n",
			want: []string{
				"F:3: scheduler.workers: given twice (first on line 2); the first is used",
				"F:4: server.listen: must be host:port: address nope: missing port in address",
			},
		},
		{
			name: "unclosed quote at its own line",
			src:  "server:\n  listen: \"127.0.0.1:8080\n  storage: x\nscheduler:\n  workers: 3\n",
			want: []string{"F:2: a quoted value is not closed on this line (the parser read on to: found unexpected end of stream)"},
		},
		{
			name: "metric by name, for longer than the judged lifetime",
			src:  prom + analysis,
			want: []string{"F:13: analyses.web.metrics[p99].judge.for: 10m is longer than the judged part of a canary (lifetime 30m − warmup 25m): the metric could never fail"},
		},
		{
			name: "judge key by name",
			src:  prom + strings.Replace(analysis, "max: 1.5, for: 10m", "max: -1", 1),
			want: []string{"F:13: analyses.web.metrics[p99].judge.max: must be > 0"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "canaryd.yml")
			if err := os.WriteFile(f, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if code := runCheckConfig([]string{f}, &stdout, &stderr); code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
			}
			got := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			want := []string{f + ": " + strconv.Itoa(len(tc.want)) + " error(s)"}
			for _, w := range tc.want {
				want = append(want, "  "+strings.Replace(w, "F:", f+":", 1))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("check-config said:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
