package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/store"
)

// TestShareSealsJustWritten: a file written and closed a second before it
// is shared (a file written just before it is shared, well short of the
// minute a seal otherwise waits for) is sealed by Share, whose import
// found, before it read a byte, that nothing could write the file
// (store.ShareTx.Opened): the store serves every chunk of it without
// hashing it.
func TestShareSealsJustWritten(t *testing.T) {
	dir := t.TempDir()
	if !store.KeepsStamps(dir) {
		t.Skipf("%s lies on a file system that keeps no stamps (tmpfs, overlayfs...: store.KeepsStamps), where nothing is sealed; set TMPDIR to a folder on ext4, xfs, btrfs... to run this test", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(t)
	cfg.Now = func() time.Time { return time.Now().Add(time.Second) }
	n := startNode(t, cfg)
	const chunk = 256 << 10 // testConfig's
	data := make([]byte, 4*chunk+5)
	for i := range data {
		data[i] = byte(i*7 + i/1000)
	}
	p := filepath.Join(dir, "f.bin")
	writeTestFile(t, p, data)
	if _, err := n.Share(ctx, p, ShareOptions{}); err != nil {
		t.Fatal(err)
	}
	chunks := 0
	for off := 0; off < len(data); off += chunk {
		c := integrity.Chunk(data[off:min(off+chunk, len(data))])
		if _, err := n.store.ReadChunk(ctx, c, nil); err != nil {
			t.Fatalf("chunk at %d: %v", off, err)
		}
		chunks++
	}
	if h := n.store.Hashed(); h != 0 {
		t.Fatalf("serving the %d chunks of a file written just before its share hashed %d of them, want none", chunks, h)
	}
}
