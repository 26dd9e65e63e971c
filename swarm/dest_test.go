package swarm

// Where a fetch writes, against a hostile sharer, a hostile neighbour and
// the user's own mistakes (issue 15): a chunk whose bytes are longer or
// shorter than the manifest declares, leftovers in a staging area, two
// fetches of different roots to one destination, --force over a folder, a
// symlink at the staging path.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/swarm/wire"
	"github.com/peer-project/peer/unixfs"
)

// buildDeclared makes a file DAG whose leaf i is the CID of pieces[i] but
// whose parent declares the size sizes[i], as a hostile sharer can: the
// DAG is valid (sizes add up), yet the bytes that hash to a leaf's CID are
// not as long as its parent says.
func buildDeclared(t *testing.T, blocks *memBlocks, name string, pieces [][]byte, sizes []uint32, chunk int) cid.Cid {
	t.Helper()
	_, _ = name, chunk
	b := unixfs.NewFileBuilder(func(bl unixfs.Block) error { return blocks.PutBlock(bl.CID, bl.Data) })
	for i, p := range pieces {
		if err := b.Add(unixfs.Leaf(integrity.Chunk(p), int(sizes[i]))); err != nil {
			t.Fatal(err)
		}
	}
	root, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return root.CID
}

// dirFile is one file of a folder root for buildDir.
type dirFile struct {
	path string // slash-separated below the root
	data []byte
}

// buildDir makes the DAG of a folder holding files (paths may have one or
// more folders) with 16 KiB chunks, and returns its root (name is unused:
// a root has none).
func buildDir(t *testing.T, blocks *memBlocks, name string, files []dirFile) cid.Cid {
	t.Helper()
	_ = name
	ctx := context.Background()
	type node struct {
		files map[string][]byte
		dirs  map[string]*node
	}
	newNode := func() *node { return &node{files: map[string][]byte{}, dirs: map[string]*node{}} }
	top := newNode()
	for _, f := range files {
		n := top
		els := strings.Split(f.path, "/")
		for _, el := range els[:len(els)-1] {
			if n.dirs[el] == nil {
				n.dirs[el] = newNode()
			}
			n = n.dirs[el]
		}
		n.files[els[len(els)-1]] = f.data
	}
	var enc func(n *node) unixfs.Link
	enc = func(n *node) unixfs.Link {
		d, err := unixfs.NewDirBuilder(func(bl unixfs.Block) error { return blocks.PutBlock(bl.CID, bl.Data) })
		if err != nil {
			t.Fatal(err)
		}
		for el, data := range n.files {
			c := build(t, blocks, el, data, 16<<10)
			l := unixfs.Link{CID: c, Size: uint64(len(data)), FileSize: uint64(len(data))}
			if c.Prefix().Codec != cid.Raw {
				b, _ := blocks.GetBlock(ctx, c)
				l.Size = uint64(len(b)) + uint64(len(data)) // Tsize: the node and its leaves
			}
			if err := d.Add(ctx, el, l); err != nil {
				t.Fatal(err)
			}
		}
		for el, sub := range n.dirs {
			if err := d.Add(ctx, el, enc(sub)); err != nil {
				t.Fatal(err)
			}
		}
		l, err := d.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	return enc(top).CID
}

// layoutOf builds the layout of root from blocks.
func layoutOf(t *testing.T, blocks *memBlocks, root cid.Cid) *Layout {
	t.Helper()
	l, err := BuildLayout(context.Background(), blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// writeAll writes every chunk of l into d from the files' contents.
func writeAll(t *testing.T, d *download, l *Layout, files map[string][]byte) {
	t.Helper()
	for i, c := range l.Chunks {
		data := files[l.Files[c.File].Path]
		if _, err := d.write(int64(i), data[c.Offset:c.Offset+int64(c.Size)]); err != nil {
			t.Fatal(err)
		}
	}
}

// treeOf returns every path below dir (slash-separated, folders ending in
// "/") and the contents of the files.
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case e.IsDir():
			out[rel+"/"] = ""
		case e.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b)
		default:
			out[rel] = "(" + e.Type().String() + ")"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// oldPartial and newPartial are the staging paths of dest before and after
// staging was made per root, spelled out here so that the tests build
// against both.
func oldPartial(dest string) string {
	return filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+".peer-partial")
}

func newPartial(dest string, root cid.Cid) string {
	return filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+"."+root.String()+".peer-partial")
}

