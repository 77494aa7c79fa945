// Package identity is who asked canaryd to do something, carried in a request's context:
// web/auth's middleware sets it once per request (the token's name, or the caller as
// claimed when there is no authentication), the daemon sets it for what it does on its
// own (a SIGHUP reload), and the actuators' audit log records it. It imports nothing of
// canaryd, so that both the HTTP surface and the actuators can depend on it.
package identity

import "context"

// Actor is who asked for something, as the audit log records it.
type Actor struct {
	// Name is the caller: "token:NAME" for an authenticated token, "api:NAME" or
	// "ui:NAME" for a caller without authentication (as claimed), or a component of
	// canaryd ("signal:SIGHUP", "canaryd").
	Name string
	// Remote is the client's address, when there is a client.
	Remote string
}

type key struct{}

// With returns ctx carrying a.
func With(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, key{}, a)
}

// From returns the actor in ctx, or an Actor named def when there is none.
func From(ctx context.Context, def string) Actor {
	if a, ok := ctx.Value(key{}).(Actor); ok && a.Name != "" {
		return a
	}
	return Actor{Name: def}
}
