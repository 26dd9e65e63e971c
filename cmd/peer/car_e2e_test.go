package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peer-project/peer/daemon"
)

// TestExportImportCLI: a folder shared by a daemon is exported to a CAR
// file with -o and to stdout, byte for byte the same; imported by a home
// with no daemon, its root is printed, and once that home's daemon runs, a
// third home gets the folder from it alone. A file that is no CAR is
// refused with a message that says so, and nothing is shared.
func TestExportImportCLI(t *testing.T) {
	files := map[string][]byte{
		"big.bin":     randomBytes(3<<20, 1),
		"sub/one.txt": []byte("one\n"),
	}
	src := filepath.Join(t.TempDir(), "folder")
	for rel, data := range files {
		writeFile(t, filepath.Join(src, rel), data)
	}
	a := startDaemon(t, "--dht", "off")
	var sh daemon.ShareInfo
	if err := json.Unmarshal([]byte(ok(t, "share", "--home", a.home, "--json", src)), &sh); err != nil {
		t.Fatal(err)
	}
	car := filepath.Join(t.TempDir(), "x.car")
	ok(t, "export", "--home", a.home, "-o", car, sh.Root)
	fails(t, "exists", "export", "--home", a.home, "-o", car, sh.Root)
	stdout := ok(t, "export", "--home", a.home, sh.Root)
	fileBytes, err := os.ReadFile(car)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal([]byte(stdout), fileBytes) || len(fileBytes) < 3<<20 {
		t.Fatalf("export to stdout: %d bytes; -o wrote %d; want the same CAR", len(stdout), len(fileBytes))
	}

	homeB := t.TempDir()
	out := ok(t, "import", "--home", homeB, car)
	if !strings.HasPrefix(out, sh.Root+"  ") {
		t.Fatalf("import printed %q, want the root %s first", out, sh.Root)
	}
	bad := filepath.Join(t.TempDir(), "bad.car")
	writeFile(t, bad, []byte("definitely not a CAR"))
	fails(t, "bad CAR header", "import", "--home", homeB, bad)
	var shares []daemon.ShareInfo
	if err := json.Unmarshal([]byte(ok(t, "ls", "--home", homeB, "--json")), &shares); err != nil {
		t.Fatal(err)
	}
	if len(shares) != 1 || shares[0].Root != sh.Root {
		t.Fatalf("shares of the importing home: %+v", shares)
	}

	b := startDaemonIn(t, homeB, "--dht", "off")
	dest := filepath.Join(t.TempDir(), "got")
	ok(t, "get", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--dht", "off", "--home", t.TempDir(),
		"--peer", b.info.Addrs[0], "-o", dest, sh.Root)
	sameTree(t, dest, files)
}
