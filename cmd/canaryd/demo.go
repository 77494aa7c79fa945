package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// demoCanary is one canary the demo registers, and the verdict (and for a failed one,
// the recovery outcome) it should reach.
type demoCanary struct {
	name, app, track, want, wantRecovery string
}

var demoCanaries = []demoCanary{
	{name: "checkout v2.0.0 (healthy)", app: "checkout", track: "v2-good", want: "pass"},
	{name: "checkout v2.0.1 (errors ×10, latency +60%)", app: "checkout", track: "v2-bad", want: "fail", wantRecovery: "recovered"},
	{name: "payments v3.1.0 (errors ×10 that the rollback does not cure)", app: "payments", track: "v3-bad", want: "fail", wantRecovery: "not_recovered"},
}

// runDemo is `canaryd demo`: the daemon on the embedded synthetic provider with two
// canaries registered through its own API, one healthy and one regressing.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "host:port to serve the pages and the API on")
	storage := fs.String("storage", "", "store file (default: a temporary file, removed at exit)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	exitWhenDone := fs.Bool("exit-when-done", false, "exit once every canary has its verdict and every failed one its recovery outcome (0 when they are the expected ones)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return 2
	}
	log, err := newLogger(*logLevel, "console")
	if err != nil {
		fmt.Fprintf(stderr, "canaryd demo: %v\n", err)
		return 2
	}
	defer log.Sync() //nolint:errcheck // stderr cannot be synced on some systems
	if *storage == "" {
		dir, err := os.MkdirTemp("", "canaryd-demo")
		if err != nil {
			fmt.Fprintf(stderr, "canaryd demo: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
		*storage = filepath.Join(dir, "demo.db")
	}
	d, err := newDaemon(daemonOptions{ConfigSource: append([]byte(nil), demoConfig...), Listen: *listen, Storage: *storage, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "canaryd demo: %v\n", err)
		return 1
	}
	ln, err := net.Listen("tcp", d.cfg.Server.Listen)
	if err != nil {
		d.closeStore()
		fmt.Fprintf(stderr, "canaryd demo: listen: %v (another program on this port? try --listen 127.0.0.1:8081)\n", err)
		return 1
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- d.run(ctx, ln) }()

	ids, err := registerDemo(ctx, base)
	if err != nil {
		cancel()
		<-runErr
		fmt.Fprintf(stderr, "canaryd demo: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "canaryd demo: serving on %s/ (Ctrl-C to stop)\n", base)
	fmt.Fprintf(stdout, "  all canaries:  %s/\n", base)
	for i, c := range demoCanaries {
		fmt.Fprintf(stdout, "  %-44s %s/canaries/%s\n", c.name+":", base, ids[i])
	}
	fmt.Fprintf(stdout, "  API:           curl %s/api/v1/canaries\n", base)
	fmt.Fprintf(stdout, "  metrics:       %s/metrics\n", base)
	fmt.Fprintln(stdout, "Verdicts, rollbacks and recovery outcomes arrive within about a minute:")

	verdicts := make(chan int, 1)
	go func() { verdicts <- watchDemo(ctx, base, ids, stdout) }()
	select {
	case code := <-verdicts:
		if *exitWhenDone {
			cancel()
			if err := <-runErr; err != nil {
				fmt.Fprintf(stderr, "canaryd demo: %v\n", err)
				return 1
			}
			return code
		}
		fmt.Fprintln(stdout, "Every outcome is in; the pages stay up until Ctrl-C.")
	case err := <-runErr:
		if err != nil {
			fmt.Fprintf(stderr, "canaryd demo: %v\n", err)
			return 1
		}
		return 0
	}
	if err := <-runErr; err != nil {
		fmt.Fprintf(stderr, "canaryd demo: %v\n", err)
		return 1
	}
	return 0
}

// registerDemo registers the demo canaries through the API, as a pipeline would.
func registerDemo(ctx context.Context, base string) ([]string, error) {
	c := &client{base: base}
	ids := make([]string, len(demoCanaries))
	for i, dc := range demoCanaries {
		var r remote
		err := c.do(ctx, "POST", "/api/v1/canaries", map[string]any{
			"name": dc.name, "analysis": "demo-golden-signals",
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": dc.track},
			"vars": map[string]string{"app": dc.app},
		}, &r)
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", dc.name, err)
		}
		ids[i] = r.ID
	}
	return ids, nil
}

// demoRemote is what the demo reads of a canary: its verdict and recovery watch.
type demoRemote struct {
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	Start    time.Time
	Recovery *struct {
		Outcome      string     `json:"outcome"`
		Reason       string     `json:"reason"`
		RolledBackAt *time.Time `json:"rolled_back_at"`
		DecidedAt    *time.Time `json:"decided_at"`
	} `json:"recovery"`
}

// watchDemo prints each canary's verdict as it arrives, then each failed one's recovery
// outcome and escalation, and returns 0 when every one is the expected outcome, 1
// otherwise.
func watchDemo(ctx context.Context, base string, ids []string, stdout io.Writer) int {
	c := &client{base: base}
	start := time.Now()
	done := make([]bool, len(ids))
	recovered := make([]bool, len(ids))
	code, left := 0, len(ids)
	for i, dc := range demoCanaries {
		if dc.wantRecovery != "" {
			left++
		} else {
			recovered[i] = true
		}
	}
	for left > 0 {
		select {
		case <-ctx.Done():
			return 1
		case <-time.After(500 * time.Millisecond):
		}
		for i, id := range ids {
			if done[i] && recovered[i] {
				continue
			}
			var r demoRemote
			if err := c.do(ctx, "GET", "/api/v1/canaries/"+url.PathEscape(id), nil, &r); err != nil {
				if errors.Is(err, context.Canceled) {
					return 1
				}
				continue
			}
			if r.Status == "running" {
				continue
			}
			if done[i] {
				if rec := r.Recovery; rec != nil && (rec.Outcome == "recovered" || rec.Outcome == "not_recovered" || rec.Outcome == "unknown") {
					line, escalated := demoRecoveryLine(ctx, c, id, r)
					if rec.Outcome == "not_recovered" && !escalated && time.Since(*rec.DecidedAt) < 10*time.Second {
						continue // its escalation is on its way
					}
					recovered[i], left = true, left-1
					mark := "as expected"
					if rec.Outcome != demoCanaries[i].wantRecovery {
						mark, code = "UNEXPECTED: want "+demoCanaries[i].wantRecovery, 1
					}
					fmt.Fprintf(stdout, "  %s: %s (%s)\n", demoCanaries[i].name, line, mark)
				}
				continue
			}
			done[i], left = true, left-1
			mark := "as expected"
			if r.Status != demoCanaries[i].want {
				mark, code = "UNEXPECTED: want "+demoCanaries[i].want, 1
			}
			fmt.Fprintf(stdout, "  %s: %s after %s (%s)\n    %s\n    report: %s/canaries/%s\n",
				demoCanaries[i].name, r.Status, time.Since(start).Round(time.Second), mark, r.Reason, base, id)
		}
	}
	return code
}

// demoRecoveryLine says how a failed canary's recovery watch ended, with the times from
// its start, and what its escalation did (escalated: an escalation action is final).
func demoRecoveryLine(ctx context.Context, c *client, id string, r demoRemote) (line string, escalated bool) {
	rec := r.Recovery
	line = "recovery " + rec.Outcome
	if rec.RolledBackAt != nil {
		line += fmt.Sprintf(", rolled back %s after the start", rec.RolledBackAt.Sub(r.Start).Round(time.Second))
	}
	if rec.DecidedAt != nil {
		line += fmt.Sprintf(", %s %s after the start", rec.Outcome, rec.DecidedAt.Sub(r.Start).Round(time.Second))
	}
	line += "\n    " + rec.Reason
	var acts struct {
		Actuations []struct {
			Trigger, Actuator, State string
		} `json:"actuations"`
	}
	if err := c.do(ctx, "GET", "/api/v1/canaries/"+url.PathEscape(id)+"/actuations", nil, &acts); err == nil {
		for _, a := range acts.Actuations {
			if a.Trigger == "on_not_recovered" {
				line += fmt.Sprintf("\n    escalation: %s %s", a.Actuator, a.State)
				escalated = escalated || (a.State != "pending" && a.State != "firing")
			}
		}
	}
	return line, escalated
}
