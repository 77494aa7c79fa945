package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/canaryd/canaryd/config"
)

// runHashToken prints the SHA-256 that server.auth.tokens[].sha256 takes, of a token
// read from stdin, or of a new random one with --generate (printed first, once: only
// the hash goes into the config).
func runHashToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hash-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	generate := fs.Bool("generate", false, "make a new random token and print it, then its hash")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return 2
	}
	var tok string
	if *generate {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			fmt.Fprintf(stderr, "canaryd hash-token: %v\n", err)
			return 1
		}
		tok = base64.RawURLEncoding.EncodeToString(b)
		fmt.Fprintf(stdout, "token:  %s\n", tok)
	} else {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			fmt.Fprintf(stderr, "canaryd hash-token: read stdin: %v\n", err)
			return 1
		}
		tok = strings.TrimSpace(line)
		if tok == "" {
			fmt.Fprintln(stderr, "canaryd hash-token: give the token on stdin (or --generate)")
			return 2
		}
	}
	fmt.Fprintf(stdout, "sha256: %s\n", config.HashToken(tok))
	return 0
}
