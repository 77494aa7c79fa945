package configs

import _ "embed"

//go:embed demo.yml
var demoConfig []byte

// Demo returns the config `canaryd demo` runs (demo.yml in this folder), so the binary
// needs no file to show what it does.
func Demo() []byte { return append([]byte(nil), demoConfig...) }
