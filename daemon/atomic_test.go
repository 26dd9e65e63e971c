package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWriteFileAtomicSyncs: api.token, api.addr and config.json are written
// to a temporary file that is flushed before it is renamed into place, and
// the folder is flushed after the rename, so a crash leaves the old file or
// the new one, never an empty or torn one.
func TestWriteFileAtomicSyncs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, TokenFile)
	var events []string
	real := osOps()
	ops := fileOps{
		syncFile: func(f *os.File) error {
			b, _ := os.ReadFile(f.Name())
			events = append(events, "sync file holding "+string(b))
			return real.syncFile(f)
		},
		rename: func(o, n string) error {
			events = append(events, "rename to "+filepath.Base(n))
			return real.rename(o, n)
		},
		syncDir: func(d string) error {
			events = append(events, "sync dir "+d)
			return real.syncDir(d)
		},
	}
	if err := writeFileAtomicOps(path, []byte("secret\n"), 0o600, ops); err != nil {
		t.Fatal(err)
	}
	want := []string{"sync file holding secret\n", "rename to " + TokenFile, "sync dir " + dir}
	if !slices.Equal(events, want) {
		t.Fatalf("calls %q, want %q", events, want)
	}
	fi, err := os.Stat(path)
	if b, _ := os.ReadFile(path); err != nil || string(b) != "secret\n" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file: %q, %v", b, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left in the folder: %v", ents)
	}
}
