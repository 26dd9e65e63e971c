package node

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-varint"

	"github.com/peer-project/peer/carfile"
	"github.com/peer-project/peer/unixfs"
)

func carNode(t *testing.T) *Node {
	t.Helper()
	cfg := testConfig(t)
	cfg.NoDHT = true
	return startNode(t, cfg)
}

// carFolder writes a folder of files: several leaves, one leaf, empty, nested.
func carFolder(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "folder")
	files := map[string][]byte{}
	for i, f := range []struct {
		name string
		size int
	}{{"big.bin", 700 << 10}, {"sub/small.txt", 1000}, {"sub/deeper/empty", 0}, {"one.bin", 256 << 10}} {
		_, b := randomFile(t, dir, f.name, f.size, uint64(100+i))
		files[f.name] = b
	}
	return dir, files
}

// TestExportImportRoundTrip: a share exported as a CAR, imported on a
// node that never saw it, is served by that node: a third fetches it from
// there alone, byte for byte; a fourth exports it from that node over the
// swarm and gets the same CAR.
func TestExportImportRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, files := carFolder(t)
	a, b, c, d := carNode(t), carNode(t), carNode(t), carNode(t)
	sh, err := a.Share(ctx, dir, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	ex, err := a.Export(ctx, Target{Root: sh.Root}, &car, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ex.Fetched || ex.Root != sh.Root || ex.Blocks < 6 {
		t.Fatalf("export from the sharer: %+v", ex)
	}
	im, err := b.Import(ctx, bytes.NewReader(car.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Roots) != 1 || im.Roots[0] != sh.Root || im.Blocks != ex.Blocks {
		t.Fatalf("import: %+v; want root %s and %d blocks", im, sh.Root, ex.Blocks)
	}
	if rel, err := filepath.Rel(b.cfg.Home, im.Path); err != nil || !filepath.IsLocal(rel) {
		t.Fatalf("imported leaves at %s, not in the home %s", im.Path, b.cfg.Home)
	}
	shares, err := b.Shares()
	if err != nil || len(shares) != 1 || shares[0].Root != sh.Root || !shares[0].Dir || shares[0].Files != 4 {
		t.Fatalf("shares after the import: %+v, %v", shares, err)
	}
	dest := filepath.Join(t.TempDir(), "got")
	if _, err := c.Fetch(ctx, Target{Root: sh.Root}, dest, FetchOptions{Peers: []peer.AddrInfo{b.AddrInfo()}}); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		sameFile(t, filepath.Join(dest, filepath.FromSlash(name)), want)
	}
	// d has nothing: it fetches nodes and leaves from b, then exports.
	var car2 bytes.Buffer
	ex2, err := d.Export(ctx, Target{Root: sh.Root, Hint: ptr(b.AddrInfo())}, &car2, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ex2.Fetched || !bytes.Equal(car2.Bytes(), car.Bytes()) {
		t.Fatalf("export through the swarm: %+v, %d bytes; want the sharer's %d bytes", ex2, car2.Len(), car.Len())
	}
	if shares, _ := d.Shares(); len(shares) != 0 {
		t.Fatalf("the exporter kept the copy it fetched as a share: %+v", shares)
	}
	if left, _ := filepath.Glob(filepath.Join(d.cfg.Home, "export-*")); len(left) != 0 {
		t.Fatalf("the exporter left %v behind", left)
	}
	// ROOT/path exports the DAG below the path.
	var sub bytes.Buffer
	ex3, err := b.Export(ctx, Target{Root: sh.Root, Path: "sub"}, &sub, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ex3.Root == sh.Root || ex3.Blocks != 4 { // sub, small.txt, deeper, empty
		t.Fatalf("export of ROOT/sub: %+v", ex3)
	}
}

// carSections splits a CARv1 into its header and sections.
func carSections(t *testing.T, car []byte) (header []byte, secs [][]byte) {
	t.Helper()
	next := func(b []byte) int {
		n, k, err := varint.FromUvarint(b)
		if err != nil {
			t.Fatal(err)
		}
		return k + int(n)
	}
	h := next(car)
	header, rest := car[:h], car[h:]
	for len(rest) > 0 {
		k := next(rest)
		secs, rest = append(secs, rest[:k]), rest[k:]
	}
	return header, secs
}

// TestImportHostile: a CAR with a block that lies, one cut short, one
// without a leaf of its DAG, and bytes that are no CAR are each refused
// with ErrBadCAR and a message that says what is wrong, and leave no share
// and no file of leaves behind.
func TestImportHostile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, _ := carFolder(t)
	a := carNode(t)
	sh, err := a.Share(ctx, dir, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := a.Export(ctx, Target{Root: sh.Root}, &buf, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	header, secs := carSections(t, good)
	join := func(secs [][]byte) []byte { return bytes.Join(append([][]byte{header}, secs...), nil) }
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-1] ^= 1 // the last leaf's last byte
	// Leave out the last section: a leaf of big.bin or one.bin.
	last := secs[len(secs)-1]
	_, k, _ := varint.FromUvarint(last)
	_, lastCID, err := cid.CidFromBytes(last[k:])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		car  []byte
		want []error
		says string
	}{
		{"corrupt leaf", corrupt, []error{unixfs.ErrMismatch}, "section"},
		{"cut short", good[:len(good)-100], []error{carfile.ErrTruncated}, "cut short"},
		{"leaf missing", join(secs[:len(secs)-1]), []error{carfile.ErrIncomplete}, lastCID.String()},
		{"not a CAR", []byte("hello, this is not a CAR file at all"), []error{carfile.ErrHeader}, "CAR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := carNode(t)
			_, err := b.Import(ctx, bytes.NewReader(tc.car))
			if !errors.Is(err, ErrBadCAR) {
				t.Fatalf("import = %v, want ErrBadCAR", err)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("import = %v, want it to wrap %v", err, w)
				}
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tc.says)) || !bytes.Contains([]byte(err.Error()), []byte("nothing was shared")) {
				t.Errorf("import = %q; want it to say %q and that nothing was shared", err, tc.says)
			}
			if shares, err := b.Shares(); err != nil || len(shares) != 0 {
				t.Errorf("shares after a refused import: %+v, %v", shares, err)
			}
			left, _ := os.ReadDir(filepath.Join(b.cfg.Home, importsDir))
			if len(left) != 0 {
				t.Errorf("a refused import left %d files in the imports folder (%s)", len(left), left[0].Name())
			}
		})
	}
}

