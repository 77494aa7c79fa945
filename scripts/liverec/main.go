// Command liverec records healthy (A/A) and regressed canaries from real processes through
// a real Prometheus, so that the judges are measured on data our own generators did not
// make (issue 14): every cohort of every app is its own OS process (its own GC and
// scheduling), a small net/http server instrumented with client_golang whose handler
// hashes, sleeps and calls a shared downstream process; a Poisson load generator drives
// them; Debian's prometheus scrapes them every second; the recording is what the shipped
// PromQL returns from it (query_range at a 5s step).
//
//	go run ./scripts/liverec record -duration 36m -out judge/testdata/live/live.json.gz
//
// scripts/record-live.sh runs it; judge/liveaa_test.go replays the recording. The
// subcommands cohort and downstream are the child processes record starts (itself again).
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "record":
		err = runRecord(os.Args[2:])
	case "cohort":
		err = runCohort(os.Args[2:])
	case "downstream":
		err = runDownstream(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "liverec %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: liverec record [-duration 36m] [-out file.json.gz] (cohort and downstream are its child processes)")
	os.Exit(2)
}
