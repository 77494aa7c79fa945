package datadog

import (
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/secretfile"
)

// newKeySource is where one key comes from: an environment variable, read once, or a
// file, read again whenever it changes (a rotated Kubernetes secret, see secretfile), so
// a new key is used without a restart. The key itself is never logged nor put in an
// error.
func newKeySource(what, env, file string, log *zap.Logger) (*secretfile.Source, error) {
	if file == "" {
		key, err := lookupKey(env, what)
		if err != nil {
			return nil, err
		}
		return secretfile.Fixed(key), nil
	}
	k, err := secretfile.Open(what, file, log)
	if err != nil {
		return nil, fmt.Errorf("datadog: %s: %w", what, err)
	}
	return k, nil
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
