package node

// Disk trouble: a destination that fills up, and a shared file edited
// behind the node's back.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/swarm"
)

// mountTmpfs mounts a tmpfs of the given size (e.g. "8m") on a fresh
// directory and unmounts it in Cleanup. It skips the test where that is
// not possible (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s): the disk-full test needs mount rights", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestFetchDiskFull fetches 16 MiB into an 8 MiB filesystem: the fetch
// must fail, in bounded time, with an error that says the disk is full; the
// chunks it verified must stay in the staging file; once the filesystem is
// grown, fetching again resumes from them and completes bit-identical.
func TestFetchDiskFull(t *testing.T) {
	small := mountTmpfs(t, "8m")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := startNode(t, testConfig(t))
	path, data := randomFile(t, t.TempDir(), "f.bin", 16<<20, 8)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, testConfig(t))
	dest := filepath.Join(small, "f.bin")
	hint := []peer.AddrInfo{a.AddrInfo()}

	// Bounded: a fetch that keeps re-requesting chunks it cannot write
	// would run until this deadline (filling 8 MiB takes well under 1 s).
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = b.Fetch(fctx, Target{Root: sh.Root}, dest, FetchOptions{Peers: hint})
	fcancel()
	if err == nil {
		t.Fatal("a 16 MiB fetch into an 8 MiB filesystem succeeded")
	}
	served := a.Stats().ChunksServed
	t.Logf("fetch into a full disk: %v (the sharer served %d chunks of 64)", err, served)
	// A loop until the deadline is reported at the end, once the rest is checked.
	loops := errors.Is(err, context.DeadlineExceeded)
	if !loops {
		msg := strings.ToLower(err.Error())
		if !strings.Contains(msg, "no space left") && !strings.Contains(msg, "disk full") && !strings.Contains(msg, "disk is full") {
			t.Errorf("the error does not say the disk is full: %v", err)
		}
		if !strings.Contains(err.Error(), small) {
			t.Errorf("the error does not name where it was writing (%s): %v", small, err)
		}
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Errorf("after the failed fetch, %s exists (err %v)", dest, err)
	}
	// What was verified is kept in the staging file.
	kept := int64(len(staged(t, swarm.PartialPath(dest, sh.Root), data)))
	if kept == 0 {
		t.Fatalf("no verified chunk kept after the disk filled up")
	}

	// Make room and fetch again.
	if out, err := exec.Command("mount", "-o", "remount,size=64m", small).CombinedOutput(); err != nil {
		t.Fatalf("growing the tmpfs: %v: %s", err, out)
	}
	res, err := b.Fetch(ctx, Target{Root: sh.Root}, dest, FetchOptions{Peers: hint})
	if err != nil {
		t.Fatalf("fetch after room was made: %v", err)
	}
	sameFile(t, dest, data)
	t.Logf("kept %d chunks; the second fetch resumed %d of %d", kept, res.Progress.Resumed, res.Progress.Of)
	if res.Progress.Resumed < kept {
		t.Fatalf("the second fetch resumed %d chunks, but %d were kept", res.Progress.Resumed, kept)
	}
	if loops {
		t.Errorf("the fetch into a full filesystem did not fail but looped until the deadline (the sharer served %d chunks for a 64-chunk file)", served)
	}
}

// staged returns the indices of the 256 KiB chunks of data that the staging
// file at partial holds, what a resumed fetch finds there and keeps.
func staged(t *testing.T, partial string, data []byte) map[int64]bool {
	t.Helper()
	const chunk = 256 << 10
	b, err := os.ReadFile(partial)
	if err != nil {
		t.Fatalf("staging file: %v", err)
	}
	have := map[int64]bool{}
	for i := range int64(len(data) / chunk) {
		lo, hi := i*chunk, (i+1)*chunk
		if int64(len(b)) >= hi && string(b[lo:hi]) == string(data[lo:hi]) {
			have[i] = true
		}
	}
	return have
}

// TestEditedShareNotServed shares a file, then overwrites one chunk of it
// in place, either as an editor does (the modification time changes) or
// keeping the old modification time (a tool that restores it, or an edit
// within the clock's granularity). Another node fetching it must never
// receive the changed chunk nor any bytes that fail their hash: the sharer
// checks the file's size and time, and re-verifies every chunk it reads.
// The fetch must not complete and the share must be marked stale. With the
// time kept, every unchanged chunk is still served.
func TestEditedShareNotServed(t *testing.T) {
	for _, keepTime := range []bool{false, true} {
		t.Run(map[bool]string{false: "mtime-changed", true: "mtime-kept"}[keepTime], func(t *testing.T) {
			testEditedShare(t, keepTime)
		})
	}
}

func testEditedShare(t *testing.T, keepTime bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := startNode(t, testConfig(t))
	path, data := randomFile(t, t.TempDir(), "f.bin", 8<<20, 9)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite chunk 10 in place: same size, new bytes.
	const chunk, edited = 256 << 10, 10
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, chunk)
	for i := range junk {
		junk[i] = byte(i*7 + 1)
	}
	if _, err := f.WriteAt(junk, edited*chunk); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if keepTime {
		if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
	}

	b := startNode(t, testConfig(t))
	dest := filepath.Join(t.TempDir(), "f.bin")
	// The fetch cannot complete: it is stopped once the sharer has found
	// the share stale and (with the time kept) every unchanged chunk has
	// arrived, or after 20 s.
	unchanged := int64(len(data)/chunk - 1)
	fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
	defer fcancel()
	_, err = b.Fetch(fctx, Target{Root: sh.Root}, dest, FetchOptions{Peers: []peer.AddrInfo{a.AddrInfo()}, Progress: func(p Progress) {
		if p.Of == 0 || (keepTime && p.Chunks < unchanged) {
			return
		}
		if shares, err := a.Shares(); err == nil && len(shares) == 1 && shares[0].Stale {
			fcancel()
		}
	}})
	t.Logf("fetch of an edited share: %v; fetcher %+v; sharer %+v", err, b.Stats(), a.Stats())
	if err == nil {
		t.Fatalf("the fetch of a share whose chunk %d was overwritten completed", edited)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the share was not found stale (or, with the time kept, the unchanged chunks did not all arrive) within 20 s")
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Errorf("a destination exists after the failed fetch (err %v)", err)
	}
	if st := b.Stats(); st.ChunksRejected != 0 || st.Bans != 0 {
		t.Errorf("the sharer sent bytes that failed their hash: %d chunks rejected, %d bans", st.ChunksRejected, st.Bans)
	}
	have := staged(t, swarm.PartialPath(dest, sh.Root), data)
	if have[edited] {
		t.Errorf("chunk %d, edited at the sharer, was verified by the fetcher", edited)
	}
	got := int64(len(have))
	t.Logf("the fetcher verified %d of the %d unchanged chunks", got, unchanged)
	if keepTime && got != unchanged {
		t.Errorf("the fetcher verified %d chunks; want every unchanged one, %d", got, unchanged)
	}
	shares, err := a.Shares()
	if err != nil || len(shares) != 1 {
		t.Fatalf("Shares() = %+v, %v", shares, err)
	}
	if !shares[0].Stale {
		t.Errorf("a share whose file was edited is not marked stale: %+v", shares[0])
	}
}
