package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// processUmask finds the umask without changing it: a file asked for
// with 0o777 gets 0o777 less the umask.
func processUmask(t *testing.T) os.FileMode {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o777)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ fi.Mode().Perm()
}

// TestPreserveModeMtime: a folder shared with PreserveMode and
// PreserveMtime is fetched with each file's and folder's permission bits
// (less the umask; setuid never) and modification time; shared without
// them, the fetched files get neither.
func TestPreserveModeMtime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mask := processUmask(t)
	dir := filepath.Join(t.TempDir(), "folder")
	big, _ := randomFile(t, dir, "sub/big.bin", 600<<10, 1)
	small, _ := randomFile(t, dir, "small.txt", 100, 2)
	run, _ := randomFile(t, dir, "run.sh", 10, 3)
	sub := filepath.Join(dir, "sub")
	want := map[string]struct {
		mode os.FileMode
		time time.Time
	}{
		big:   {0o640, time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)},
		small: {0o604, time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)},
		run:   {0o755 | os.ModeSetuid, time.Date(2019, 3, 4, 5, 6, 7, 0, time.UTC)},
		sub:   {0o750, time.Date(2018, 4, 5, 6, 7, 8, 0, time.UTC)},
	}
	for p, w := range want {
		if err := os.Chmod(p, w.mode); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(run); err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("run.sh is not setuid before sharing: %v, %v", fi, err)
	}
	for p, w := range want { // after every chmod and every file is written
		if err := os.Chtimes(p, w.time, w.time); err != nil {
			t.Fatal(err)
		}
	}
	a, b := carNode(t), carNode(t)
	for _, preserve := range []bool{true, false} {
		sh, err := a.Share(ctx, dir, ShareOptions{PreserveMode: preserve, PreserveMtime: preserve})
		if err != nil {
			t.Fatal(err)
		}
		if preserve && sh.Standard {
			t.Fatalf("shared with metadata, yet Standard")
		}
		dest := filepath.Join(t.TempDir(), "got")
		if _, err := b.Fetch(ctx, Target{Root: sh.Root}, dest, FetchOptions{Peers: []peer.AddrInfo{a.AddrInfo()}}); err != nil {
			t.Fatal(err)
		}
		for p, w := range want {
			rel, _ := filepath.Rel(dir, p)
			fi, err := os.Stat(filepath.Join(dest, rel))
			if err != nil {
				t.Fatal(err)
			}
			if preserve {
				if wm := w.mode.Perm() &^ mask; fi.Mode().Perm() != wm || fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
					t.Errorf("%s: mode %v, want %v (stored %v, umask %o)", rel, fi.Mode(), wm, w.mode, mask)
				}
				if !fi.ModTime().Equal(w.time) {
					t.Errorf("%s: modified %v, want %v", rel, fi.ModTime(), w.time)
				}
			} else if fi.ModTime().Equal(w.time) {
				t.Errorf("%s: shared without metadata, fetched with its time %v", rel, w.time)
			}
		}
	}
}

// TestShareSymlinks: a link inside a shared folder that stays inside is
// shared as a symlink and fetched as one; a link that leads out is left
// out; with FollowLinks both are followed.
func TestShareSymlinks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	outside := t.TempDir()
	_, secret := randomFile(t, outside, "secret.txt", 50, 4)
	dir := filepath.Join(t.TempDir(), "folder")
	_, data := randomFile(t, dir, "sub/f.bin", 300<<10, 5)
	if err := os.Symlink("sub/f.bin", filepath.Join(dir, "in")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	a, b := carNode(t), carNode(t)
	for _, follow := range []bool{false, true} {
		sh, err := a.Share(ctx, dir, ShareOptions{FollowLinks: follow})
		if err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(t.TempDir(), "got")
		if _, err := b.Fetch(ctx, Target{Root: sh.Root}, dest, FetchOptions{Peers: []peer.AddrInfo{a.AddrInfo()}}); err != nil {
			t.Fatal(err)
		}
		sameFile(t, filepath.Join(dest, "sub", "f.bin"), data)
		target, err := os.Readlink(filepath.Join(dest, "in"))
		if follow {
			if err == nil || sh.Files != 3 || len(sh.SkippedLinks) != 0 {
				t.Errorf("FollowLinks: in -> %q, %d files, left out %v; want a file, 3 files, none left out", target, sh.Files, sh.SkippedLinks)
			}
			sameFile(t, filepath.Join(dest, "in"), data)
			sameFile(t, filepath.Join(dest, "out"), secret)
			continue
		}
		if err != nil || target != "sub/f.bin" || sh.Files != 1 || len(sh.SkippedLinks) != 1 {
			t.Errorf("in -> %q (%v), %d files, left out %v; want a symlink to sub/f.bin, 1 file, out left out", target, err, sh.Files, sh.SkippedLinks)
		}
		sameFile(t, filepath.Join(dest, "in"), data) // through the link, read here
		if _, err := os.Lstat(filepath.Join(dest, "out")); !os.IsNotExist(err) {
			t.Errorf("the link out of the folder was fetched (%v)", err)
		}
	}
}
