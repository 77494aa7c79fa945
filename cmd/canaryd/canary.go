package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Exit codes of `canaryd canary wait` (and of `create --wait`): a pipeline step maps
// them to its own outcome. exitCLI is for the command itself failing (bad flags, server
// unreachable, a 4xx), which a pipeline must never read as a pass.
const (
	exitPass     = 0
	exitFail     = 1
	exitMarginal = 2
	exitError    = 3
	exitCLI      = 4
)

// runCanary is `canaryd canary SUBCOMMAND`: the pipeline's client of the HTTP API.
func runCanary(args []string, stdout, stderr io.Writer) int {
	subs := map[string]func(c *client, args []string, stdout, stderr io.Writer) int{
		"create":  canaryCreate,
		"get":     canaryGet,
		"list":    canaryList,
		"wait":    canaryWait,
		"abort":   canaryAbort,
		"promote": canaryPromote,
	}
	if len(args) == 0 || subs[args[0]] == nil {
		fmt.Fprintln(stderr, `usage: canaryd canary create|get|list|wait|abort|promote [flags]
  create  --analysis A --name N --baseline k=v --canary k=v [--var k=v] [--lifetime D] [--interval D] [--dry-run] [--wait]
  get ID | list [--status S] [--limit N] [--json] | wait ID | abort ID [--reason R] [--actuate=false] | promote ID [--reason R]
Every subcommand takes --server URL (default $CANARYD_URL or http://127.0.0.1:8080).
wait exits 0 on pass, 1 on fail, 2 on marginal, 3 on error or abort, 4 when the command itself fails.`)
		return exitCLI
	}
	return subs[args[0]](&client{}, args[1:], stdout, stderr)
}

// client talks to canaryd's API.
type client struct {
	base string
	http *http.Client
}

func (c *client) flags(fs *flag.FlagSet) {
	def := os.Getenv("CANARYD_URL")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	fs.StringVar(&c.base, "server", def, "canaryd's base URL")
}

// apiError is a non-2xx answer, with the API's JSON error when there is one.
type apiError struct {
	Code  int
	Msg   string `json:"error"`
	Field string `json:"field"`
}

