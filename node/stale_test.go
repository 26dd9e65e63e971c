package node

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestSharesNoticeEdits: a shared file edited after sharing makes its share
// Stale in Shares, with no peer having read it.
func TestSharesNoticeEdits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := startNode(t, testConfig(t))
	dir := t.TempDir()
	path, _ := randomFile(t, dir, "sub/f.bin", 1<<20, 50)
	randomFile(t, dir, "g.bin", 1<<20, 51)
	if _, err := a.Share(ctx, dir, ShareOptions{}); err != nil {
		t.Fatal(err)
	}
	shares, err := a.Shares()
	if err != nil || len(shares) != 1 || shares[0].Stale {
		t.Fatalf("before the edit: %+v, %v", shares, err)
	}
	// Same size, new bytes, a later time: only the time tells.
	if err := os.WriteFile(path, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	shares, err = a.Shares()
	if err != nil || len(shares) != 1 || !shares[0].Stale {
		t.Fatalf("after the edit: %+v, %v; want the share stale", shares, err)
	}
}
