// Package secretfile holds a secret (an API key, a cloud secret key) given inline, by an
// environment variable, or by a file that is read again whenever its modification time
// or size changes (a rotated Kubernetes secret), so that a new secret is used without a
// restart. It never logs a secret nor puts one in an error.
package secretfile

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// MaxSize bounds a secret file: a key is tens of bytes; a larger file is the wrong file.
const MaxSize = 4 << 10

// Source is one secret. It is safe for concurrent use.
type Source struct {
	name, path string // name is what the secret is, for logs ("API key")
	log        *zap.Logger

	mu      sync.Mutex
	value   string
	modTime time.Time
	size    int64
}

// Fixed is a secret that never changes (inline in the config, or read from the
// environment at start).
func Fixed(value string) *Source { return &Source{value: value} }

// Open reads the secret file at path now; its errors name the path, never the content.
// Later reads log through log (nil: none) under name.
func Open(name, path string, log *zap.Logger) (*Source, error) {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Source{name: name, path: path, log: log}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	v, err := read(path, fi)
	if err != nil {
		return nil, err
	}
	s.value, s.modTime, s.size = v, fi.ModTime(), fi.Size()
	return s, nil
}

// Get is the current secret. A file that changed is read again; one that cannot be read
// (mid-rotation, removed, emptied) keeps the last secret and says so in the log.
func (s *Source) Get() string {
	if s.path == "" {
		return s.value
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.path)
	if err == nil && fi.ModTime().Equal(s.modTime) && fi.Size() == s.size {
		return s.value
	}
	if err == nil {
		var v string
		if v, err = read(s.path, fi); err == nil {
			s.value, s.modTime, s.size = v, fi.ModTime(), fi.Size()
			s.log.Info("secret file reread", zap.String("secret", s.name), zap.String("file", s.path))
			return s.value
		}
	}
	s.log.Warn("secret file unreadable; the last secret read stays in use", zap.String("secret", s.name), zap.String("file", s.path), zap.Error(err))
	return s.value
}

// read reads a secret file: the whole file, trimmed of surrounding white space.
func read(path string, fi os.FileInfo) (string, error) {
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > MaxSize {
		return "", fmt.Errorf("%s is %d bytes, more than a key (at most %d)", path, fi.Size(), MaxSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	switch {
	case v == "":
		return "", fmt.Errorf("%s is empty", path)
	case strings.ContainsAny(v, " \t\r\n"):
		// A header value with a line break would be refused by net/http: say it here.
		return "", fmt.Errorf("%s holds more than one word; it must hold the key alone", path)
	}
	return v, nil
}
