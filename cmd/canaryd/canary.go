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

	"github.com/prometheus/common/model"
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
	// With --recovery, a failed or aborted canary's recovery watch: never 0, the canary
	// still failed.
	exitRecovered       = 5
	exitNotRecovered    = 6
	exitRecoveryUnknown = 7
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
	const usage = `usage: canaryd canary create|get|list|wait|abort|promote [flags]
  create  --analysis A --name N --baseline k=v --canary k=v [--var k=v] [--lifetime D] [--interval D] [--dry-run] [--key K] [--wait [--timeout D]]
  get ID | list [--status S] [--limit N] [--json] | wait ID [--timeout D] [--recovery] | abort ID [--reason R] [--actuate=false] | promote ID [--reason R]
Every subcommand takes --server URL (default $CANARYD_URL or http://127.0.0.1:8080) and --help.
wait exits 0 on pass, 1 on fail, 2 on marginal, 3 on error or abort, 4 when the command itself fails.`
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return exitCLI
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return exitPass
	}
	if subs[args[0]] == nil {
		fmt.Fprintf(stderr, "canaryd canary: unknown subcommand %q\n%s\n", args[0], usage)
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
	URL   string `json:"-"`
	Msg   string `json:"error"`
	Field string `json:"field"`
}

func (e *apiError) Error() string {
	msg := e.Msg
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.URL == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Code, msg)
	}
	s := fmt.Sprintf("HTTP %d from %s: %s", e.Code, e.URL, msg)
	if e.Code == http.StatusNotFound && e.Field == "" && strings.Contains(e.URL, "/api/v1/api/") {
		s += " (--server is canaryd's base URL, without /api/v1)"
	}
	return s
}

// unreachableError is a request that never got an answer: canaryd is down, or --server
// is wrong.
type unreachableError struct {
	URL string
	Err error
}

