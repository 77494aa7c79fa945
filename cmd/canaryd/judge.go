package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/canaryd/canaryd/judge"
)

func runJudge(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "mannwhitney" {
		fmt.Fprintln(stderr, "usage: canaryd judge mannwhitney --baseline FILE --canary FILE [--confidence 0.95]")
		return 2
	}
	fs := flag.NewFlagSet("canaryd judge mannwhitney", flag.ContinueOnError)
	fs.SetOutput(stderr)
	baselinePath := fs.String("baseline", "", "file of the baseline's numbers, whitespace-separated")
	canaryPath := fs.String("canary", "", "file of the canary's numbers, whitespace-separated")
	confidence := fs.Float64("confidence", 0.95, "confidence level of the shift's interval, in (0, 1)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "canaryd judge mannwhitney: %v\n", err)
		return 2
	}
	switch {
	case *baselinePath == "":
		return fail(errors.New("--baseline FILE is required"))
	case *canaryPath == "":
		return fail(errors.New("--canary FILE is required"))
	case !(*confidence > 0 && *confidence < 1):
		return fail(fmt.Errorf("--confidence %v must be in (0, 1)", *confidence))
	}
	// The two files are independent: read and parse them on both cores.
	type sample struct {
		v   []float64
		err error
	}
	baseCh := make(chan sample, 1)
	go func() {
		v, err := readSample(*baselinePath)
		baseCh <- sample{v, err}
	}()
	canary, err := readSample(*canaryPath)
	base := <-baseCh
	if base.err != nil {
		return fail(base.err)
	}
	if err != nil {
		return fail(err)
	}
	res, err := judge.MannWhitney(base.v, canary, *confidence)
	if err != nil {
		return fail(err)
	}
	out, err := json.Marshal(res)
	if err != nil {
		return fail(fmt.Errorf("encode result: %w", err))
	}
	out = append(out, '\n')
	if _, err := stdout.Write(out); err != nil {
		return fail(fmt.Errorf("write result: %w", err))
	}
	return 0
}

// readSample reads whitespace-separated numbers; an error names the file and line.
func readSample(path string) ([]float64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err // os errors already name the file
	}
	v, err := parseSample(raw)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("%s: no numbers: the sample is empty", path)
	}
	return v, nil
}

// parseSample parses whitespace-separated numbers (one per line is the usual shape;
// leading and trailing spaces, tabs, CRLF and blank lines are allowed). Errors are
// "LINE: message" so that the caller can put the file name in front.
func parseSample(raw []byte) ([]float64, error) {
	out := make([]float64, 0, len(raw)/8)
	line := 1
	for i := 0; i < len(raw); {
		c := raw[i]
		if c == '\n' {
			line++
			i++
			continue
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' {
			i++
			continue
		}
		j := i
		for j < len(raw) && !isSpace(raw[j]) {
			j++
		}
		tok := raw[i:j]
		f, err := strconv.ParseFloat(string(tok), 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
				return nil, fmt.Errorf("%d: %q is out of float64's range", line, tok)
			}
			return nil, fmt.Errorf("%d: %q is not a number", line, truncate(tok))
		}
		if f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308 {
			return nil, fmt.Errorf("%d: %q is not a finite number", line, tok)
		}
		out = append(out, f)
		i = j
	}
	return out, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

func truncate(tok []byte) []byte {
	if len(tok) > 40 {
		return append(bytes.Clone(tok[:40]), "..."...)
	}
	return tok
}
