package field

import "testing"

func TestErrors(t *testing.T) {
	var es Errors
	if es.Err() != nil {
		t.Fatal("empty Errors is not nil")
	}
	es.Add("timeout", "must be > 0")
	var inner Errors
	inner.Add("", "needs min, max or both")
	inner.Add("max", "must be > 0")
	inner.Add("[1]", "bad")
	es.AddAll("analyses.a.metrics[0].judge", inner)
	es = append(es, Error{Path: "scheduler.workers", Msg: "must be > 0", Line: 7})
	want := "timeout: must be > 0\n" +
		"analyses.a.metrics[0].judge: needs min, max or both\n" +
		"analyses.a.metrics[0].judge.max: must be > 0\n" +
		"analyses.a.metrics[0].judge[1]: bad\n" +
		"scheduler.workers: must be > 0"
	if got := es.Err().Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for _, tc := range []struct{ path, key, want string }{
		{"", "a", "a"}, {"a", "", "a"}, {"a", "b", "a.b"}, {"a", "[0]", "a[0]"}, {Index("a", 2), "b", "a[2].b"},
	} {
		if got := Join(tc.path, tc.key); got != tc.want {
			t.Errorf("Join(%q, %q) = %q, want %q", tc.path, tc.key, got, tc.want)
		}
	}
}
