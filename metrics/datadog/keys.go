package datadog

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// maxKeyFile bounds a key file: a key is tens of bytes; a larger file is the wrong file.
const maxKeyFile = 4 << 10

// keySource is where one key comes from: an environment variable, read once, or a file,
// read again whenever its modification time or size changes (a rotated Kubernetes
// secret), so a new key is used without a restart. The key itself is never logged nor
// put in an error.
type keySource struct {
	what, env, file string
	log             *zap.Logger

	mu      sync.Mutex
	key     string
	modTime time.Time
	size    int64
}

func newKeySource(what, env, file string) (*keySource, error) {
	k := &keySource{what: what, env: env, file: file, log: zap.NewNop()}
	if file == "" {
		key, err := lookupKey(env, what)
		if err != nil {
			return nil, err
		}
		k.key = key
		return k, nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("datadog: %s: %w", what, err)
	}
	key, err := readKey(file, fi)
	if err != nil {
		return nil, fmt.Errorf("datadog: %s: %w", what, err)
	}
	k.key, k.modTime, k.size = key, fi.ModTime(), fi.Size()
	return k, nil
}

// get is the current key. A file that changed is read again; one that cannot be read
// (mid-rotation, removed) keeps the last key and says so in the log.
func (k *keySource) get() string {
	if k.file == "" {
		return k.key
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	fi, err := os.Stat(k.file)
	if err == nil && fi.ModTime().Equal(k.modTime) && fi.Size() == k.size {
		return k.key
	}
	if err == nil {
		var key string
		if key, err = readKey(k.file, fi); err == nil {
			k.key, k.modTime, k.size = key, fi.ModTime(), fi.Size()
			k.log.Info("datadog key file reread", zap.String("key", k.what), zap.String("file", k.file))
			return k.key
		}
	}
	k.log.Warn("datadog key file unreadable; the last key read stays in use", zap.String("key", k.what), zap.String("file", k.file), zap.Error(err))
	return k.key
}

// readKey reads a key file: the whole file, trimmed of surrounding white space.
func readKey(path string, fi os.FileInfo) (string, error) {
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > maxKeyFile {
		return "", fmt.Errorf("%s is %d bytes, more than a key (at most %d)", path, fi.Size(), maxKeyFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(b))
	switch {
	case key == "":
		return "", fmt.Errorf("%s is empty", path)
	case strings.ContainsAny(key, " \t\r\n"):
		// A header value with a line break would be refused by net/http: say it here.
		return "", fmt.Errorf("%s holds more than one word; it must hold the key alone", path)
	}
	return key, nil
}

func lookupKey(env, what string) (string, error) {
	v, ok := os.LookupEnv(env)
	v = strings.TrimSpace(v)
	switch {
	case !ok:
		return "", fmt.Errorf("datadog: %s: environment variable %s is not set", what, env)
	case v == "":
		return "", fmt.Errorf("datadog: %s: environment variable %s is empty", what, env)
	}
	return v, nil
}