// TestChunkOfWrongDeclaredSize: a sharer whose manifest declares a chunk
// shorter or longer than the bytes that hash to its CID, and who sends
// those bytes. The block verifies against its CID, but its length is not
// the one declared: it must be refused before it is written and its sender
// struck (banned), so that the fetch fails rather than write a file of
// another size or with a neighbour overwritten; a 20-byte file must never
// arrive as 102,410 bytes.
func TestChunkOfWrongDeclaredSize(t *testing.T) {
	const chunk = 64 << 10
	piece := func(n int, seed uint64) []byte { return randomData(n, seed) }
	tests := []struct {
		name   string
		pieces [][]byte
		sizes  []uint32
	}{
		// (A file of one leaf is that leaf: its root declares no size.)
		{"a 20-byte file that is 102,410 bytes", [][]byte{piece(102400, 1), piece(10, 10)}, []uint32{10, 10}},
		{"first chunk longer than declared", [][]byte{piece(chunk+4096, 2), piece(chunk, 3), piece(chunk, 4)}, []uint32{chunk, chunk, chunk}},
		{"first chunk shorter than declared", [][]byte{piece(1000, 5), piece(chunk, 6), piece(100, 7)}, []uint32{chunk, chunk, 100}},
		{"last chunk longer than declared", [][]byte{piece(chunk, 8), piece(chunk, 9)}, []uint32{chunk, 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			blocks := &memBlocks{m: map[cid.Cid][]byte{}}
			root := buildDeclared(t, blocks, "f.bin", tc.pieces, tc.sizes, chunk)
			var declared int64
			for _, s := range tc.sizes {
				declared += int64(s)
			}
			mn, err := mocknet.FullMeshConnected(2)
			if err != nil {
				t.Fatal(err)
			}
			defer mn.Close()
			hosts := mn.Hosts()
			// The seeder answers every WANT with the bytes of the CID.
			hostileSeeder(t, hosts[0], blocks, &wire.HaveAll{}, func(m wire.Msg) []byte {
				w, ok := m.(*wire.Want)
				if !ok {
					return nil
				}
				var out []byte
				for _, i := range w.Indices {
					out = append(out, encode(t, &wire.Block{Index: i, Data: tc.pieces[i]})...)
				}
				return out
			})
			fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
			defer fetcher.Close()
			dest := filepath.Join(t.TempDir(), "f.bin")
			_, err = fetcher.Fetch(ctx, root, FetchOptions{Dest: dest, Hints: []peer.AddrInfo{{ID: hosts[0].ID()}}, NoConnected: true, FindTimeout: time.Second})
			st := fetcher.Stats()
			fi, serr := os.Stat(dest)
			t.Logf("fetch: %v; banned %v; stats %+v; dest %v", err, fetcher.Banned(hosts[0].ID()), st, serr)
			if err == nil {
				t.Fatalf("the fetch completed: %s is %d bytes, the root declares %d", dest, fi.Size(), declared)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the fetch hung until the deadline")
			}
			if serr == nil {
				t.Errorf("%s exists (%d bytes) after the fetch failed", dest, fi.Size())
			}
			if !fetcher.Banned(hosts[0].ID()) {
				t.Error("the seeder of a chunk of the wrong length was not banned")
			}
			if st.ChunksRejected == 0 {
				t.Error("no chunk was counted as rejected")
			}
			// Nothing of the wrong length reached the staging file: it is
			// never longer than declared.
			matches, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".f.bin*"))
			for _, p := range matches {
				if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Size() != declared {
					t.Errorf("staging file %s is %d bytes, the root declares %d", p, fi.Size(), declared)
				}
			}
		})
	}
}

