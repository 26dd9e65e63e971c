package importer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/internal/kubovec"
	"github.com/peer-project/peer/unixfs"
)

// memSink keeps everything an import produces, to check it.
type memSink struct {
	blocks map[cid.Cid][]byte
	locs   map[string][]Loc
	files  map[string]File
}

func newMemSink() *memSink {
	return &memSink{blocks: map[cid.Cid][]byte{}, locs: map[string][]Loc{}, files: map[string]File{}}
}

func (s *memSink) PutBlock(b unixfs.Block) error {
	if err := integrity.Verify(b.CID, b.Data); err != nil {
		return err
	}
	s.blocks[b.CID] = b.Data
	return nil
}

func (s *memSink) AddChunks(path string, locs []Loc) error {
	if _, done := s.files[path]; done {
		return errors.New("AddChunks after FileDone")
	}
	s.locs[path] = append(s.locs[path], locs...)
	return nil
}

func (s *memSink) FileDone(f File) error { s.files[f.Path] = f; return nil }

func (s *memSink) GetBlock(_ context.Context, c cid.Cid) ([]byte, error) {
	b, ok := s.blocks[c]
	if !ok {
		return nil, errors.New("no such block")
	}
	return b, nil
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

const small = 16 << 10

// checkFile reads the leaves of the file's DAG back and checks that the
// chunks, read from disk at their recorded locations, make the file. A raw
// root (a file of one chunk, or none) is the file's only chunk.
func checkFile(t *testing.T, s *memSink, root cid.Cid, path string, data []byte) {
	t.Helper()
	var got []byte
	locs := s.locs[path]
	g := unixfs.GetterFunc(func(ctx context.Context, c cid.Cid) ([]byte, error) {
		if c.Equals(root) && c.Prefix().Codec == cid.Raw {
			return data, nil // the file itself
		}
		return s.GetBlock(ctx, c)
	})
	i := int64(0)
	size, err := unixfs.NewWalker(g, unixfs.DefaultLimits()).Leaves(context.Background(), root, func(uoff uint64, ref unixfs.Link) error {
		off := int64(uoff)
		if ref.FileSize == 0 {
			return nil // an empty file's root
		}
		if i >= int64(len(locs)) || !locs[i].CID.Equals(ref.CID) || locs[i].Offset != off || uint64(locs[i].Size) != ref.FileSize {
			t.Fatalf("chunk %d: the DAG says %s@%d+%d, locations say %+v", i, ref.CID, off, ref.FileSize, locs)
		}
		i++
		piece := data[off : off+int64(ref.FileSize)]
		if err := integrity.Verify(ref.CID, piece); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		got = append(got, piece...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if size != uint64(len(data)) || i != int64(len(locs)) {
		t.Fatalf("the DAG holds %d bytes in %d chunks, want %d in %d", size, i, len(data), len(locs))
	}
	if !bytes.Equal(got, data) {
		t.Fatal("chunks do not make the file")
	}
	if fd := s.files[path]; !fd.Root.Equals(root) || fd.Size != int64(len(data)) || fd.Chunks != int64(len(locs)) {
		t.Fatalf("FileDone = %+v", fd)
	}
}

func TestImportFileSizes(t *testing.T) {
	p := chunker.FixedParams(small)
	for _, n := range []int{0, 1, small - 1, small, small + 1, 5*small + 3} {
		dir := t.TempDir()
		path := filepath.Join(dir, "f.bin")
		data := randBytes(uint64(n), n)
		write(t, path, data)
		s := newMemSink()
		res, err := Import(context.Background(), path, Options{Params: p}, s)
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		wantChunks := int64((n + small - 1) / small)
		if res.Dir || res.Files != 1 || res.Size != int64(n) || res.Chunks != wantChunks || res.Name != "f.bin" {
			t.Fatalf("size %d: result %+v, want %d chunks", n, res, wantChunks)
		}
		checkFile(t, s, res.Root, path, data)
	}
}

func TestImportSameRoot(t *testing.T) {
	dir := t.TempDir()
	data := randBytes(7, 3*small+100)
	write(t, filepath.Join(dir, "a", "x.bin"), data)
	write(t, filepath.Join(dir, "b", "x.bin"), data)
	ra, err := Import(context.Background(), filepath.Join(dir, "a", "x.bin"), Options{Params: chunker.FixedParams(small)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Import(context.Background(), filepath.Join(dir, "b", "x.bin"), Options{Params: chunker.FixedParams(small), Workers: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ra.Root.Equals(rb.Root) {
		t.Fatalf("same content, name and params gave %s and %s", ra.Root, rb.Root)
	}
	rc, err := Import(context.Background(), filepath.Join(dir, "b", "x.bin"), Options{Params: chunker.FixedParams(2 * small)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Root.Equals(ra.Root) {
		t.Fatal("another chunk size gave the same root")
	}
}

func TestImportNestedDirectory(t *testing.T) {
	top := filepath.Join(t.TempDir(), "photos")
	files := map[string][]byte{
		"a.txt":                   []byte("alpha\n"),
		"empty":                   nil,
		"sub/b.bin":               randBytes(2, 2*small+5),
		"sub/deeper/c.bin":        randBytes(3, small),
		"sub/deeper/even/d.txt":   []byte("d"),
		"z/only-child/emptydir/.": nil,
	}
	for rel, data := range files {
		if strings.HasSuffix(rel, "/.") {
			os.MkdirAll(filepath.Join(top, rel), 0o755)
			continue
		}
		write(t, filepath.Join(top, rel), data)
	}
	s := newMemSink()
	res, err := Import(context.Background(), top, Options{Params: chunker.FixedParams(small)}, s)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for rel, data := range files {
		if strings.HasSuffix(rel, "/.") {
			continue
		}
		total += int64(len(data))
		l, err := unixfs.NewWalker(s, unixfs.DefaultLimits()).Resolve(context.Background(), res.Root, strings.Split(rel, "/"))
		if err != nil {
			t.Fatalf("resolve %s: %v", rel, err)
		}
		checkFile(t, s, l.CID, filepath.Join(top, rel), data)
	}
	if !res.Dir || res.Files != 5 || res.Size != total || res.Name != "photos" {
		t.Fatalf("result %+v, want 5 files of %d bytes", res, total)
	}
	w := unixfs.NewWalker(s, unixfs.DefaultLimits())
	l, err := w.Resolve(context.Background(), res.Root, []string{"z", "only-child", "emptydir"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Node(context.Background(), l.CID); err != nil || n.Kind != unixfs.KindDir || len(n.Links) != 0 {
		t.Fatalf("empty dir resolves to %+v, %v", n, err)
	}
	// The same tree gives the same root.
	again, err := Import(context.Background(), top, Options{Params: chunker.FixedParams(small)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Root.Equals(res.Root) {
		t.Fatalf("second import gave %s, first %s", again.Root, res.Root)
	}
}

func TestImportBadInput(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "ok.txt"), []byte("ok"))

	loop := filepath.Join(dir, "loop")
	os.MkdirAll(filepath.Join(loop, "inner"), 0o755)
	os.Symlink(loop, filepath.Join(loop, "inner", "back"))

	self := filepath.Join(dir, "selflink")
	os.MkdirAll(self, 0o755)
	os.Symlink(filepath.Join(self, "me"), filepath.Join(self, "me"))

	badName := filepath.Join(dir, "badname")
	write(t, filepath.Join(badName, "a\\b"), []byte("x"))

	tests := []struct {
		name, path string
		is         error
		says       string
	}{
		{"missing path", filepath.Join(dir, "nope"), fs.ErrNotExist, "does not exist"},
		{"directory loop", loop, ErrLoop, "leads back"},
		{"self link", self, ErrLoop, "remove it"},
		{"bad name", badName, ErrName, `a\b`},
	}
	// Links are loops only when followed; else they are shared as
	// symlinks (TestImportLinksOut).
	for _, p := range []string{loop, self} {
		res, err := Import(context.Background(), p, Options{Params: chunker.FixedParams(small)}, nil)
		if err != nil || res.Symlinks != 1 {
			t.Errorf("%s without FollowLinks: %+v, %v; want one symlink", p, res, err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMemSink()
			_, err := Import(context.Background(), tt.path, Options{Params: chunker.FixedParams(small), FollowLinks: true}, s)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Import = %v, want %v saying %q", err, tt.is, tt.says)
			}
		})
	}
}

func TestImportNotShareable(t *testing.T) {
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Skip("no /dev/null")
	}
	_, err := Import(context.Background(), "/dev/null", Options{}, nil)
	if !errors.Is(err, ErrNotShareable) || !strings.Contains(err.Error(), "device") {
		t.Fatalf("Import(/dev/null) = %v, want ErrNotShareable naming a device", err)
	}
}

func TestImportSkipsSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.txt"), []byte("a"))
	if err := os.Symlink("/dev/null", filepath.Join(dir, "devnull")); err != nil {
		t.Fatal(err)
	}
	res, err := Import(context.Background(), dir, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The link leads out of the folder, so it is left out as such (a
	// special file inside is TestImportSkipsFIFO's).
	if res.Files != 1 || len(res.SkippedLinks) != 1 || !strings.HasSuffix(res.SkippedLinks[0], "devnull") {
		t.Fatalf("result %+v, want a.txt imported and devnull skipped", res)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("input/output error")
	}
	n := min(len(p), r.n)
	clear(p[:n])
	r.n -= n
	return n, nil
}
func (r *failingReader) Close() error { return nil }

func TestImportUnreadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.bin")
	write(t, path, make([]byte, 3*small))

	if os.Geteuid() != 0 {
		os.Chmod(path, 0)
		_, err := Import(context.Background(), path, Options{Params: chunker.FixedParams(small)}, nil)
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("Import of a 0000 file = %v, want a permission error", err)
		}
		os.Chmod(path, 0o644)
	}
	// Root reads anything, so reach the read error through the opener: a
	// disk that fails after one chunk.
	opt := Options{Params: chunker.FixedParams(small)}
	opt.Open = func(string) (io.ReadCloser, error) { return &failingReader{n: small + 10}, nil }
	s := newMemSink()
	_, err := Import(context.Background(), path, opt, s)
	if err == nil || !strings.Contains(err.Error(), "input/output error") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Import with a failing disk = %v, want the read error naming the file", err)
	}
	if len(s.files) != 0 {
		t.Fatalf("a file that failed to read was reported done: %v", s.files)
	}
}

// growingReader reads a file and appends to it after the first read, as a
// program still writing it would.
type growingReader struct {
	f    *os.File
	path string
	done bool
}

func (g *growingReader) Read(p []byte) (int, error) {
	n, err := g.f.Read(p)
	if !g.done {
		g.done = true
		f, _ := os.OpenFile(g.path, os.O_APPEND|os.O_WRONLY, 0)
		f.Write(bytes.Repeat([]byte("more"), small))
		f.Close()
	}
	return n, err
}
func (g *growingReader) Close() error { return g.f.Close() }

func TestImportFileChanging(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(path string) (io.ReadCloser, error)
	}{
		{"grows", func(path string) (io.ReadCloser, error) {
			f, err := os.Open(path)
			return &growingReader{f: f, path: path}, err
		}},
		{"touched", func(path string) (io.ReadCloser, error) {
			f, err := os.Open(path)
			later := time.Now().Add(time.Hour)
			os.Chtimes(path, later, later)
			return f, err
		}},
		{"shrinks", func(path string) (io.ReadCloser, error) {
			f, err := os.Open(path)
			os.Truncate(path, small)
			return f, err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log.txt")
			write(t, path, randBytes(9, 4*small))
			opt := Options{Params: chunker.FixedParams(small)}
			opt.Open = tc.change
			s := newMemSink()
			_, err := Import(context.Background(), path, opt, s)
			if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "share it again") {
				t.Fatalf("Import = %v, want ErrChanged", err)
			}
			if len(s.files) != 0 {
				t.Fatal("a file that changed was reported done")
			}
		})
	}
}

func TestImportCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.bin")
	write(t, path, make([]byte, 48<<20))
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	opt := Options{Params: chunker.FixedParams(small)}
	opt.Open = func(name string) (io.ReadCloser, error) {
		f, err := os.Open(name)
		return readerFunc{f, func() {
			calls++
			if calls == 3 {
				cancel()
			}
		}}, err
	}
	_, err := Import(ctx, path, opt, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Import after cancel = %v, want context.Canceled", err)
	}
}

type readerFunc struct {
	*os.File
	hook func()
}

func (r readerFunc) Read(p []byte) (int, error) { r.hook(); return r.File.Read(p) }

func TestImportInvalidParams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	write(t, path, []byte("x"))
	_, err := Import(context.Background(), path, Options{Params: chunker.FixedParams(100)}, nil)
	if !errors.Is(err, chunker.ErrParams) {
		t.Fatalf("Import with a 100-byte chunk size = %v, want ErrParams", err)
	}
}

// TestPreserveMeta: PreserveMode and PreserveMtime store a file's and a
// folder's permission bits and modification time in their nodes, and the
// roots are then not the standard ones; without them the roots stay
// Kubo's unixfs-v1-2025 ones.
func TestPreserveMeta(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "folder")
	hello := filepath.Join(dir, "hello.txt")
	write(t, hello, []byte("hello world"))
	empty := filepath.Join(dir, "nothing")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := os.Chmod(hello, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(empty, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{hello, empty} {
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	// Without the flags: Kubo's roots, whatever the files' modes and times.
	for _, tt := range []struct{ path, want string }{{hello, kubovec.HelloWorld}, {empty, kubovec.EmptyDir}} {
		if res := importRoot(t, tt.path, Options{}); res.Root.String() != tt.want || !res.Standard {
			t.Errorf("%s without metadata: root %s (standard %v), Kubo %s", filepath.Base(tt.path), res.Root, res.Standard, tt.want)
		}
	}
	plain := importRoot(t, dir, Options{})
	if !plain.Standard {
		t.Errorf("folder without metadata: not standard")
	}
	for _, tt := range []struct {
		name string
		opt  Options
		mode map[string]os.FileMode
		time bool
	}{
		{"mode", Options{PreserveMode: true}, map[string]os.FileMode{hello: 0o640, empty: 0o750}, false},
		{"mtime", Options{PreserveMtime: true}, nil, true},
		{"both", Options{PreserveMode: true, PreserveMtime: true}, map[string]os.FileMode{hello: 0o640, empty: 0o750}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := importRoot(t, dir, tt.opt)
			if res.Standard || res.Root.Equals(plain.Root) {
				t.Fatalf("root %s (standard %v), the same as without metadata %s", res.Root, res.Standard, plain.Root)
			}
			for _, p := range []string{hello, empty} {
				s := newMemSink()
				r, err := Import(context.Background(), p, tt.opt, s)
				if err != nil {
					t.Fatal(err)
				}
				data, ok := s.blocks[r.Root]
				if !ok || r.Root.Prefix().Codec != cid.DagProtobuf {
					t.Fatalf("%s: root %s is not a dag-pb node handed to the sink", filepath.Base(p), r.Root)
				}
				n, err := unixfs.Decode(r.Root, data)
				if err != nil {
					t.Fatal(err)
				}
				m := n.Meta()
				if m.Mode != tt.mode[p] {
					t.Errorf("%s: mode %o, want %o", filepath.Base(p), m.Mode, tt.mode[p])
				}
				if got := !m.Mtime.IsZero(); got != tt.time || (tt.time && !m.Mtime.Equal(mtime)) {
					t.Errorf("%s: mtime %v, want %v (stored: %v)", filepath.Base(p), m.Mtime, mtime, tt.time)
				}
			}
		})
	}
}

// TestImportReuse: a file whose chunks Reuse gives is not opened, and the
// import gives the root and the chunk locations a reading import gives;
// chunks with a hole, cut short, or that build another root are not
// trusted: the file is read, and the root is still right.
func TestImportReuse(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a"), randBytes(1, 5*small+17))
	write(t, filepath.Join(dir, "b"), randBytes(2, 3*small))
	write(t, filepath.Join(dir, "empty"), nil)
	opt := Options{Params: chunker.FixedParams(small)}
	fresh := newMemSink()
	want, err := Import(context.Background(), dir, opt, fresh)
	if err != nil {
		t.Fatal(err)
	}
	good := func(path string, _ fs.FileInfo) (cid.Cid, []Loc, bool) {
		return fresh.files[path].Root, fresh.locs[path], true
	}
	a := filepath.Join(dir, "a")
	for _, tc := range []struct {
		name   string
		reuse  func(string, fs.FileInfo) (cid.Cid, []Loc, bool)
		opened []string
	}{
		{"all", good, nil},
		{"hole", func(p string, fi fs.FileInfo) (cid.Cid, []Loc, bool) {
			root, locs, ok := good(p, fi)
			if p == a {
				locs = append(locs[:1:1], locs[2:]...)
			}
			return root, locs, ok
		}, []string{a}},
		{"short", func(p string, fi fs.FileInfo) (cid.Cid, []Loc, bool) {
			root, locs, ok := good(p, fi)
			if p == a {
				locs = locs[:len(locs)-1]
			}
			return root, locs, ok
		}, []string{a}},
		{"other root", func(p string, fi fs.FileInfo) (cid.Cid, []Loc, bool) {
			root, locs, ok := good(p, fi)
			if p == a {
				root = fresh.files[filepath.Join(dir, "b")].Root
			}
			return root, locs, ok
		}, []string{a}},
		{"another chunk", func(p string, fi fs.FileInfo) (cid.Cid, []Loc, bool) {
			root, locs, ok := good(p, fi)
			if p == a {
				locs = append([]Loc(nil), locs...)
				locs[2].CID = integrity.Chunk([]byte("not this"))
			}
			return root, locs, ok
		}, []string{a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opened []string
			o := opt
			o.Reuse = tc.reuse
			o.Open = func(name string) (io.ReadCloser, error) {
				opened = append(opened, name)
				return os.Open(name)
			}
			sink := newMemSink()
			got, err := Import(context.Background(), dir, o, sink)
			if err != nil {
				t.Fatal(err)
			}
			if got.Root != want.Root {
				t.Fatalf("root %s, want %s", got.Root, want.Root)
			}
			if !slices.Equal(opened, tc.opened) {
				t.Fatalf("opened %v, want %v", opened, tc.opened)
			}
			if wantReused := 3 - len(tc.opened); got.Reused != wantReused {
				t.Fatalf("Reused %d, want %d", got.Reused, wantReused)
			}
			for p, locs := range fresh.locs {
				if !slices.Equal(sink.locs[p], locs) {
					t.Fatalf("%s: locations %v, want %v", p, sink.locs[p], locs)
				}
			}
			for c := range fresh.blocks {
				if _, ok := sink.blocks[c]; !ok {
					t.Fatalf("node %s not handed to the sink", c)
				}
			}
		})
	}
}