func (e *apiError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("HTTP %d: %s: %s", e.Code, e.Field, e.Msg)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Msg)
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("--server: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := os.Getenv("CANARYD_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Code: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Msg == "" {
			e.Msg = strings.TrimSpace(string(b))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// kvFlag collects repeated k=v flags.
type kvFlag map[string]string

func (f kvFlag) String() string { return "" }

func (f kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	f[k] = v
	return nil
}

// remote is the part of the API's canary that the CLI shows.
type remote struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Analysis      string   `json:"analysis"`
	Status        string   `json:"status"`
	Reason        string   `json:"reason"`
	Score         *float64 `json:"score"`
	IntervalCount int      `json:"interval_count"`
	Judged        *int     `json:"intervals_judged"`
	CreatedAt     string   `json:"created_at"`
	Intervals     []struct {
		Index   int    `json:"index"`
		Verdict string `json:"verdict"`
		Metrics []struct {
			Name           string `json:"name"`
			Classification string `json:"classification"`
			Reason         string `json:"reason"`
		} `json:"metrics"`
	} `json:"intervals"`
}

func newFlags(name string, stderr io.Writer, c *client, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("canary "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.flags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: canaryd canary "+name+" "+usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseID parses flags and the one positional ID, which may come before, between or
// after the flags.
func parseID(fs *flag.FlagSet, args []string) (string, bool) {
	var ids []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", false
		}
		if fs.NArg() == 0 {
			break
		}
		ids = append(ids, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(ids) != 1 {
		fs.Usage()
		return "", false
	}
	return ids[0], true
}

func canaryCreate(c *client, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("create", stderr, c, "--analysis A --name N --baseline k=v --canary k=v [flags]")
	baseline, canary, vars := kvFlag{}, kvFlag{}, kvFlag{}
	analysisName := fs.String("analysis", "", "analysis to judge by (required)")
	name := fs.String("name", "", "canary name, e.g. the service and version (required)")
	fs.Var(baseline, "baseline", "baseline cohort variable k=v (repeatable)")
	fs.Var(canary, "canary", "canary cohort variable k=v (repeatable)")
	fs.Var(vars, "var", "shared variable k=v (repeatable)")
	lifetime := fs.String("lifetime", "", "override the analysis' lifetime (e.g. 30m)")
	interval := fs.String("interval", "", "override the analysis' interval (e.g. 1m)")
	start := fs.String("start", "", "when the canary began taking traffic (RFC 3339; default now)")
	dryRun := fs.Bool("dry-run", false, "judge, but record actions instead of firing them")
	wait := fs.Bool("wait", false, "wait for the verdict and exit with its code (see wait)")
	poll := fs.Duration("poll", 5*time.Second, "with --wait: how often to poll")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if err == nil {
			fs.Usage()
		}
		return exitCLI
	}
	body := map[string]any{
		"name": *name, "analysis": *analysisName, "baseline": baseline, "canary": canary, "dry_run": *dryRun,
	}
	for k, v := range map[string]string{"lifetime": *lifetime, "interval": *interval, "start": *start} {
		if v != "" {
			body[k] = v
		}
	}
	if len(vars) > 0 {
		body["vars"] = vars
	}
	var r remote
	if err := c.do(context.Background(), "POST", "/api/v1/canaries", body, &r); err != nil {
		fmt.Fprintf(stderr, "canaryd canary create: %v\n", err)
		return exitCLI
	}
	fmt.Fprintln(stdout, r.ID)
	if !*wait {
		return exitPass
	}
	return waitFor(c, r.ID, *poll, 0, stderr)
}

func canaryGet(c *client, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("get", stderr, c, "ID")
	id, ok := parseID(fs, args)
	if !ok {
		return exitCLI
	}
	var raw json.RawMessage
	if err := c.do(context.Background(), "GET", "/api/v1/canaries/"+url.PathEscape(id), nil, &raw); err != nil {
		fmt.Fprintf(stderr, "canaryd canary get: %v\n", err)
		return exitCLI
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		out.Write(raw)
	}
	fmt.Fprintln(stdout, out.String())
	return exitPass
}

func canaryList(c *client, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("list", stderr, c, "[--status S] [--limit N] [--json]")
	status := fs.String("status", "", "only canaries with this status")
	limit := fs.Int("limit", 0, "at most this many canaries, newest first (0: all of them)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *limit < 0 {
		return exitCLI
	}
	// The API pages the list; follow next_cursor until the end or the limit.
	var all []json.RawMessage
	cursor := ""
	for {
		q := url.Values{}
		if *status != "" {
			q.Set("status", *status)
		}
		pageSize := 1000
		if *limit > 0 {
			pageSize = min(pageSize, *limit-len(all))
		}
		q.Set("limit", strconv.Itoa(pageSize))
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Canaries   []json.RawMessage `json:"canaries"`
			NextCursor string            `json:"next_cursor"`
		}
		if err := c.do(context.Background(), "GET", "/api/v1/canaries?"+q.Encode(), nil, &page); err != nil {
			fmt.Fprintf(stderr, "canaryd canary list: %v\n", err)
			return exitCLI
		}
		all = append(all, page.Canaries...)
		if cursor = page.NextCursor; cursor == "" || (*limit > 0 && len(all) >= *limit) {
			break
		}
	}
	if *asJSON {
		b, err := json.MarshalIndent(map[string][]json.RawMessage{"canaries": all}, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "canaryd canary list: %v\n", err)
			return exitCLI
		}
		fmt.Fprintln(stdout, string(b))
		return exitPass
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSCORE\tANALYSIS\tNAME\tCREATED")
	for _, raw := range all {
		var r remote
		if err := json.Unmarshal(raw, &r); err != nil {
			fmt.Fprintf(stderr, "canaryd canary list: decode: %v\n", err)
			return exitCLI
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, scoreText(r.Score), r.Analysis, r.Name, r.CreatedAt)
	}
	tw.Flush()
	return exitPass
}

func scoreText(s *float64) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *s)
}

