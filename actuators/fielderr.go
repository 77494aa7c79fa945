package actuators

import (
	"fmt"
	"github.com/canaryd/canaryd/internal/field"
	"os"
)

// CheckTemplate parses text, recording under field a parse error or a field reference
// that would fail at every firing (an unknown field, a secret not among secrets, the
// names the actuator's secrets: map defines), and returns the template (nil when it
// does not parse).
func CheckTemplate(es *field.Errors, field, text string, secrets ...string) *Template {
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
func CheckEnvName(es *field.Errors, field, name string) {
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
