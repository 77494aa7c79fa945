package actuators

import (
	"fmt"
	"os"
	"strings"
)

// FieldError is one invalid key of a kind's config, by its YAML path inside the
// actuator's entry (timeout, command[2], headers.Authorization); configs prefixes the
// actuator's own path.
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// FieldErrors is every problem found in one config.
type FieldErrors []FieldError

// Add records a problem with field.
func (es *FieldErrors) Add(field, format string, args ...any) {
	*es = append(*es, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Err returns es as an error, or nil when empty.
func (es FieldErrors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Index is the path of element i of a list field.
func Index(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }

// CheckTemplate parses text, recording under field a parse error or a field reference
// that would fail at every firing (an unknown field, a secret not among secrets, the
// names the actuator's secrets: map defines), and returns the template (nil when it
// does not parse).
func CheckTemplate(es *FieldErrors, field, text string, secrets ...string) *Template {
	t, err := ParseTemplate(field, text)
	if err != nil {
		es.Add(field, "%v", err)
		return nil
	}
	if err := checkFields(t, secrets); err != nil {
		es.Add(field, "%v", err)
	}
	return t
}

// SecretFromEnv reads a secret from the environment variable name. It is called when an
// actuator is built (canaryd serve, reload), never by check-config, so configs can be
// checked on a machine without the secrets.
func SecretFromEnv(field, name string) (string, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return "", fmt.Errorf("%s: environment variable %s is not set or empty", field, name)
	}
	return v, nil
}

// CheckEnvName records an error when name is not a valid environment variable name.
func CheckEnvName(es *FieldErrors, field, name string) {
	if name == "" {
		es.Add(field, "required")
		return
	}
	for i, r := range name {
		if r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		es.Add(field, "%q is not an environment variable name", name)
		return
	}
}
