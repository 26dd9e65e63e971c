package importer

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/internal/kubovec"
)

// seeded is kubovec.Seeded, with the signature the tests were written for.
func seeded(_ testing.TB, seed string, n int64) io.Reader { return kubovec.Seeded(seed, n) }

func importRoot(t *testing.T, path string, opt Options) Result {
	t.Helper()
	res, err := Import(context.Background(), path, opt, nil) // nil: --only-hash
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestKuboVectorsSmall(t *testing.T) {
	dir := t.TempDir()
	hello := filepath.Join(dir, "hello.txt")
	write(t, hello, []byte("hello world"))
	empty := filepath.Join(dir, "empty")
	write(t, empty, nil)
	emptyFolder := filepath.Join(dir, "nothing")
	if err := os.Mkdir(emptyFolder, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, want string }{
		{hello, kubovec.HelloWorld}, {empty, kubovec.EmptyFile}, {emptyFolder, kubovec.EmptyDir},
	} {
		res := importRoot(t, tt.path, Options{})
		if res.Root.String() != tt.want || !res.Standard {
			t.Errorf("%s: root %s (standard %v), Kubo %s", filepath.Base(tt.path), res.Root, res.Standard, tt.want)
		}
	}
	// Content-defined chunks make another root, which is said; but a file
	// of one chunk is that chunk under any chunker.
	cdc := Options{Params: chunker.CDCParams(1 << 20)}
	if res := importRoot(t, hello, cdc); res.Root.String() != kubovec.HelloWorld || !res.Standard {
		t.Errorf("fastcdc import of hello world: root %s (standard %v), Kubo %s", res.Root, res.Standard, kubovec.HelloWorld)
	}
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, seeded(t, "v1-2025-seed", 3<<20)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	std, other := importRoot(t, big, Options{}), importRoot(t, big, cdc)
	if !std.Standard || other.Standard || other.Root.Equals(std.Root) {
		t.Errorf("3 MiB: fixed %s (standard %v), fastcdc %s (standard %v): want two roots, the first standard", std.Root, std.Standard, other.Root, other.Standard)
	}
}

// TestKuboFolderVectors imports Kubo's two folders of the HAMT threshold:
// 4766 files holding "x", the last name 21 bytes long (a plain folder of a
// block of exactly 256 KiB) or 22 (one byte over: a HAMT).
func TestKuboFolderVectors(t *testing.T) {
	for _, tt := range []struct {
		lastLen int
		want    string
	}{{21, kubovec.DirBasic}, {22, kubovec.DirHAMT}} {
		const alphabet = "abcdefghijklmnopqrstuvwxyz01234567890-_"
		dir := filepath.Join(t.TempDir(), "folder")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		names := seeded(t, "hamt-unixfs-v1-2025", 1<<20)
		const n = 4766
		for i := range n {
			l := 11
			if i == n-1 {
				l = tt.lastLen
			}
			buf := make([]byte, l)
			if _, err := io.ReadFull(names, buf); err != nil {
				t.Fatal(err)
			}
			for j, b := range buf {
				buf[j] = alphabet[int(b)%len(alphabet)]
			}
			if err := os.WriteFile(filepath.Join(dir, string(buf)), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s := newMemSink()
		res, err := Import(context.Background(), dir, Options{}, s)
		if err != nil {
			t.Fatal(err)
		}
		if res.Root.String() != tt.want || res.Files != n {
			t.Errorf("folder whose last name has %d bytes: root %s of %d files, Kubo %s", tt.lastLen, res.Root, res.Files, tt.want)
		}
		if _, ok := s.blocks[res.Root]; !ok {
			t.Errorf("the folder's root node was not handed to the sink")
		}
	}
}

// TestKuboLargeFileVectors imports 1024 MiB and 1025 MiB of Kubo's seeded
// stream: a file of exactly MaxLinks leaves (one file node) and one leaf
// more (a second level). The files on disk are sparse, of the right size;
// their bytes come from the stream through the importer's open hook, so
// that no GiB is written to the disk.
func TestKuboLargeFileVectors(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 2 GiB")
	}
	for _, tt := range []struct {
		size int64
		want string
	}{{1024 << 20, kubovec.AtMaxLinks}, {1025 << 20, kubovec.OverMax}} {
		p := filepath.Join(t.TempDir(), "big")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(tt.size); err != nil {
			t.Fatal(err)
		}
		f.Close()
		open := func(string) (io.ReadCloser, error) {
			return io.NopCloser(seeded(t, "v1-2025-seed", tt.size)), nil
		}
		s := newMemSink()
		res, err := Import(context.Background(), p, Options{Open: open}, s)
		if err != nil {
			t.Fatal(err)
		}
		if res.Root.String() != tt.want || res.Size != tt.size || res.Chunks != tt.size>>20 {
			t.Errorf("%d MiB: root %s, %d bytes in %d chunks; Kubo %s", tt.size>>20, res.Root, res.Size, res.Chunks, tt.want)
		}
		// Only interior nodes reach the store: one file node per 1024
		// leaves (and a root above them past 1024).
		if want := int(tt.size>>20+1023)/1024 + min(1, int(tt.size>>20-1)/1024); len(s.blocks) != want {
			t.Errorf("%d MiB: %d nodes kept, want %d", tt.size>>20, len(s.blocks), want)
		}
	}
}
