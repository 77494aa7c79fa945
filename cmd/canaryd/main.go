// Command canaryd is the canary analysis daemon and its tools. main only wires: each
// subcommand lives in its own file and returns an exit code.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand: it gets its arguments (after the subcommand's name) and the
// process's standard streams, and returns the exit code.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"eval":         {summary: "measure the judge on simulated canaries: false fails, detection, time to detect (eval [--config FILE]...)", run: runEval},
		"check-config": {summary: "validate config files, printing every error with its path (check-config FILE...)", run: runCheckConfig},
		"judge":        {summary: "run the scoring core on files (judge mannwhitney --baseline F --canary F)", run: runJudge},
		"serve":        {summary: "run the daemon: HTTP API, scheduler, store (serve --config FILE)", run: runServe},
		"canary":       {summary: "pipeline client: canary create|get|list|wait|abort|promote", run: runCanary},
		"hash-token":   {summary: "print the sha256 of an API token for server.auth (from stdin, or --generate)", run: runHashToken},
		"demo":         {summary: "the daemon on the embedded synthetic provider with a healthy and a regressing canary", run: runDemo},
		"import":       {summary: "print the canaryd analysis equivalent to a Kayenta canary config (import kayenta CONFIG.json)", run: runImport},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		return 2
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "canaryd: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: canaryd COMMAND [flags]")
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, cmds[n].summary)
	}
}
