package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// settled waits until every file under dir last changed long enough ago
// for a share to record its stamp, so that the next share of dir may reuse
// it: 100 ms, twice the store's racyAge, or 3.5 s where a ctime is whole
// seconds (racyAgeCoarse). That rule is about the clock (git's racy rule:
// a file changed as the share starts may change again unseen), so this is
// one wait for the clock to pass a known instant, not for another process;
// files written before a daemon starts have mostly passed it already.
func settled(t *testing.T, dir string) {
	t.Helper()
	var until time.Time
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			t.Fatalf("%s: no stat_t", p)
		}
		age := 100 * time.Millisecond
		if st.Ctim.Nsec == 0 {
			age = 3500 * time.Millisecond
		}
		if u := time.Unix(st.Ctim.Sec, st.Ctim.Nsec).Add(age); u.After(until) {
			until = u
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(until))
}

// TestShareAgainSaysReused: `peer share` of a folder again, after a file
// of it changed, says how many unchanged files it took from the last share
// and how many it read and hashed, as text and as JSON (through the
// daemon's API); a first share says nothing of it.
func TestShareAgainSaysReused(t *testing.T) {
	src := filepath.Join(t.TempDir(), "album")
	files := map[string][]byte{
		"a.bin":     randomBytes(3<<20, 1),
		"b.txt":     []byte("hello, peer\n"),
		"sub/c.bin": randomBytes(1<<20, 3),
		"sub/d.bin": randomBytes(512<<10, 4),
	}
	for rel, data := range files {
		writeFile(t, filepath.Join(src, rel), data)
	}
	a := startDaemon(t)
	share := func(args ...string) string {
		t.Helper()
		settled(t, src)
		r := peerCmd(t, nil, append([]string{"share", "--home", a.home}, append(args, src)...)...)
		if r.code != 0 {
			t.Fatalf("peer share: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stderr, "reused") {
			t.Fatalf("peer share wrote of reuse on stderr: %q", r.stderr)
		}
		return r.stdout
	}
	reuseLine := func(out string) string {
		for l := range strings.SplitSeq(out, "\n") {
			if strings.Contains(l, "reused") {
				return l
			}
		}
		return ""
	}

	if l := reuseLine(share()); l != "" {
		t.Fatalf("the first share says %q; want no word of reuse", l)
	}

	writeFile(t, filepath.Join(src, "b.txt"), []byte("hello, PEER\n"))
	out := share()
	if l, want := reuseLine(out), "  reused 3 unchanged files (4.5 MiB) from the last share; hashed 1 file (12 B)"; l != want {
		t.Fatalf("after one file changed, share says %q; want %q\nstdout:\n%s", l, want, out)
	}

	// The same bytes written again: a new stamp, so read again.
	writeFile(t, filepath.Join(src, "sub/d.bin"), files["sub/d.bin"])
	var got map[string]any
	if err := json.Unmarshal([]byte(share("--json")), &got); err != nil {
		t.Fatal(err)
	}
	if got["reused"] != 3.0 || got["reused_bytes"] != float64(3<<20+1<<20+12) {
		t.Fatalf("share --json: reused %v files, %v bytes; want 3 files, %d bytes", got["reused"], got["reused_bytes"], 3<<20+1<<20+12)
	}

	if l, want := reuseLine(share()), "  reused 4 unchanged files (4.5 MiB) from the last share; hashed nothing"; l != want {
		t.Fatalf("with nothing changed, share says %q; want %q", l, want)
	}

	// A first share's JSON has no reuse in it.
	other := filepath.Join(t.TempDir(), "other.txt")
	writeFile(t, other, []byte("never shared before\n"))
	var first map[string]any
	if err := json.Unmarshal([]byte(ok(t, "share", "--home", a.home, "--json", other)), &first); err != nil {
		t.Fatal(err)
	}
	if r, ok := first["reused"]; ok {
		t.Fatalf("a first share's JSON says reused %v", r)
	}
}

// TestShareForegroundSaysReused: with no daemon, a share in the
// foreground of a folder shared before by this home says what it reused
// as a share through the daemon does.
func TestShareForegroundSaysReused(t *testing.T) {
	home := t.TempDir()
	src := filepath.Join(t.TempDir(), "docs")
	writeFile(t, filepath.Join(src, "big.bin"), randomBytes(2<<20, 5))
	writeFile(t, filepath.Join(src, "note.txt"), []byte("first draft\n"))
	// share runs `peer share` in the foreground until it has printed its
	// ticket, stops it with Ctrl-C, and returns all it printed.
	share := func() []string {
		t.Helper()
		settled(t, src)
		p := startProc(t, "share", "--home", home, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--dht", "off", src)
		var out []string
		for len(out) == 0 || !strings.HasPrefix(out[len(out)-1], "ticket: ") {
			l, more := p.line(t, 30*time.Second)
			if !more {
				t.Fatalf("share exited: %s", p.stderr)
			}
			out = append(out, l)
		}
		// What follows the ticket is printed before it seeds: Ctrl-C
		// cuts nothing of it.
		if code := p.signal(t, os.Interrupt); code != 0 {
			t.Fatalf("foreground share: exit %d after Ctrl-C; stderr:\n%s", code, p.stderr)
		}
		for l := range p.lines {
			out = append(out, l)
		}
		return out
	}
	if out := share(); strings.Contains(strings.Join(out, "\n"), "reused") {
		t.Fatalf("the first share says:\n%s", strings.Join(out, "\n"))
	}
	writeFile(t, filepath.Join(src, "note.txt"), []byte("second draft, longer\n"))
	out := share()
	want := "  reused 1 unchanged file (2.0 MiB) from the last share; hashed 1 file (21 B)"
	if len(out) != 3 || out[2] != want {
		t.Fatalf("share again says:\n%s\nwant its third line %q", strings.Join(out, "\n"), want)
	}
}
