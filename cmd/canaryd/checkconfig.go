package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/internal/redact"
)

// runCheckConfig validates config files and prints every error with its path; the exit
// code is 1 when any file is invalid, so pipelines can gate a config change on it.
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: canaryd check-config FILE...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	code := 0
	for _, path := range fs.Args() {
		c, err := config.Load(path, kinds())
		if err != nil {
			code = 1
			printConfigError(stderr, "", path, err)
			continue
		}
		names := make([]string, 0, len(c.Analyses))
		for n := range c.Analyses {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(stdout, "%s: ok (%d provider(s), %d actuator(s), analyses %v)\n", path, len(c.Providers), len(c.Actuators), names)
	}
	return code
}

// printConfigError prints a config's every error on its own line with its path, so that
// check-config and a daemon refusing to start read the same.
func printConfigError(w io.Writer, prefix, path string, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		fmt.Fprintf(w, "%s%s: %d error(s)\n", prefix, path, len(errs))
		for _, e := range errs {
			// file:line: path: what is wrong, as compilers write it, so editors jump there.
			at := path
			if e.Line > 0 {
				at = fmt.Sprintf("%s:%d", path, e.Line)
			}
			fmt.Fprintf(w, "  %s: %s\n", at, redact.Text(e.Error()))
		}
		return
	}
	fmt.Fprintf(w, "%s%s: %v\n", prefix, path, redact.Error(err))
}
