package synthetic

import (
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    Spec
		wantErr string // a substring of the error; "" when the text is valid
	}{
		{name: "minimal", text: "signal=latency_p99 cohort=canary",
			want: Spec{Signal: "latency_p99", Cohort: "canary", Streams: 1}},
		{name: "every key, any order, extra spaces", text: "  streams=4 app=web seed=-12\tcohort=baseline signal=error_rate ",
			want: Spec{Signal: "error_rate", Cohort: "baseline", App: "web", Seed: -12, HasSeed: true, Streams: 4}},
		{name: "seed zero is kept as given", text: "signal=saturation cohort=c seed=0",
			want: Spec{Signal: "saturation", Cohort: "c", Seed: 0, HasSeed: true, Streams: 1}},
		{name: "unknown key", text: "signal=latency_p99 cohort=c color=red", wantErr: `word "color=red": unknown key "color"`},
		{name: "unknown signal", text: "signal=latency_p95 cohort=c", wantErr: `word "signal=latency_p95": unknown signal "latency_p95"`},
		{name: "word without =", text: "signal=latency_p99 canary", wantErr: `word "canary": want key=value`},
		{name: "empty value", text: "signal=latency_p99 cohort=", wantErr: `word "cohort=": cohort has an empty value`},
		{name: "key twice", text: "signal=latency_p99 cohort=a cohort=b", wantErr: `word "cohort=b": cohort given twice`},
		{name: "quote in value", text: `signal=latency_p99 cohort="a"`, wantErr: `a value must not contain`},
		{name: "streams zero", text: "signal=latency_p99 cohort=a streams=0", wantErr: `word "streams=0": streams must be an integer in [1, 1000]`},
		{name: "streams too many", text: "signal=latency_p99 cohort=a streams=1001", wantErr: `streams must be an integer in [1, 1000]`},
		{name: "seed not a number", text: "signal=latency_p99 cohort=a seed=7x", wantErr: `word "seed=7x": seed must be a 64-bit integer`},
		{name: "seed overflows", text: "signal=latency_p99 cohort=a seed=9223372036854775808", wantErr: `seed must be a 64-bit integer`},
		{name: "no signal", text: "cohort=a", wantErr: `no signal= in "cohort=a"`},
		{name: "no cohort", text: "signal=saturation", wantErr: `no cohort= in "signal=saturation"`},
		{name: "empty text", text: "", wantErr: `no signal=`},
		{name: "promql is not synthetic", text: `histogram_quantile(0.99, rate(x[1m]))`, wantErr: `want key=value`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseQuery(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseQuery(%q) error = %v, want one containing %q", tc.text, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseQuery(%q): %v", tc.text, err)
			}
			if got != tc.want {
				t.Fatalf("ParseQuery(%q) = %+v, want %+v", tc.text, got, tc.want)
			}
			back, err := ParseQuery(got.String())
			if err != nil || back != got {
				t.Fatalf("String() %q does not parse back: %+v, %v", got.String(), back, err)
			}
		})
	}
}

// FuzzParseQuery: the parser never panics, and what it accepts prints as text that
// parses back to the same spec.
func FuzzParseQuery(f *testing.F) {
	f.Add("signal=latency_p99 cohort=canary app=web seed=7 streams=3")
	f.Add("signal=error_rate cohort=baseline")
	f.Add("cohort==x signal=saturation")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseQuery(text)
		if err != nil {
			return
		}
		if s.Signal == "" || s.Cohort == "" || s.Streams < 1 || s.Streams > MaxStreams {
			t.Fatalf("ParseQuery(%q) accepted an invalid spec %+v", text, s)
		}
		back, err := ParseQuery(s.String())
		if err != nil || back != s {
			t.Fatalf("ParseQuery(%q) = %+v; String %q parses to %+v, %v", text, s, s.String(), back, err)
		}
	})
}
