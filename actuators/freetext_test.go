package actuators

import (
	"reflect"
	"strings"
	"testing"
)

func TestMapText(t *testing.T) {
	e := Event{ID: "c1", Name: "n", Service: "s", Reason: "r", Analysis: "a", Status: "fail",
		Vars: map[string]string{"v": "x"}, Canary: map[string]string{"c": "y"}, Baseline: map[string]string{"b": "z"},
		Failing:  []FailingMetric{{Name: "m", Reason: "why"}},
		Recovery: RecoveryEvent{Outcome: "unknown", Reason: "q", RollbackErrors: []string{"e"}}}
	got := e.MapText(strings.ToUpper)
	want := Event{ID: "c1", Name: "N", Service: "S", Reason: "R", Analysis: "A", Status: "fail",
		Vars: map[string]string{"v": "X"}, Canary: map[string]string{"c": "Y"}, Baseline: map[string]string{"b": "Z"},
		Failing:  []FailingMetric{{Name: "M", Reason: "WHY"}},
		Recovery: RecoveryEvent{Outcome: "unknown", Reason: "Q", RollbackErrors: []string{"E"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MapText = %+v, want %+v", got, want)
	}
	if e.Vars["v"] != "x" || e.Canary["c"] != "y" || e.Baseline["b"] != "z" || e.Failing[0].Name != "m" || e.Recovery.RollbackErrors[0] != "e" {
		t.Errorf("MapText changed its event: %+v", e)
	}
	if got := (Event{}).MapText(strings.ToUpper); got.Vars != nil || got.Failing != nil {
		t.Errorf("MapText of an empty event = %+v, want no maps or slices", got)
	}
}
