package main

import _ "embed"

// demoConfig is the config `canaryd demo` runs (assets/demo.yml), so the binary needs no
// file to show what it does.
//
//go:embed assets/demo.yml
var demoConfig []byte
