package identity_test

import (
	"context"
	"testing"

	"github.com/canaryd/canaryd/internal/identity"
)

func TestFrom(t *testing.T) {
	cases := []struct {
		name string
		ctx  context.Context
		want identity.Actor
	}{
		{"none: the default", context.Background(), identity.Actor{Name: "canaryd"}},
		{"set", identity.With(context.Background(), identity.Actor{Name: "token:sre", Remote: "10.0.0.1:5"}), identity.Actor{Name: "token:sre", Remote: "10.0.0.1:5"}},
		{"empty name: the default", identity.With(context.Background(), identity.Actor{Remote: "10.0.0.1:5"}), identity.Actor{Name: "canaryd"}},
		{"the innermost wins", identity.With(identity.With(context.Background(), identity.Actor{Name: "a"}), identity.Actor{Name: "b"}), identity.Actor{Name: "b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := identity.From(tc.ctx, "canaryd"); got != tc.want {
				t.Errorf("From = %+v, want %+v", got, tc.want)
			}
		})
	}
}
