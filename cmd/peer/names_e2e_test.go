package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readDir returns the files below dir but the follow's own folder.
func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = string(b)
		}
	}
	return out
}

// waitLine waits for a line of p's stdout that holds want.
func waitLine(t *testing.T, p *proc, want string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		l, ok := p.line(t, time.Until(deadline))
		if !ok {
			t.Fatalf("%v ended before printing %q; stderr:\n%s", p.cmd.Args, want, p.stderr)
		}
		if strings.Contains(l, want) {
			return l
		}
	}
	t.Fatalf("%v: no line with %q in a minute; stderr:\n%s", p.cmd.Args, want, p.stderr)
	return ""
}

// TestPublishFollowE2E: A's daemon publishes a folder under a named key;
// B's daemon gets a file of it by name; a foreground `get --follow` keeps
// a folder equal to the name's latest version as A publishes again.
func TestPublishFollowE2E(t *testing.T) {
	a := startDaemon(t, "--dht", "off")
	b := startDaemon(t, "--dht", "off")
	site := filepath.Join(t.TempDir(), "site")
	writeFile(t, filepath.Join(site, "index.html"), []byte("<h1>one</h1>\n"))
	writeFile(t, filepath.Join(site, "old.txt"), []byte("to be deleted\n"))
	r := peerCmd(t, nil, "publish", "--home", a.home, "--key", "site", site)
	if r.code != 0 {
		t.Fatalf("publish: exit %d: %s", r.code, r.stderr)
	}
	name := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(name, "/ipns/k51") || strings.Contains(name, "\n") {
		t.Fatalf("publish printed %q; want one line, /ipns/k51…", r.stdout)
	}
	if !strings.Contains(r.stderr, "(sequence 1)") {
		t.Errorf("publish said %q; want the sequence", r.stderr)
	}
	t.Logf("peer publish --key site %s\n%s%s", site, r.stdout, r.stderr)

	// A one-off get by name, through B's daemon.
	got := filepath.Join(t.TempDir(), "index.html")
	ok(t, "get", "--home", b.home, name+"/index.html", "-o", got, "--peer", a.info.Addrs[0])
	if b, _ := os.ReadFile(got); string(b) != "<h1>one</h1>\n" {
		t.Fatalf("get %s/index.html: %q", name, b)
	}

	// The ticket of the name, and inspect by name.
	tk := ""
	for _, l := range strings.Split(r.stderr, "\n") {
		if _, after, ok := strings.Cut(l, "): peer1"); ok {
			tk = "peer1" + after
		}
	}
	if tk == "" {
		t.Fatalf("publish printed no ticket: %q", r.stderr)
	}
	got2 := filepath.Join(t.TempDir(), "via-ticket")
	ok(t, "get", "--home", b.home, tk, "-o", got2)
	if b, _ := os.ReadFile(filepath.Join(got2, "index.html")); string(b) != "<h1>one</h1>\n" {
		t.Fatalf("get of the name's ticket: index.html %q", b)
	}
	if out := ok(t, "inspect", "--home", b.home, name); !strings.Contains(out, "index.html") || !strings.Contains(out, "old.txt") {
		t.Fatalf("inspect %s: %q", name, out)
	}

	// Follow, in the foreground (no daemon on this home).
	mirror := filepath.Join(t.TempDir(), "mirror")
	f := startProc(t, "get", "--follow", name, "-o", mirror, "--home", t.TempDir(),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--dht", "off", "--peer", a.info.Addrs[0])
	t.Logf("follow: %s", waitLine(t, f, "sequence 1"))
	if m := readDir(t, mirror); len(m) != 2 || m["index.html"] != "<h1>one</h1>\n" {
		t.Fatalf("the mirror holds %v", m)
	}

	writeFile(t, filepath.Join(site, "index.html"), []byte("<h1>two</h1>\n"))
	writeFile(t, filepath.Join(site, "new.txt"), []byte("added\n"))
	os.Remove(filepath.Join(site, "old.txt"))
	r = peerCmd(t, nil, "publish", "--home", a.home, "--key", "site", site)
	if r.code != 0 || strings.TrimSpace(r.stdout) != name || !strings.Contains(r.stderr, "(sequence 2)") {
		t.Fatalf("publish again: exit %d, %q, %q; want the same name at sequence 2", r.code, r.stdout, r.stderr)
	}
	l := waitLine(t, f, "sequence 2")
	t.Logf("follow: %s", l)
	if !strings.Contains(l, "2 written, 1 removed") {
		t.Errorf("follow said %q; want 2 written, 1 removed", l)
	}
	// What the version moved: the two files written (13 B and 6 B) came
	// from the publisher; nothing here held their bytes.
	if !strings.Contains(l, "; 19 B received, 0 B copied from files already here") {
		t.Errorf("follow said %q; want 19 B received, 0 B copied from files already here", l)
	}
	want := map[string]string{"index.html": "<h1>two</h1>\n", "new.txt": "added\n"}
	if m := readDir(t, mirror); len(m) != 2 || m["index.html"] != want["index.html"] || m["new.txt"] != want["new.txt"] {
		t.Fatalf("the mirror holds %v; want %v", m, want)
	}
	if code := f.signal(t, syscall.SIGINT); code != 0 {
		t.Errorf("get --follow exited %d on Ctrl-C; stderr:\n%s", code, f.stderr)
	}

	// A follow into a file is refused, and the file kept.
	file := filepath.Join(t.TempDir(), "a-file")
	writeFile(t, file, []byte("mine\n"))
	fails(t, "name a folder", "get", "--follow", name, "-o", file, "--home", b.home)
	if b, _ := os.ReadFile(file); string(b) != "mine\n" {
		t.Fatalf("the file is now %q", b)
	}
	fails(t, "-o DIR", "get", "--follow", name, "--home", b.home)

	// share --watch publishes under the node's own name.
	r = peerCmd(t, nil, "share", "--home", a.home, "--watch", site)
	if r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), "/ipns/k51") || strings.TrimSpace(r.stdout) == name ||
		!strings.Contains(r.stderr, "publishes "+site+" again whenever it changes") {
		t.Fatalf("share --watch: exit %d, %q, %q; want the node's own name and the watch", r.code, r.stdout, r.stderr)
	}
}
