package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Secret is a credential or token named in the config. Its YAML form is a
// reference — env:NAME or file:/path — resolved at load; a bare value is
// accepted for tests and demos but reported by Warnings, because a secret
// written into a config file ends up in backups and version control.
//
// Secret deliberately has no String method that reveals the value: printing a
// Secret prints its reference only.
type Secret struct {
	ref   string
	value string
}

// UnmarshalText keeps the reference; Resolve reads it.
func (s *Secret) UnmarshalText(b []byte) error {
	s.ref = string(b)
	return nil
}

// Value returns the resolved secret. It is empty before Resolve.
func (s Secret) Value() string { return s.value }

// Ref returns the reference as written (env:NAME, file:/path or "literal").
func (s Secret) Ref() string {
	if s.IsLiteral() {
		return "literal"
	}
	return s.ref
}

// IsLiteral reports whether the secret was written inline in the config.
func (s Secret) IsLiteral() bool {
	return !strings.HasPrefix(s.ref, "env:") && !strings.HasPrefix(s.ref, "file:")
}

// String never reveals the value.
func (s Secret) String() string { return s.Ref() }

// GoString never reveals the value, even under %#v.
func (s Secret) GoString() string { return "config.Secret(" + s.Ref() + ")" }

// NewSecret is used by tests and by code that builds configs in memory.
func NewSecret(value string) Secret { return Secret{ref: value, value: value} }

// errEmptySecret is returned when a reference resolves to nothing.
var errEmptySecret = errors.New("secret is empty")

// Resolve reads the secret behind its reference.
func (s *Secret) Resolve(lookupEnv func(string) (string, bool)) error {
	switch {
	case s.ref == "":
		return errors.New("is required (use env:NAME or file:/path)")
	case strings.HasPrefix(s.ref, "env:"):
		name := strings.TrimPrefix(s.ref, "env:")
		v, ok := lookupEnv(name)
		if !ok {
			return fmt.Errorf("env %s is not set", name)
		}
		if v == "" {
			return fmt.Errorf("env %s: %w", name, errEmptySecret)
		}
		s.value = v
	case strings.HasPrefix(s.ref, "file:"):
		path := strings.TrimPrefix(s.ref, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			// The path is not secret; the contents are.
			return fmt.Errorf("file %s: %w", path, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return fmt.Errorf("file %s: %w", path, errEmptySecret)
		}
		s.value = v
	default:
		s.value = s.ref
	}
	return nil
}
