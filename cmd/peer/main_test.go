package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peer-project/peer/integrity"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp(&out, &errOut)
	err := app.RunContext(context.Background(), flagsFirst(app, append([]string{"peer"}, args...)))
	return out.String(), errOut.String(), err
}

func TestShareOnlyHashJSON(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80000 bytes
	path := filepath.Join(dir, "f.bin")
	os.WriteFile(path, data, 0o644)
	out, _, err := run(t, "share", "--only-hash", "--json", "--chunk-size", "16KiB", path)
	if err != nil {
		t.Fatal(err)
	}
	var got onlyHash
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	// 16 KiB chunks: a UnixFS root, but not the unixfs-v1-2025 one.
	if got.Size != int64(len(data)) || len(got.Chunks) != 5 || !strings.HasPrefix(got.Root, "bafybei") || got.Standard {
		t.Fatalf("got %+v", got)
	}
	var off int64
	for _, c := range got.Chunks {
		if c.Offset != off {
			t.Fatalf("chunk at %d, want %d", c.Offset, off)
		}
		if want := integrity.Chunk(data[off : off+int64(c.Size)]).String(); c.CID != want {
			t.Fatalf("chunk at %d: %s, want %s", off, c.CID, want)
		}
		off += int64(c.Size)
	}
	// The text form names the same root.
	text, _, err := run(t, "share", "--only-hash", "--chunk-size", "16384", path)
	if err != nil || !strings.HasPrefix(text, got.Root) {
		t.Fatalf("text output %q (err %v) does not start with %s", text, err, got.Root)
	}
}

func TestShareErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte("x"), 0o644)
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"share", "--only-hash"}, "name at least one"},
		{[]string{"share", "--only-hash", filepath.Join(dir, "missing")}, "does not exist"},
		{[]string{"share", "--only-hash", "--chunk-size", "1KiB", path}, "outside"},
		{[]string{"share", "--only-hash", "--chunk-size", "big", path}, "not a size"},
		{[]string{"share", "--only-hash", "--chunker", "rabin", path}, "want fixed or fastcdc"},
		{[]string{"share", filepath.Join(dir, "missing")}, "does not exist"},
	} {
		_, _, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("peer %v = %v, want an error saying %q", tc.args, err, tc.says)
		}
	}
}

func TestDemo(t *testing.T) {
	out, _, err := run(t, "demo", "--peers", "4", "--size", "4MiB", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep demoReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if !rep.AllVerified || len(rep.Fetchers) != 3 || rep.Size != 4<<20 {
		t.Fatalf("report %+v", rep)
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "peer ") {
		t.Fatalf("version = %q, %v", out, err)
	}
}

func TestFlagsFirst(t *testing.T) {
	app := newApp(nil, nil)
	for _, tc := range []struct{ in, want string }{
		{"peer get ROOT -o DEST", "peer get -o DEST ROOT"},
		{"peer get ROOT -o - --json", "peer get -o - --json ROOT"},
		{"peer get --force ROOT --peer=A --peer B", "peer get --force --peer=A --peer B ROOT"},
		{"peer share a --json b -- -c --home", "peer share --json a b -- -c --home"},
		{"peer version", "peer version"},
		{"peer nosuch x -y", "peer nosuch x -y"},
	} {
		got := strings.Join(flagsFirst(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("flagsFirst(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestOnlyHashFollowLinks: --only-hash computes the root that share
// would, --follow-links included.
func TestOnlyHashFollowLinks(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "outside.txt")
	os.WriteFile(outside, []byte("outside"), 0o644)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644)
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	var plain, follow onlyHash
	for _, x := range []struct {
		out  *onlyHash
		args []string
	}{{&plain, nil}, {&follow, []string{"--follow-links"}}} {
		out, _, err := run(t, append(append([]string{"share", "--only-hash", "--json"}, x.args...), dir)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(out), x.out); err != nil {
			t.Fatal(err)
		}
	}
	if plain.Files != 1 || follow.Files != 2 || plain.Root == follow.Root {
		t.Fatalf("without --follow-links %d files, root %s; with it %d files, root %s", plain.Files, plain.Root, follow.Files, follow.Root)
	}
}
