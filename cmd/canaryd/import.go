package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/config/kayenta"
)

// maxImportBytes bounds a config to import: Kayenta's own are a few KB.
const maxImportBytes = 16 << 20

// runImport prints the canaryd analysis equivalent to another tool's config. The YAML it
// prints is checked as check-config would check it, so what it prints always loads.
func runImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: canaryd import kayenta CONFIG.json   (prints the analysis YAML; - reads stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 || fs.Arg(0) != "kayenta" {
		fs.Usage()
		return 2
	}
	path := fs.Arg(1)
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintf(stderr, "canaryd import: %v\n", err)
			return 1
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxImportBytes+1))
	if err != nil {
		fmt.Fprintf(stderr, "canaryd import: %s: %v\n", path, err)
		return 1
	}
	if len(b) > maxImportBytes {
		fmt.Fprintf(stderr, "canaryd import: %s: larger than %d bytes\n", path, maxImportBytes)
		return 1
	}
	y, err := importKayenta(b)
	if err != nil {
		fmt.Fprintf(stderr, "canaryd import: %s: %v\n", path, err)
		return 1
	}
	if _, err := stdout.Write(y); err != nil {
		return 1
	}
	return 0
}

func importKayenta(b []byte) ([]byte, error) {
	c, err := kayenta.Parse(b)
	if err != nil {
		return nil, err
	}
	a, err := kayenta.Convert(c)
	if err != nil {
		return nil, err
	}
	y, err := a.YAML()
	if err != nil {
		return nil, err
	}
	if _, err := config.Parse(y, kinds()); err != nil {
		return nil, fmt.Errorf("the imported analysis does not load (a bug in the importer): %w", err)
	}
	return y, nil
}
