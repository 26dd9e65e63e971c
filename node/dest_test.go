package node

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefaultDest: without -o, a target goes to its own name in the folder
// the user is in, unless its sharer picked a name the user would not see as
// written: a dotfile (".ssh" fetched in ~ became ~/.ssh), leading or
// trailing spaces, characters that do not print as themselves. Those are
// refused with an error that says to pass -o.
func TestDefaultDest(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"photos", "two.txt", "été 2024", "日本語.txt", "a.b.c", "-x", "~x"} {
		got, err := DefaultDest(dir, name)
		if err != nil || got != filepath.Join(dir, name) {
			t.Errorf("DefaultDest(%q) = %q, %v; want %q", name, got, err, filepath.Join(dir, name))
		}
	}
	for _, name := range []string{".ssh", ".bashrc", ".", "..", ".x.peer-partial", " x", "x ", "\u00a0x", "a\u200bb", "invoice\u202Efdp.exe", "a\u3000", "a/b", ""} {
		got, err := DefaultDest(dir, name)
		if err == nil {
			t.Errorf("DefaultDest(%q) = %q, want an error", name, got)
			continue
		}
		if !strings.Contains(err.Error(), "-o NAME") {
			t.Errorf("DefaultDest(%q): the error does not say to pass -o NAME: %v", name, err)
		}
		if name != "" && name != "." && name != ".." && name != "a/b" && !errors.Is(err, ErrUnseenName) {
			t.Errorf("DefaultDest(%q) = %v, want ErrUnseenName", name, err)
		}
	}
}