// TestImportRawRoot: a file of one leaf is its own raw root; imported, it
// is served.
func TestImportRawRoot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path, data := randomFile(t, t.TempDir(), "one.bin", 5000, 7)
	a, b, c := carNode(t), carNode(t), carNode(t)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sh.Root.Prefix().Codec != cid.Raw {
		t.Fatalf("root %s is not raw", sh.Root)
	}
	var car bytes.Buffer
	if _, err := a.Export(ctx, Target{Root: sh.Root}, &car, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Import(ctx, &car); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "got")
	if _, err := c.Fetch(ctx, Target{Root: sh.Root}, dest, FetchOptions{Peers: []peer.AddrInfo{b.AddrInfo()}}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, dest, data)
}

// TestUnshareImport: unsharing an imported root removes its leaves file;
// unsharing a share of a user's folder leaves the folder alone.
func TestUnshareImport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, _ := carFolder(t)
	a, b := carNode(t), carNode(t)
	sh, err := a.Share(ctx, dir, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	if _, err := a.Export(ctx, Target{Root: sh.Root}, &car, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	im, err := b.Import(ctx, &car)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Unshare(sh.Root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(im.Path); !os.IsNotExist(err) {
		t.Errorf("the leaves of the unshared import are still at %s (%v)", im.Path, err)
	}
	if err := a.Unshare(sh.Root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "big.bin")); err != nil {
		t.Errorf("unsharing a folder touched it: %v", err)
	}
}
