// Package pgtest runs a private PostgreSQL cluster (Debian's postgresql package) on a free
// loopback port in a temporary directory, for tests: initdb, then the postmaster as a
// child process, as an unprivileged user when the tests run as root (PostgreSQL refuses
// to run as root). It never talks to anything but loopback and never leaves a process
// behind: Stop ends the one it started, and the child dies with the test binary.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/canaryd/canaryd/internal/syncbuf"
)

// ErrMissing wraps the error of PostgreSQL's binaries not being installed.
var ErrMissing = errors.New("PostgreSQL's initdb and postgres not found under /usr/lib/postgresql/*/bin (install Debian's postgresql package: run `make deps` or scripts/ensure-deps.sh)")

// binGlob is where Debian installs each major version's server binaries.
const binGlob = "/usr/lib/postgresql/*/bin"

// BinDir returns the directory of the newest installed major version's initdb and
// postgres, or an error wrapping ErrMissing.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob(binGlob)
	// Newest major version first: 16 before 15, numerically.
	sort.Slice(dirs, func(i, j int) bool { return major(dirs[i]) > major(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("pgtest: %w", ErrMissing)
}

func major(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Cluster is a running PostgreSQL cluster. Its superuser is "postgres", trusted on
// loopback without a password.
type Cluster struct {
	// Addr is the loopback host:port it listens on.
	Addr string

	dir    string // removed by Stop
	bin    string // where postgres is
	data   string // its data directory, under dir
	cred   *syscall.Credential
	sync   bool // synchronous_commit on (Options.CrashSafe)
	cmd    *exec.Cmd
	exited chan error
	logs   *syncbuf.Buffer
	once   sync.Once

	mu sync.Mutex
	n  int // databases created
}

// Options says how to start a cluster.
type Options struct {
	// StartTimeout bounds initdb and start-up (default 60s, the machine may be busy).
	StartTimeout time.Duration
	// Tries is how many ports to try (another process may take a free port between the
	// look and the bind); defaults to 3.
	Tries int
	// CrashSafe keeps synchronous_commit on, so that every commit acknowledged survives
	// Crash. Without it a crash may lose the last commits a client was told of (as the
	// promotion of an asynchronous standby would): faster, and enough unless the test
	// crashes the cluster. (fsync stays off: the machine does not crash, only postgres.)
	CrashSafe bool
}

// Start creates a cluster in a new temporary directory and runs it until Stop.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.Tries <= 0 {
		o.Tries = 3
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	data := filepath.Join(dir, "data")
	if err := prepareDir(dir, cred); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// --no-sync and the settings below trade durability of the test cluster (never of
	// canaryd's writes, which still go through transactions) for speed.
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	var lastErr error
	for range o.Tries {
		addr, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c := &Cluster{Addr: addr, dir: dir, bin: bin, data: data, cred: cred, sync: o.CrashSafe, logs: &syncbuf.Buffer{}}
		if lastErr = c.run(ctx); lastErr == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// runAs is who runs PostgreSQL: nil (this process' user) unless that is root, which
// PostgreSQL refuses; then nobody.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, PostgreSQL needs an unprivileged user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: user nobody has uid %q, gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: false}, nil
}

// prepareDir hands the cluster's directory to the user that runs it. os.MkdirTemp made
// it 0700 for this process' user; its parent (the system's temp dir) must let that user
// through, which /tmp does.
func prepareDir(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("pgtest: hand %s to uid %d: %w", dir, cred.Uid, err)
	}
	return nil
}

// run starts the postmaster on c's data directory and address and waits until it
// answers.
func (c *Cluster) run(ctx context.Context) error {
	host, port, _ := net.SplitHostPort(c.Addr)
	c.exited = make(chan error, 1)
	syncCommit := "synchronous_commit=off"
	if c.sync {
		syncCommit = "synchronous_commit=on"
	}
	// The postmaster itself rather than pg_ctl, which would daemonize it: as a child it
	// gets SIGQUIT (immediate shutdown) if the test binary dies, so none outlives a test.
	// No Unix socket: the default directory is not writable by an unprivileged user.
	c.cmd = exec.Command(filepath.Join(c.bin, "postgres"), "-D", c.data, "-p", port,
		"-c", "listen_addresses="+host, "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", syncCommit, "-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=200", "-c", "log_min_messages=warning")
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT}
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	go func() { c.exited <- c.cmd.Wait() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-c.exited:
			c.exited <- err // Stop reads it again
			return fmt.Errorf("pgtest: postgres exited before ready (%v):\n%s", err, strings.TrimSpace(c.logs.String()))
		case <-ctx.Done():
			c.stopProcess()
			return fmt.Errorf("pgtest: postgres not ready: %w:\n%s", ctx.Err(), strings.TrimSpace(c.logs.String()))
		case <-tick.C:
		}
		if c.ping(ctx) == nil {
			return nil
		}
	}
}

func (c *Cluster) ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := pgx.Connect(pctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(pctx)
}

// URL is the connection URL of database db as the superuser.
func (c *Cluster) URL(db string) string {
	return "postgres://postgres@" + c.Addr + "/" + db + "?sslmode=disable"
}

// NewDatabase creates an empty database and returns its URL.
func (c *Cluster) NewDatabase(ctx context.Context) (string, error) {
	c.mu.Lock()
	c.n++
	name := fmt.Sprintf("test_%d", c.n)
	c.mu.Unlock()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(context.Background())
	// FILE_COPY copies template0's few files instead of WAL-logging every block: much
	// faster for a database this small.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 STRATEGY FILE_COPY"); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return c.URL(name), nil
}

// Logs is what the postmaster printed so far.
func (c *Cluster) Logs() string { return strings.TrimSpace(c.logs.String()) }

// Stop ends the cluster (fast shutdown, SIGKILL after 10 s) and removes its directory.
func (c *Cluster) Stop() {
	c.once.Do(func() {
		c.stopProcess()
		os.RemoveAll(c.dir)
	})
}

// Crash stops the postmaster as `pg_ctl stop -m immediate` does (SIGQUIT: every backend
// ends at once, no checkpoint, the next start recovers from the WAL) and keeps its data
// for Restart: a database lost under its clients. Use a cluster of the test's own
// (Start, with CrashSafe unless losing the last commits is the point), never the shared
// one.
func (c *Cluster) Crash() {
	_ = c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case err := <-c.exited:
		c.exited <- err // Stop reads it again
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		c.exited <- <-c.exited
	}
}

// Restart starts a crashed cluster again on its data directory and address (the
// postmaster sets SO_REUSEADDR: the port is free again at once).
func (c *Cluster) Restart(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return c.run(ctx)
}

func (c *Cluster) stopProcess() {
	_ = c.cmd.Process.Signal(syscall.SIGINT) // fast shutdown: disconnect clients, checkpoint
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// freePort returns a loopback address whose port was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pgtest: find a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}
