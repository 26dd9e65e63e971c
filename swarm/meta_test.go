package swarm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/peer-project/peer/unixfs"
)

// TestApplyMeta: ApplyMeta, which a fetch's staging area and a follow's
// folders share, gives a file or a folder the stored permission bits less
// the mask (never setuid) and the stored time; it leaves a symbolic link
// and what it points to alone, a file alone when asked for folders only,
// and says when the path is gone.
func TestApplyMeta(t *testing.T) {
	dir := t.TempDir()
	file, sub, link := filepath.Join(dir, "f"), filepath.Join(dir, "sub"), filepath.Join(dir, "l")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", link); err != nil {
		t.Fatal(err)
	}
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	m := unixfs.Meta{Mode: 0o4777, Mtime: when}
	const mask = 0o022
	check := func(p string, mode fs.FileMode, mtime time.Time) {
		t.Helper()
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&(fs.ModePerm|fs.ModeSetuid) != mode || !fi.ModTime().Equal(mtime) {
			t.Errorf("%s: mode %v, time %v; want %v, %v", filepath.Base(p), fi.Mode(), fi.ModTime().UTC(), mode, mtime)
		}
	}
	fileTime := mustModTime(t, file)
	if err := ApplyMeta(file, m, mask, true); err != nil {
		t.Fatal(err)
	}
	check(file, 0o600, fileTime) // folders only: the file is left alone
	if err := ApplyMeta(link, m, mask, false); err != nil {
		t.Fatal(err)
	}
	check(file, 0o600, fileTime) // not through the link
	if err := ApplyMeta(file, m, mask, false); err != nil {
		t.Fatal(err)
	}
	check(file, 0o755, when)
	if err := ApplyMeta(sub, m, mask, true); err != nil {
		t.Fatal(err)
	}
	check(sub, 0o755, when)
	if err := ApplyMeta(filepath.Join(dir, "gone"), m, mask, false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing path: %v, want fs.ErrNotExist", err)
	}
}

func mustModTime(t *testing.T, p string) time.Time {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}
