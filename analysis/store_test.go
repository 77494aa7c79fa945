package analysis_test

import (
	"encoding/json"
	"testing"

	"github.com/canaryd/canaryd/analysis"
)

// An action stored before ActionKind and Cause were types reads back the same, and is
// written in the same JSON: stores written today stay readable.
func TestActionJSONCompatible(t *testing.T) {
	tests := []struct {
		name   string
		stored string
		want   analysis.Action
	}{
		{"verdict", `{"canary_id":"c","seq":1,"time":"2026-01-01T00:00:00Z","kind":"verdict","status":"fail","trigger":"critical","reason":"r","actuate":true}`,
			analysis.Action{Kind: analysis.ActionVerdict, Cause: analysis.CauseCritical, Status: analysis.StatusFail}},
		{"abort", `{"canary_id":"c","seq":2,"time":"2026-01-01T00:00:00Z","kind":"abort","status":"aborted","trigger":"api","actuate":false}`,
			analysis.Action{Kind: analysis.ActionAbort, Cause: analysis.CauseAPI, Status: analysis.StatusAborted}},
		{"promote", `{"canary_id":"c","seq":3,"time":"2026-01-01T00:00:00Z","kind":"promote","status":"pass","trigger":"api","actuate":true}`,
			analysis.Action{Kind: analysis.ActionPromote, Cause: analysis.CauseAPI, Status: analysis.StatusPass}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a analysis.Action
			if err := json.Unmarshal([]byte(tc.stored), &a); err != nil {
				t.Fatal(err)
			}
			if a.Kind != tc.want.Kind || a.Cause != tc.want.Cause || a.Status != tc.want.Status {
				t.Fatalf("read %+v, want kind %s cause %s status %s", a, tc.want.Kind, tc.want.Cause, tc.want.Status)
			}
			again, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != tc.stored {
				t.Fatalf("written as\n%s\nwant\n%s", again, tc.stored)
			}
		})
	}
}