func (e *unreachableError) Error() string { return fmt.Sprintf("could not reach %s: %v", e.URL, e.Err) }
func (e *unreachableError) Unwrap() error { return e.Err }

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	if c.http == nil {
		// Longer than a registration's preflight checks may take (at most 30 s each, run
		// at once).
		c.http = &http.Client{Timeout: 60 * time.Second}
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := strings.TrimRight(c.base, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("--server %s: %w", c.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := os.Getenv("CANARYD_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said once, by unreachableError
		}
		return &unreachableError{URL: u, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, u, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Code: resp.StatusCode, URL: u}
		if json.Unmarshal(b, e) != nil || e.Msg == "" {
			e.Msg = strings.TrimSpace(string(b))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, u, err)
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
	Verdict       string   `json:"verdict"`
	IntervalCount int      `json:"interval_count"`
	Judged        *int     `json:"intervals_judged"`
	CreatedAt     string   `json:"created_at"`
	Start         string   `json:"start"`
	Lifetime      string   `json:"lifetime"`
	Recovery      *struct {
		Outcome   string `json:"outcome"`
		Reason    string `json:"reason"`
		Within    string `json:"within"`
		Deadline  string `json:"deadline"`
		DecidedAt string `json:"decided_at"`
	} `json:"recovery"`
	// Warnings are the failed preflight checks the canary was registered despite.
	Warnings  []string `json:"warnings"`
	Intervals []struct {
		Index   int    `json:"index"`
		Verdict string `json:"verdict"`
		Metrics []struct {
			Name           string `json:"name"`
			Classification string `json:"classification"`
			Reason         string `json:"reason"`
		} `json:"metrics"`
	} `json:"intervals"`
}

// parseFailed is the exit code of a failed fs.Parse: --help is a success.
func parseFailed(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitPass
	}
	return exitCLI
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
// after the flags. When it fails, code is the exit code (0 for --help).
func parseID(fs *flag.FlagSet, args []string) (id string, code int, ok bool) {
	var ids []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", parseFailed(err), false
		}
		if fs.NArg() == 0 {
			break
		}
		ids = append(ids, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(ids) != 1 {
		fs.Usage()
		return "", exitCLI, false
	}
	return ids[0], 0, true
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
	key := fs.String("key", "", "the registration's identity (e.g. $REPO-$COMMIT): a retry with the same key and flags returns that canary instead of a second one")
	wait := fs.Bool("wait", false, "wait for the verdict and exit with its code (see wait)")
	poll := fs.Duration("poll", 5*time.Second, "with --wait: how often to poll")
	timeout := fs.Duration("timeout", 0, "with --wait: give up (exit 4) after this long; 0: "+waitDefaultText)
	if err := fs.Parse(args); err != nil {
		return parseFailed(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "canaryd canary create: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitCLI
	}
	body := map[string]any{
		"name": *name, "analysis": *analysisName, "baseline": baseline, "canary": canary, "dry_run": *dryRun,
	}
	for k, v := range map[string]string{"lifetime": *lifetime, "interval": *interval, "start": *start, "key": *key} {
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
	for _, w := range r.Warnings {
		// stderr: a pipeline reads the id from stdout.
		fmt.Fprintln(stderr, "canaryd canary create: warning: "+w)
	}
	if !*wait {
		return exitPass
	}
	return waitFor(c, r.ID, *poll, *timeout, false, stderr)
}

func canaryGet(c *client, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("get", stderr, c, "ID")
	id, code, ok := parseID(fs, args)
	if !ok {
		return code
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
	if err := fs.Parse(args); err != nil {
		return parseFailed(err)
	}
	if fs.NArg() > 0 || *limit < 0 {
		fs.Usage()
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, scoreText(r), r.Analysis, r.Name, r.CreatedAt)
	}
	tw.Flush()
	return exitPass
}

// scoreText is a canary's score as the CLI prints it: "—" when there is none yet, and
// when nothing could be scored (every metric nodata or error), where 0.0 would read as
// a failure that the judge never found.
func scoreText(r remote) string {
	switch {
	case r.Score == nil:
		return "-"
	case r.Verdict == "nodata":
		return "— (nothing could be scored)"
	}
	return fmt.Sprintf("%.1f", *r.Score)
}

func canaryWait(c *client, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("wait", stderr, c, "ID [--poll D] [--timeout D] [--recovery]")
	poll := fs.Duration("poll", 5*time.Second, "how often to poll")
	timeout := fs.Duration("timeout", 0, "give up (exit 4) after this long; 0: "+waitDefaultText)
	recovery := fs.Bool("recovery", false, "when the canary fails or is aborted, wait for its recovery watch too: exit 5 recovered, 6 not_recovered, 7 unknown")
	id, code, ok := parseID(fs, args)
	if !ok {
		return code
	}
	return waitFor(c, id, *poll, *timeout, *recovery, stderr)
}

// The default deadlines of wait: a daemon that never answers is given up on after
// unreachableGrace; once reached, wait lasts until the canary's planned end plus
// endGrace (a restart or a backlog may delay the last interval).
const (
	unreachableGrace = 2 * time.Minute
	endGrace         = 10 * time.Minute
	waitDefaultText  = "10m past the canary's planned end, 2m while canaryd was never reached"
)

// waitFor polls a canary, printing progress to stderr when it changes, and returns the
// exit code of its final status. Transient errors are retried until the timeout, so a
// daemon restart during a deploy does not fail the pipeline.
func waitFor(c *client, id string, poll, timeout time.Duration, recovery bool, stderr io.Writer) int {
	if poll <= 0 {
		poll = 5 * time.Second
	}
	began := time.Now()
	deadline := began.Add(unreachableGrace)
	if timeout > 0 {
		deadline = began.Add(timeout)
	}
	last, lastRecovery := "", ""
	reached, ended := false, false
	var lastErr error
	for {
		var r remote
		err := c.do(context.Background(), "GET", "/api/v1/canaries/"+url.PathEscape(id), nil, &r)
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.Code/100 == 4:
			fmt.Fprintf(stderr, "canaryd canary wait: %v\n", err)
			return exitCLI
		case err != nil:
			lastErr = err
			fmt.Fprintf(stderr, "canaryd canary wait: %v (retrying)\n", err)
		default:
			if !reached && timeout <= 0 {
				deadline = plannedEnd(r, began).Add(endGrace)
			}
			reached = true
			judged := 0
			if r.Judged != nil {
				judged = *r.Judged
			}
			line := fmt.Sprintf("%s %s: %s, %d/%d intervals, score %s", r.ID, r.Name, r.Status, judged, r.IntervalCount, scoreText(r))
			if line != last {
				fmt.Fprintln(stderr, line)
				last = line
			}
			if r.Status != "running" && !ended {
				ended = true
				if r.Reason != "" {
					fmt.Fprintln(stderr, "  "+r.Reason)
				}
				printFailing(stderr, r)
				if !recovery || (r.Status != "fail" && r.Status != "aborted") {
					return exitCode(r.Status)
				}
				if r.Recovery == nil {
					fmt.Fprintln(stderr, "  no recovery watch: the canary's analysis has no recovery block")
					return exitCode(r.Status)
				}
			}
			if ended {
				rec := r.Recovery
				if line := "recovery: " + rec.Outcome + ", " + rec.Reason; line != lastRecovery {
					fmt.Fprintln(stderr, "  "+line)
					lastRecovery = line
				}
				if timeout <= 0 {
					deadline = recoveryDeadline(rec.Deadline, rec.Within, time.Now()).Add(endGrace)
				}
				switch rec.Outcome {
				case "recovered":
					return exitRecovered
				case "not_recovered":
					return exitNotRecovered
				case "unknown":
					return exitRecoveryUnknown
				}
			}
		}
		if time.Now().After(deadline) {
			switch {
			case !reached:
				// Say what happened: never a bare timeout that hides a wrong --server.
				fmt.Fprintf(stderr, "canaryd canary wait: %v (gave up after %s)\n", lastErr, time.Since(began).Round(time.Second))
			case lastErr != nil && err != nil:
				fmt.Fprintf(stderr, "canaryd canary wait: no verdict after %s; last error: %v\n", time.Since(began).Round(time.Second), lastErr)
			default:
				fmt.Fprintf(stderr, "canaryd canary wait: no verdict after %s\n", time.Since(began).Round(time.Second))
			}
			return exitCLI
		}
		time.Sleep(poll)
	}
}

// recoveryDeadline is when a recovery watch ends: its deadline, or while it waits for
// the rollback, now plus its window.
func recoveryDeadline(deadline, within string, now time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, deadline); err == nil && t.After(now) {
		return t
	}
	if d, err := model.ParseDuration(within); err == nil {
		return now.Add(time.Duration(d))
	}
	return now
}

// plannedEnd is when the canary's last interval is due (start + lifetime), or now when
// the answer does not say.
func plannedEnd(r remote, now time.Time) time.Time {
	start, err := time.Parse(time.RFC3339Nano, r.Start)
	if err != nil {
		return now
	}
	life, err := model.ParseDuration(r.Lifetime)
	if err != nil {
		return now
	}
	if end := start.Add(time.Duration(life)); end.After(now) {
		return end
	}
	return now
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
	id, code, ok := parseID(fs, args)
	if !ok {
		return code
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
	id, code, ok := parseID(fs, args)
	if !ok {
		return code
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