// TestDownloadWritesOnlyDeclaredLengths: the download refuses a chunk whose
// length is not the declared one, whoever calls it, and finish refuses a
// staged file whose size is not the declared one (it grew behind the
// download's back): a fetch ends with exactly the declared bytes or fails.
func TestDownloadWritesOnlyDeclaredLengths(t *testing.T) {
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	data := randomData(100<<10, 21)
	root := build(t, blocks, "g.bin", data, 16<<10)
	l := layoutOf(t, blocks, root)
	dest := filepath.Join(t.TempDir(), "g.bin")
	d, err := openDownload(l, dest)
	if err != nil {
		t.Fatal(err)
	}
	defer d.closeFiles()
	if _, err := d.write(0, append(append([]byte(nil), data[:16<<10]...), 1, 2, 3)); err == nil {
		t.Error("a chunk 3 bytes longer than declared was written")
	}
	writeAll(t, d, l, map[string][]byte{"": data})
	// Grow the staged file past its declared size.
	var staged string
	for _, p := range []string{oldPartial(dest), newPartial(dest, root)} {
		if _, err := os.Lstat(p); err == nil {
			staged = p
		}
	}
	f, err := os.OpenFile(staged, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("trailing bytes"))
	f.Close()
	if err := d.finish(false); err == nil {
		fi, _ := os.Stat(dest)
		t.Fatalf("finish moved into place a file of %d bytes; the root declares %d", fi.Size(), l.Size)
	} else {
		t.Logf("finish: %v", err)
	}
	if _, err := os.Lstat(dest); !os.IsNotExist(err) {
		t.Errorf("%s exists after finish failed (err %v)", dest, err)
	}
}

