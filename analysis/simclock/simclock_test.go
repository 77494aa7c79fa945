package simclock

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New(t0)
	now := c.After(0)
	later := c.After(time.Minute)
	select {
	case got := <-now:
		if !got.Equal(t0) {
			t.Errorf("After(0) gave %s", got)
		}
	default:
		t.Fatal("After(0) did not fire at once")
	}
	c.Advance(59 * time.Second)
	select {
	case <-later:
		t.Fatal("fired 1 s early")
	default:
	}
	c.Set(t0) // backwards: ignored
	if !c.Now().Equal(t0.Add(59 * time.Second)) {
		t.Fatalf("moved backwards to %s", c.Now())
	}
	c.Advance(time.Second)
	select {
	case got := <-later:
		if !got.Equal(t0.Add(time.Minute)) {
			t.Errorf("fired with %s", got)
		}
	default:
		t.Fatal("did not fire when due")
	}
}
