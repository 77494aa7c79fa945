package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/canaryd/canaryd/analysis/pgstore"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/internal/redact"
)

// runServe is `canaryd serve --config FILE`: the daemon.
func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (YAML); required")
	listen := fs.String("listen", "", "host:port of the HTTP API (overrides server.listen)")
	storage := fs.String("storage", "", "path of the store file, or postgres://user@host:port/db?sslmode=… (overrides server.storage)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "json", "json or console")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: canaryd serve --config FILE [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	log, err := newLogger(*logLevel, *logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "canaryd serve: %v\n", err)
		return 2
	}
	defer log.Sync() //nolint:errcheck // stderr cannot be synced on some systems
	d, err := newDaemon(daemonOptions{ConfigPath: *configPath, Listen: *listen, Storage: *storage, Logger: log})
	if err != nil {
		switch {
		case errors.As(err, new(config.Errors)):
			printConfigError(stderr, "canaryd: ", *configPath, err)
		case errors.As(err, new(*pgstore.ConnectError)):
			// Names the URL without its password (and keeps its user, which redact would
			// hide with the rest of the userinfo).
			fmt.Fprintf(stderr, "canaryd: %v\n", err)
		default:
			fmt.Fprintf(stderr, "canaryd: %v\n", redact.Error(err)) // the store, a provider, TLS: not the file
		}
		return 1
	}
	ln, err := net.Listen("tcp", d.cfg.Server.Listen)
	if err != nil {
		d.closeStore()
		fmt.Fprintf(stderr, "canaryd serve: listen: %v\n", err)
		return 1
	}
	if err := d.run(context.Background(), ln); err != nil {
		fmt.Fprintf(stderr, "canaryd serve: %v\n", err)
		return 1
	}
	return 0
}
