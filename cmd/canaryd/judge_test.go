package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestJudgeMannWhitneyCommand(t *testing.T) {
	dir := t.TempDir()
	base := writeFile(t, dir, "base.txt", "1\n2\n3\n")
	can := writeFile(t, dir, "can.txt", "  4\n5\r\n\n6.5\n")
	bad := writeFile(t, dir, "bad.txt", "1\n2\nlots\n")
	nan := writeFile(t, dir, "nan.txt", "1\nNaN\n")
	huge := writeFile(t, dir, "huge.txt", "1\n\n1e999\n")
	empty := writeFile(t, dir, "empty.txt", " \n\n")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
		check    func(t *testing.T, out map[string]any)
	}{
		{name: "ok", args: []string{"judge", "mannwhitney", "--baseline", base, "--canary", can}, check: func(t *testing.T, out map[string]any) {
			// R: wilcox.test(c(4,5,6.5), c(1,2,3), conf.int=TRUE): W=9, p=0.1, estimate 3,
			// interval [1, 5.5] at the achievable 90%.
			want := map[string]any{"u": 9.0, "p_value": 0.1, "estimate": 3.0, "ci_low": 1.0, "ci_high": 5.5,
				"method": "exact", "n_baseline": 3.0, "n_canary": 3.0, "confidence": 0.9}
			for k, v := range want {
				if out[k] != v {
					t.Errorf("%s = %v, want %v", k, out[k], v)
				}
			}
		}},
		{name: "confidence flag", args: []string{"judge", "mannwhitney", "--baseline", base, "--canary", can, "--confidence", "0.8"},
			check: func(t *testing.T, out map[string]any) {
				// R: conf.level=0.8 gives the same [1, 5.5], which reaches 0.8 exactly.
				if out["confidence"] != 0.8 || out["ci_low"] != 1.0 || out["ci_high"] != 5.5 {
					t.Errorf("got %v", out)
				}
			}},
		{name: "missing file", args: []string{"judge", "mannwhitney", "--baseline", filepath.Join(dir, "nope.txt"), "--canary", can},
			wantCode: 2, wantErr: "nope.txt: no such file"},
		{name: "not a number", args: []string{"judge", "mannwhitney", "--baseline", bad, "--canary", can},
			wantCode: 2, wantErr: `bad.txt:3: "lots" is not a number`},
		{name: "NaN", args: []string{"judge", "mannwhitney", "--baseline", base, "--canary", nan},
			wantCode: 2, wantErr: `nan.txt:2: "NaN" is not a finite number`},
		{name: "out of range", args: []string{"judge", "mannwhitney", "--baseline", huge, "--canary", can},
			wantCode: 2, wantErr: `huge.txt:3: "1e999" is out of float64's range`},
		{name: "empty", args: []string{"judge", "mannwhitney", "--baseline", base, "--canary", empty},
			wantCode: 2, wantErr: "empty.txt: no numbers"},
		{name: "confidence out of range", args: []string{"judge", "mannwhitney", "--baseline", base, "--canary", can, "--confidence", "1.2"},
			wantCode: 2, wantErr: "--confidence 1.2 must be in (0, 1)"},
		{name: "no baseline", args: []string{"judge", "mannwhitney", "--canary", can}, wantCode: 2, wantErr: "--baseline FILE is required"},
		{name: "unknown judge", args: []string{"judge", "ttest"}, wantCode: 2, wantErr: "usage: canaryd judge mannwhitney"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := dispatch(tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.wantCode, stderr.String())
			}
			if tc.wantErr != "" {
				lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
				if !strings.Contains(lines[0], tc.wantErr) {
					t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantErr)
				}
				if tc.name != "unknown judge" && len(lines) != 1 {
					t.Errorf("stderr has %d lines, want one: %q", len(lines), stderr.String())
				}
				return
			}
			var out map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
				t.Fatalf("stdout is not one JSON object: %v (%q)", err, stdout.String())
			}
			tc.check(t, out)
		})
	}
}

func FuzzParseSample(f *testing.F) {
	f.Add([]byte("1\n2\n3\n"))
	f.Add([]byte("  1.5e3\t\r\n-4\n\n"))
	f.Add([]byte("1\nNaN\n"))
	f.Add([]byte("0x1p-3\n1_000\n"))
	f.Add([]byte("1e999"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := parseSample(raw)
		if err != nil {
			if !strings.Contains(err.Error(), ":") {
				t.Fatalf("error %q does not name the line", err)
			}
			return
		}
		for _, f := range v {
			if f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308 {
				t.Fatalf("non-finite %v accepted", f)
			}
		}
		if fields := bytes.FieldsFunc(raw, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) }); len(fields) != len(v) {
			t.Fatalf("%d numbers from %d fields", len(v), len(fields))
		}
	})
}