func canaryWait(c *client, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("wait", stderr, c, "ID [--poll D] [--timeout D]")
	poll := fs.Duration("poll", 5*time.Second, "how often to poll")
	timeout := fs.Duration("timeout", 0, "give up (exit 4) after this long; 0 waits for the verdict")
	id, ok := parseID(fs, args)
	if !ok {
		return exitCLI
	}
	return waitFor(c, id, *poll, *timeout, stderr)
}

// waitFor polls a canary, printing progress to stderr when it changes, and returns the
// exit code of its final status. Transient errors are retried until the timeout, so a
// daemon restart during a deploy does not fail the pipeline.
func waitFor(c *client, id string, poll, timeout time.Duration, stderr io.Writer) int {
	if poll <= 0 {
		poll = 5 * time.Second
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	last := ""
	failures := 0
	for {
		var r remote
		err := c.do(context.Background(), "GET", "/api/v1/canaries/"+url.PathEscape(id), nil, &r)
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.Code/100 == 4:
			fmt.Fprintf(stderr, "canaryd canary wait: %v\n", err)
			return exitCLI
		case err != nil:
			failures++
			fmt.Fprintf(stderr, "canaryd canary wait: %v (retrying)\n", err)
		default:
			failures = 0
			judged := 0
			if r.Judged != nil {
				judged = *r.Judged
			}
			line := fmt.Sprintf("%s %s: %s, %d/%d intervals, score %s", r.ID, r.Name, r.Status, judged, r.IntervalCount, scoreText(r.Score))
			if line != last {
				fmt.Fprintln(stderr, line)
				last = line
			}
			if r.Status != "running" {
				if r.Reason != "" {
					fmt.Fprintln(stderr, "  "+r.Reason)
				}
				printFailing(stderr, r)
				return exitCode(r.Status)
			}
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			fmt.Fprintf(stderr, "canaryd canary wait: no verdict after %s\n", timeout)
			return exitCLI
		}
		time.Sleep(poll)
	}
}

// printFailing lists the metrics that were not pass in the last interval.
func printFailing(w io.Writer, r remote) {
	if len(r.Intervals) == 0 {
		return
	}
	last := r.Intervals[len(r.Intervals)-1]
	var lines []string
	for _, m := range last.Metrics {
		if m.Classification != "pass" {
			lines = append(lines, fmt.Sprintf("  %s: %s: %s", m.Name, m.Classification, m.Reason))
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func exitCode(status string) int {
	switch status {
	case "pass":
		return exitPass
	case "fail":
		return exitFail
	case "marginal":
		return exitMarginal
	}
	return exitError
}

func canaryAbort(c *client, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("abort", stderr, c, "ID [--reason R] [--actuate=false]")
	reason := fs.String("reason", "", "why, for the audit log")
	actuate := fs.Bool("actuate", true, "fire the analysis' fail actuators")
	id, ok := parseID(fs, args)
	if !ok {
		return exitCLI
	}
	path := "/api/v1/canaries/" + url.PathEscape(id) + "/abort"
	if !*actuate {
		path += "?actuate=false"
	}
	return override(c, "abort", path, *reason, stdout, stderr)
}

func canaryPromote(c *client, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("promote", stderr, c, "ID [--reason R]")
	reason := fs.String("reason", "", "why, for the audit log")
	id, ok := parseID(fs, args)
	if !ok {
		return exitCLI
	}
	return override(c, "promote", "/api/v1/canaries/"+url.PathEscape(id)+"/promote", *reason, stdout, stderr)
}

func override(c *client, verb, path, reason string, stdout, stderr io.Writer) int {
	var body any
	if reason != "" {
		body = map[string]string{"reason": reason}
	}
	var r remote
	if err := c.do(context.Background(), "POST", path, body, &r); err != nil {
		fmt.Fprintf(stderr, "canaryd canary %s: %v\n", verb, err)
		return exitCLI
	}
	fmt.Fprintf(stdout, "%s %s\n", r.ID, r.Status)
	return exitPass
}
