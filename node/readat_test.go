package node

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestReadAtNegativeOffset: ReadAt before the start of the file is an
// error that says so (io.ReaderAt's contract), never a panic, and the
// reader still works after it.
func TestReadAtNegativeOffset(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := startNode(t, testConfig(t))
	path, data := randomFile(t, t.TempDir(), "f.bin", 300<<10, 3)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Open(ctx, Target{Root: sh.Root}, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, off := range []int64{-1, -(256 << 10), -1 << 62} {
		var (
			n   int
			err error
		)
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("ReadAt(p, %d) panicked: %v", off, p)
				}
			}()
			n, err = r.ReadAt(make([]byte, 10), off)
		}()
		if n != 0 || err == nil || !strings.Contains(err.Error(), "negative offset") {
			t.Fatalf("ReadAt(p, %d) = %d, %v; want 0 and a negative-offset error", off, n, err)
		}
	}
	buf := make([]byte, 10)
	if n, err := r.ReadAt(buf, 5); n != 10 || err != nil || string(buf) != string(data[5:15]) {
		t.Fatalf("ReadAt(p, 5) after the refusals = %d, %v", n, err)
	}
}
