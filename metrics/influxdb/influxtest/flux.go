package influxtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// FluxVersion is the InfluxDB whose influxd serves Flux in the tests: the last 1.x line
// with its source on the module proxy that builds with canaryd's Go (1.9 and later need
// Rust for libflux). It serves Flux at /api/v2/query, as 2.x does, when flux-enabled.
const FluxVersion = "v1.8.3"

// FluxBinary returns the path of influxd FluxVersion, building it first when it is not in
// the cache: `go install github.com/influxdata/influxdb/cmd/influxd@FluxVersion` into
// $XDG_CACHE_HOME/canaryd/influxd-FluxVersion/ (or ~/.cache/…), as scripts/ensure-deps.sh
// does, under a lock so that test binaries started at once build it once. A build takes a
// few minutes on a fresh machine (modules from the proxy, cgo), then nothing.
func FluxBinary(t testing.TB) string {
	t.Helper()
	dir, err := FluxDir()
	if err != nil {
		t.Fatalf("influxtest: %v", err)
	}
	bin := filepath.Join(dir, "influxd")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("influxtest: %v", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("influxtest: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("influxtest: lock %s: %v", lock.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if _, err := os.Stat(bin); err == nil {
		return bin // another test binary built it while this one waited
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		t.Fatalf("influxtest: %v", err)
	}
	defer os.RemoveAll(tmp)
	goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	t.Logf("influxtest: building influxd %s with Flux into %s (once; scripts/ensure-deps.sh does it ahead)", FluxVersion, dir)
	start := time.Now()
	cmd := exec.Command(goBin, "install", "github.com/influxdata/influxdb/cmd/influxd@"+FluxVersion)
	// GOFLAGS from the test's environment (-race, -mod=…) has no place in this build.
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("influxtest: go install influxd@%s: %v\n%s", FluxVersion, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "influxd"), bin); err != nil {
		t.Fatalf("influxtest: %v", err)
	}
	t.Logf("influxtest: built influxd %s in %s", FluxVersion, time.Since(start).Round(time.Second))
	return bin
}

// FluxDir is where FluxBinary keeps influxd FluxVersion.
func FluxDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for influxd %s: %w", FluxVersion, err)
	}
	return filepath.Join(cache, "canaryd", "influxd-"+FluxVersion), nil
}

func fluxConf(on bool) string {
	if !on {
		return ""
	}
	return "  flux-enabled = true\n  flux-log-enabled = false\n"
}
