package analysis

import (
	"unicode/utf8"
)

// BadText returns the byte offset of the first thing in s that no stored text may hold,
// and a word for it, or -1. Stored text reaches actuators' environment variables and
// headers, log lines and pages: a NUL, CR or LF there makes every exec and webhook
// actuator fail, and a line or paragraph separator splits a log line. So invalid UTF-8,
// the C0 and C1 control characters (DEL included) and U+2028/U+2029 are refused.
func BadText(s string) (int, string) {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && isInvalidAt(s, i):
			return i, "invalid UTF-8"
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			return i, "a control character"
		case r == 0x2028 || r == 0x2029:
			return i, "a line or paragraph separator (U+2028/U+2029)"
		}
	}
	return -1, ""
}

// isInvalidAt reports whether the RuneError at s[i] comes from an invalid byte rather than
// an encoded U+FFFD, which is a valid character.
func isInvalidAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 1
}

// CheckText is BadText as an *InputError naming field, or nil.
func CheckText(field, s string) error {
	if i, what := BadText(s); i >= 0 {
		return inputErr(field, "must not contain %s (at byte %d)", what, i)
	}
	return nil
}