// TestStagingLeftoversNotMoved: files planted in a staging folder (the old
// shared ".NAME.peer-partial", and the per-root one) never reach the
// destination, whose tree is exactly what the root lists; the planted file
// is not deleted either.
func TestStagingLeftoversNotMoved(t *testing.T) {
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	files := map[string][]byte{"readme.txt": []byte("hello\n")}
	root := buildDir(t, blocks, "photos", []dirFile{{"readme.txt", files["readme.txt"]}})
	l := layoutOf(t, blocks, root)
	dest := filepath.Join(t.TempDir(), "photos")
	for _, p := range []string{oldPartial(dest), newPartial(dest, root)} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "evil.sh"), []byte("#!/bin/sh\nrm -rf ~\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d, err := openDownload(l, dest)
	if err == nil {
		writeAll(t, d, l, files)
		err = d.finish(false)
		d.closeFiles()
	}
	t.Logf("fetch into a staging folder with a planted file: %v", err)
	if _, serr := os.Lstat(dest); serr == nil {
		if got := treeOf(t, dest); len(got) != 1 || got["readme.txt"] != "hello\n" {
			t.Fatalf("the destination holds %v; the root lists only readme.txt", slices.Sorted(mapsKeys(got)))
		}
	} else if err == nil {
		t.Fatal("finish succeeded and the destination does not exist")
	} else if !strings.Contains(err.Error(), "evil.sh") {
		t.Errorf("the error does not name what the staging folder holds that the root does not list: %v", err)
	}
	if _, err := os.Stat(filepath.Join(newPartial(dest, root), "evil.sh")); err != nil {
		t.Errorf("the planted file was deleted: %v", err)
	}
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestStagingPerRoot: two fetches of different roots to the same
// destination, at once, each stage their own file: the first to finish
// puts exactly its own root in place, the other finds the destination
// taken.
func TestStagingPerRoot(t *testing.T) {
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	a, b := randomData(256<<10, 31), randomData(256<<10, 32)
	la := layoutOf(t, blocks, build(t, blocks, "same.bin", a, 16<<10))
	lb := layoutOf(t, blocks, build(t, blocks, "same.bin", b, 16<<10))
	dest := filepath.Join(t.TempDir(), "same.bin")
	da, err := openDownload(la, dest)
	if err != nil {
		t.Fatal(err)
	}
	defer da.closeFiles()
	db, err := openDownload(lb, dest)
	if err != nil {
		t.Fatal(err)
	}
	defer db.closeFiles()
	// Interleaved, as two fetches at once write.
	for i := range la.Chunks {
		c := la.Chunks[i]
		if _, err := da.write(int64(i), a[c.Offset:c.Offset+int64(c.Size)]); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := db.write(int64(i), b[c.Offset:c.Offset+int64(c.Size)]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := da.finish(false); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, a) {
		same := 0
		for i := range la.Chunks {
			c := la.Chunks[i]
			if bytes.Equal(got[c.Offset:c.Offset+int64(c.Size)], a[c.Offset:c.Offset+int64(c.Size)]) {
				same++
			}
		}
		t.Fatalf("the first fetch completed with %d of its %d chunks: the rest are the other root's", same, len(la.Chunks))
	}
	for i := range lb.Chunks {
		c := lb.Chunks[i]
		if _, err := db.write(int64(i), b[c.Offset:c.Offset+int64(c.Size)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.finish(false); !errors.Is(err, ErrExists) {
		t.Fatalf("the second root's finish onto the first's file = %v, want ErrExists", err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, a) {
		t.Fatal("the second root's fetch changed the first's file")
	}
}

// TestStagingLocked: while a fetch uses a staging area, another fetch of
// the same root to the same destination is refused with an error that
// says so; once the first ends, a new one resumes from what it left.
func TestStagingLocked(t *testing.T) {
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	data := randomData(128<<10, 41)
	fileRoot := build(t, blocks, "locked.bin", data, 16<<10)
	dirRoot := buildDir(t, blocks, "locked", []dirFile{{"x/locked.bin", data}})
	for _, root := range []cid.Cid{fileRoot, dirRoot} {
		l := layoutOf(t, blocks, root)
		dest := filepath.Join(t.TempDir(), "locked")
		files := map[string][]byte{"": data, "x/locked.bin": data}
		first, err := openDownload(l, dest)
		if err != nil {
			t.Fatal(err)
		}
		c := l.Chunks[0]
		if _, err := first.write(0, data[c.Offset:c.Offset+int64(c.Size)]); err != nil {
			t.Fatal(err)
		}
		second, err := openDownload(l, dest)
		if err == nil {
			second.closeFiles()
			first.closeFiles()
			t.Fatalf("%s: a second fetch of the same root to %s opened the staging area the first uses", l.Name, dest)
		}
		t.Logf("%s: second fetch: %v", l.Name, err)
		if !strings.Contains(err.Error(), "another fetch") {
			t.Errorf("%s: the error does not say another fetch uses it: %v", l.Name, err)
		}
		first.closeFiles()
		again, err := openDownload(l, dest)
		if err != nil {
			t.Fatalf("%s: after the first fetch ended: %v", l.Name, err)
		}
		if found, err := again.recheck(context.Background()); err != nil || found != 1 {
			t.Fatalf("%s: resumed with %d chunks (%v), want 1", l.Name, found, err)
		}
		writeAll(t, again, l, files)
		if err := again.finish(false); err != nil {
			t.Fatal(err)
		}
		again.closeFiles()
	}
}

// TestForceKeepsFolders: --force replaces a file with a file, and a folder
// only when it holds nothing the root does not list; otherwise it is
// refused and nothing is lost.
func TestForceKeepsFolders(t *testing.T) {
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	data := []byte("new content\n")
	fileRoot := build(t, blocks, "report.txt", data, 16<<10)
	dirRoot := buildDir(t, blocks, "album", []dirFile{{"a.txt", data}, {"sub/b.txt", data}})
	files := map[string][]byte{"": data, "a.txt": data, "sub/b.txt": data}
	tests := []struct {
		name   string
		root   cid.Cid
		before map[string]string // the destination before; nil: a file holding "old"
		ok     bool              // replaced; else refused and kept
		says   string            // the refusal names this
	}{
		{"file over a folder with a thesis", fileRoot, map[string]string{"thesis.pdf": "years of work"}, false, "folder"},
		{"file over an empty folder", fileRoot, map[string]string{}, false, "folder"},
		{"folder over a folder holding more", dirRoot, map[string]string{"a.txt": "old", "notes.txt": "mine"}, false, "notes.txt"},
		{"folder over a folder holding more below", dirRoot, map[string]string{"a.txt": "old", "sub/b.txt": "old", "sub/c.txt": "mine"}, false, "sub/c.txt"},
		{"folder over a file", dirRoot, nil, false, "file"},
		{"folder over its older version", dirRoot, map[string]string{"a.txt": "old", "sub/b.txt": "old"}, true, ""},
		{"file over a file", fileRoot, nil, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := layoutOf(t, blocks, tc.root)
			dest := filepath.Join(t.TempDir(), "Downloads")
			if tc.before == nil {
				if err := os.WriteFile(dest, []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.Mkdir(dest, 0o755); err != nil {
					t.Fatal(err)
				}
				for p, s := range tc.before {
					full := filepath.Join(dest, filepath.FromSlash(p))
					os.MkdirAll(filepath.Dir(full), 0o755)
					if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			var was map[string]string
			if tc.before != nil {
				was = treeOf(t, dest)
			}
			d, err := openDownload(l, dest)
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, d, l, files)
			err = d.finish(true)
			d.closeFiles()
			t.Logf("finish with force: %v", err)
			if tc.ok {
				if err != nil {
					t.Fatalf("finish with force: %v", err)
				}
				if l.Dir {
					if got := treeOf(t, dest); got["a.txt"] != string(data) || got["sub/b.txt"] != string(data) || len(got) != 3 {
						t.Fatalf("the destination holds %v", got)
					}
				} else if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
					t.Fatalf("the destination holds %q", got)
				}
				if es, _ := os.ReadDir(filepath.Dir(dest)); len(es) != 1 {
					t.Fatalf("beside the destination: %v (the staging area or the replaced folder was left)", es)
				}
				return
			}
			if err == nil {
				t.Fatalf("finish with force replaced %s; it held %v", dest, tc.before)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("the refusal does not say %q: %v", tc.says, err)
			}
			if tc.before == nil {
				if got, err := os.ReadFile(dest); err != nil || string(got) != "old" {
					t.Fatalf("the file at the destination changed: %q (%v)", got, err)
				}
			} else if got := treeOf(t, dest); !mapsEqual(got, was) {
				t.Fatalf("the folder changed: %v, was %v", got, was)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// TestStagingSymlinkRefused: a symlink planted at the staging path (the
// old shared name or the per-root one) to a victim's file or folder is
// never followed: the download refuses it, and the victim's file is as it
// was and nothing is created in the victim's folder.
func TestStagingSymlinkRefused(t *testing.T) {
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	data := randomData(64<<10, 51)
	fileRoot := build(t, blocks, "notes.txt", data, 16<<10)
	dirRoot := buildDir(t, blocks, "notes", []dirFile{{"notes.txt", data}})
	for _, root := range []cid.Cid{fileRoot, dirRoot} {
		l := layoutOf(t, blocks, root)
		victim := t.TempDir()
		target := filepath.Join(victim, "notes.txt")
		if err := os.WriteFile(target, []byte("the victim's notes"), 0o644); err != nil {
			t.Fatal(err)
		}
		if l.Dir {
			target = victim
		}
		dest := filepath.Join(t.TempDir(), "notes")
		for _, p := range []string{oldPartial(dest), newPartial(dest, root)} {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
		d, err := openDownload(l, dest)
		if err == nil {
			writeAll(t, d, l, map[string][]byte{"": data, "notes.txt": data})
			d.finish(false)
			d.closeFiles()
			t.Errorf("%s: the download opened a staging path that is a symlink", l.Name)
		} else {
			t.Logf("%s: %v", l.Name, err)
			if !strings.Contains(err.Error(), "symlink") {
				t.Errorf("%s: the error does not say the staging path is a symlink: %v", l.Name, err)
			}
		}
		if got := treeOf(t, victim); len(got) != 1 || got["notes.txt"] != "the victim's notes" {
			t.Fatalf("%s: the victim's folder now holds %v", l.Name, got)
		}
	}
}

// TestFinishSyncsEveryFolder: finish fsyncs every file and every folder of
// a folder download, and the folder it is renamed into, so that a crash
// after success loses no entry.
func TestFinishSyncsEveryFolder(t *testing.T) {
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	data := []byte("x")
	root := buildDir(t, blocks, "tree", []dirFile{{"a/b/c.txt", data}, {"a/d.txt", data}, {"e/f.txt", data}, {"g.txt", data}})
	l := layoutOf(t, blocks, root)
	parent := t.TempDir()
	dest := filepath.Join(parent, "tree")
	d, err := openDownload(l, dest)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	synced := map[string]bool{}
	d.fsync = func(f *os.File) error {
		mu.Lock()
		synced[f.Name()] = true
		mu.Unlock()
		return f.Sync()
	}
	writeAll(t, d, l, map[string][]byte{"a/b/c.txt": data, "a/d.txt": data, "e/f.txt": data, "g.txt": data})
	if err := d.finish(false); err != nil {
		t.Fatal(err)
	}
	d.closeFiles()
	want := []string{parent, d.partial}
	for _, sub := range l.Dirs {
		want = append(want, filepath.Join(d.partial, filepath.FromSlash(sub)))
	}
	for _, f := range l.Files {
		want = append(want, filepath.Join(d.partial, filepath.FromSlash(f.Path)))
	}
	for _, p := range want {
		if !synced[p] {
			t.Errorf("%s was not fsynced (synced: %v)", p, slices.Sorted(func(yield func(string) bool) {
				for k := range synced {
					if !yield(k) {
						return
					}
				}
			}))
		}
	}
}

// TestForceRefusedBeforeFetching: a fetch with force to a folder it would
// not replace fails before a chunk is asked for, and the folder is kept.
func TestForceRefusedBeforeFetching(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hosts := meshHosts(t, 2)
	data := randomData(256<<10, 61)
	blocks, root, l := fileRoot(t, data, 16<<10)
	server := New(hosts[0], blocks, Config{Logger: quiet()})
	defer server.Close()
	server.Serve(root, &memSource{l: l, data: data})
	fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
	defer fetcher.Close()
	dest := filepath.Join(t.TempDir(), "Downloads")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dest, "thesis.pdf"), []byte("years of work"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: dest, Force: true, Hints: []peer.AddrInfo{{ID: hosts[0].ID()}}, NoConnected: true})
	t.Logf("fetch with force onto a folder: %v; chunks served %d", err, server.Stats().ChunksServed)
	if err == nil {
		t.Fatalf("the fetch replaced the folder %s", dest)
	}
	if !strings.Contains(err.Error(), "is a folder") {
		t.Errorf("the error does not say the destination is a folder: %v", err)
	}
	if n := server.Stats().ChunksServed; n != 0 {
		t.Errorf("%d chunks were fetched before the fetch was refused", n)
	}
	if got := treeOf(t, dest); len(got) != 1 || got["thesis.pdf"] != "years of work" {
		t.Fatalf("the folder now holds %v", got)
	}
}
