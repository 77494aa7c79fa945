package actuators

import (
	"fmt"
	"os"
	"strings"
)

// SecretFromFile reads a secret from the file at path, trimmed of surrounding
// whitespace (a trailing newline). Kinds that take a *_file call it when they are built,
// so a missing file fails the start or the reload, and again at each attempt, so a
// rotated token is used without a reload.
func SecretFromFile(field, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s: file %s is empty", field, path)
	}
	return v, nil
}

// HideSecrets replaces each secret in s by Secret, as sent and as escaped in a JSON
// string (a receiver that echoes a body back echoes the escaped form). Secrets shorter
// than 4 bytes are left: they would mangle ordinary text and hide nothing.
func HideSecrets(s string, secrets ...string) string {
	for _, v := range secrets {
		if len(v) < 4 {
			continue
		}
		s = strings.ReplaceAll(s, v, Secret)
		if b, err := MarshalJSON(v); err == nil {
			s = strings.ReplaceAll(s, string(b[1:len(b)-1]), Secret)
		}
	}
	return s
}

// HideSecretsErr is err with HideSecrets applied to its text and to the output it
// carries; whether it is worth retrying is kept.
func HideSecretsErr(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(*Error); ok {
		ae := &Error{Retry: e.Retry, RetryAfter: e.RetryAfter, Result: e.Result, Err: fmt.Errorf("%s", HideSecrets(e.Err.Error(), secrets...))}
		ae.Result.Output = HideSecrets(ae.Result.Output, secrets...)
		return ae
	}
	return fmt.Errorf("%s", HideSecrets(err.Error(), secrets...))
}
