package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShareNotStandardNote: a root that is not the unixfs-v1-2025 one
// (other chunking, or metadata stored) is said to be so by share through
// the daemon, as by --only-hash; the default root is not.
func TestShareNotStandardNote(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.bin")
	writeFile(t, path, randomBytes(3<<20, 9))
	a := startDaemon(t, "--dht", "off")
	const note = "not the unixfs-v1-2025 one"
	for _, tc := range []struct {
		args []string
		note bool
	}{
		{nil, false},
		{[]string{"--chunk-size", "256KiB"}, true},
		{[]string{"--preserve-mtime"}, true},
		{[]string{"--preserve-mode"}, true},
	} {
		for _, only := range []bool{true, false} {
			args := append([]string{"share", "--home", a.home}, tc.args...)
			if only {
				args = append(args, "--only-hash")
			}
			out := ok(t, append(args, path)...)
			if got := strings.Contains(out, note); got != tc.note {
				t.Errorf("peer %s: note %v, want %v:\n%s", strings.Join(args, " "), got, tc.note, out)
			}
			var js struct {
				Standard *bool `json:"standard"`
			}
			if err := json.Unmarshal([]byte(ok(t, append(append(args, "--json"), path)...)), &js); err != nil || js.Standard == nil || *js.Standard == tc.note {
				t.Errorf("peer %s --json: standard %v (err %v), want %v", strings.Join(args, " "), js.Standard, err, !tc.note)
			}
		}
	}
}

// TestGetAppliesMeta: shared with --preserve-mode --preserve-mtime, a file
// is fetched with its mode and time.
func TestGetAppliesMeta(t *testing.T) {
	path := filepath.Join(t.TempDir(), "script.sh")
	writeFile(t, path, []byte("#!/bin/sh\necho hi\n"))
	when := time.Date(2022, 2, 2, 2, 2, 2, 0, time.UTC)
	os.Chmod(path, 0o700)
	os.Chtimes(path, when, when)
	a := startDaemon(t, "--dht", "off")
	var sh struct{ Root string }
	json.Unmarshal([]byte(ok(t, "share", "--home", a.home, "--json", "--preserve-mode", "--preserve-mtime", path)), &sh)
	dest := filepath.Join(t.TempDir(), "got.sh")
	ok(t, "get", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--dht", "off", "--home", t.TempDir(),
		"--peer", a.info.Addrs[0], "-o", dest, sh.Root)
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 || !fi.ModTime().Equal(when) {
		t.Fatalf("fetched %v modified %v; want -rwx------ modified %v", fi.Mode(), fi.ModTime(), when)
	}
}
