package daemon

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExportImport: through the clients of two daemons, a share exported
// by one is imported by the other, which then shares it under the same
// root; a file that is no CAR is a bad request that shares nothing.
func TestExportImport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	homeA, homeB := t.TempDir(), t.TempDir()
	startDaemon(t, homeA)
	startDaemon(t, homeB)
	ca := dial(t, ctx, homeA)
	cb := dial(t, ctx, homeB)
	dir := filepath.Join(t.TempDir(), "d")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte(strings.Repeat("car ", 400000)), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "b.txt"), []byte("b"), 0o644)
	sh, err := ca.Share(ctx, ShareRequest{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	if err := ca.Export(ctx, ExportRequest{Target: sh.Root}, &car); err != nil {
		t.Fatal(err)
	}
	carPath := filepath.Join(t.TempDir(), "x.car")
	if err := os.WriteFile(carPath, car.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	im, err := cb.Import(ctx, ImportRequest{Path: carPath})
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Roots) != 1 || im.Roots[0] != sh.Root || len(im.Tickets) != 1 || im.Blocks == 0 {
		t.Fatalf("import: %+v; want root %s", im, sh.Root)
	}
	shares, err := cb.Shares(ctx)
	if err != nil || len(shares) != 1 || shares[0].Root != sh.Root {
		t.Fatalf("shares of the importer: %+v, %v", shares, err)
	}

	bad := filepath.Join(t.TempDir(), "bad.car")
	os.WriteFile(bad, []byte("not a CAR at all"), 0o644)
	if _, err := ca.Import(ctx, ImportRequest{Path: bad}); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "bad.car") {
		t.Fatalf("import of a file that is no CAR = %v, want a bad request naming it", err)
	}
	if _, err := ca.Import(ctx, ImportRequest{Path: bad + ".gone"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("import of a missing file = %v, want ErrNotFound", err)
	}
	if shares, _ := ca.Shares(ctx); len(shares) != 1 {
		t.Fatalf("shares after refused imports: %+v", shares)
	}
	if err := ca.Export(ctx, ExportRequest{Target: "nonsense"}, &car); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("export of a bad target = %v, want ErrBadRequest", err)
	}
}

// TestGetResultName: a fetch's result names what it fetched as the target
// names it (a UnixFS root has no name): ROOT/path by its last element, a
// bare root by its CID, which is then where it is written in Dir.
func TestGetResultName(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	homeA, homeB := t.TempDir(), t.TempDir()
	a := startDaemon(t, homeA)
	startDaemon(t, homeB)
	ca := dial(t, ctx, homeA)
	cb := dial(t, ctx, homeB)
	dir := filepath.Join(t.TempDir(), "d")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "b.txt"), []byte("b"), 0o644)
	sh, err := ca.Share(ctx, ShareRequest{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	peers := []string{a.Node().Addrs()[0].String()}
	out := t.TempDir()
	res, err := cb.Get(ctx, GetRequest{Target: sh.Root + "/sub/b.txt", Dir: out, Peers: peers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "b.txt" || res.Dest != filepath.Join(out, "b.txt") {
		t.Errorf("ROOT/sub/b.txt: name %q, dest %s", res.Name, res.Dest)
	}
	res, err = cb.Get(ctx, GetRequest{Target: sh.Root, Dir: out, Peers: peers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != sh.Root || res.Dest != filepath.Join(out, sh.Root) || !res.Dir {
		t.Errorf("ROOT: name %q, dest %s, dir %v", res.Name, res.Dest, res.Dir)
	}
}
