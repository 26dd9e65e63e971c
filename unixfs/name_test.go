package unixfs

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		msg  string // "" when valid
	}{
		{"a", ""},
		{"file.txt", ""},
		{".hidden", ""},
		{"...", ""},
		{"ünïcødé 名前 🙂", ""},
		{" leading and trailing space ", ""},
		{"CON", ""}, // Windows device names are the writer's problem
		{strings.Repeat("n", MaxNameLen), ""},
		{"", "empty"},
		{".", "relative path element"},
		{"..", "relative path element"},
		{"a/b", "path separator '/'"},
		{"/", "path separator '/'"},
		{`a\b`, `path separator '\\'`},
		{"C:", "contains ':'"},
		{"file:stream", "contains ':'"},
		{"a\x00b", "contains NUL"},
		{"tab\there", "control character U+0009"},
		{"new\nline", "control character U+000A"},
		{"del\x7f", "control character U+007F"},
		{"c1\u0085", "control character U+0085"},
		{"bad\xffutf8", "not valid UTF-8"},
		{strings.Repeat("n", MaxNameLen+1), "256 bytes long, limit 255"},
	}
	for _, tc := range tests {
		err := ValidName(tc.name)
		if tc.msg == "" {
			if err != nil {
				t.Errorf("ValidName(%q) = %v, want nil", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrName) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ValidName(%q) = %v, want ErrName saying %q", tc.name, err, tc.msg)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"a", "..", "a/b", "C:", "\x00", "ü", strings.Repeat("x", 300), "\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidName(name)
		if err != nil {
			if !errors.Is(err, ErrName) {
				t.Fatalf("error %v does not wrap ErrName", err)
			}
			return
		}
		// A valid name is one local path element on every system.
		if len(name) == 0 || len(name) > MaxNameLen || !utf8.ValidString(name) ||
			strings.ContainsAny(name, "/\\:\x00") || name == "." || name == ".." ||
			!filepath.IsLocal(name) || filepath.Base(name) != name {
			t.Fatalf("ValidName accepted %q", name)
		}
	})
}
