package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/integrity"
)

func testDownload(name string, chunks int64) Download {
	return Download{Root: integrity.Block([]byte(name)), Dest: "/dl/" + name, Partial: "/dl/." + name + ".part",
		Size: chunks * testChunk, Chunks: chunks}
}

// haveOf opens the database at path and returns the marks of root.
func haveOf(t *testing.T, path string, root cid.Cid) *bitfield.Bitfield {
	t.Helper()
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bf, err := s.Have(root)
	if err != nil {
		t.Fatal(err)
	}
	return bf
}

func indicesOf(bf *bitfield.Bitfield) []int64 {
	var out []int64
	for i := range bf.Len() {
		if bf.Has(i) {
			out = append(out, i)
		}
	}
	return out
}

func TestDownloadRecords(t *testing.T) {
	clk := &fakeClock{t: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	s, _ := openTest(t, Options{Now: clk.Now})
	b := testDownload("b", 10)
	a := testDownload("a", 0)
	for _, d := range []Download{b, a} {
		if err := s.PutDownload(d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Download(b.Root)
	b.Created = clk.t
	if err != nil || !got.Created.Equal(b.Created) {
		t.Fatalf("Download = %+v, %v; want %+v", got, err, b)
	}
	if got.Created = b.Created; got != b {
		t.Fatalf("Download = %+v, %v; want %+v", got, err, b)
	}
	all, err := s.Downloads()
	if err != nil || len(all) != 2 || string(all[0].Root.Bytes()) > string(all[1].Root.Bytes()) {
		t.Fatalf("Downloads = %+v, %v", all, err)
	}
	// An update keeps Created and the marks.
	if err := s.MarkHave(b.Root, 3); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	clk.t = clk.t.Add(time.Hour)
	done := b
	done.Created, done.Done = time.Time{}, true
	if err := s.PutDownload(done); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Download(b.Root)
	if !got.Done || !got.Created.Equal(b.Created) {
		t.Fatalf("updated download = %+v", got)
	}
	if bf, _ := s.Have(b.Root); !bf.Has(3) || bf.Count() != 1 {
		t.Fatalf("marks after update = %v", indicesOf(bf))
	}
	// The chunk count cannot change.
	done.Chunks = 11
	if err := s.PutDownload(done); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutDownload with another chunk count = %v, want ErrInvalid", err)
	}
	if err := s.DeleteDownload(b.Root); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Download(b.Root); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Download after delete = %v", err)
	}
	if err := s.DeleteDownload(b.Root); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteDownload = %v", err)
	}
	if n := bucketLen(t, s, bucketHave); n != 0 {
		t.Fatalf("%d progress pages left after delete", n)
	}
}

func TestPutDownloadRejects(t *testing.T) {
	s, _ := openTest(t, Options{})
	ok := testDownload("x", 4)
	tests := map[string]func(d *Download){
		"undefined root":  func(d *Download) { d.Root = cid.Undef },
		"no dest":         func(d *Download) { d.Dest = "" },
		"negative size":   func(d *Download) { d.Size = -1 },
		"negative chunks": func(d *Download) { d.Chunks = -1 },
		"too many chunks": func(d *Download) { d.Chunks = MaxChunks + 1 },
		"year 3000":       func(d *Download) { d.Created = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	for name, edit := range tests {
		d := ok
		edit(&d)
		if err := s.PutDownload(d); err == nil {
			t.Errorf("%s: PutDownload accepted %+v", name, d)
		}
	}
}

func TestMarkHavePages(t *testing.T) {
	s, path := openTest(t, Options{})
	// Three pages and a bit; the last page is partial.
	d := testDownload("big", 2*pageBits+pageBits/2+3)
	if err := s.PutDownload(d); err != nil {
		t.Fatal(err)
	}
	marks := []int64{0, 7, 8, pageBits - 1, pageBits, 2*pageBits + 1, d.Chunks - 1}
	if err := s.MarkHave(d.Root, marks[:3]...); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkHave(d.Root, marks[3:]...); err != nil {
		t.Fatal(err)
	}
	// Have sees flushed and buffered marks alike.
	bf, err := s.Have(d.Root)
	if err != nil {
		t.Fatal(err)
	}
	if got := indicesOf(bf); !equalInts(got, marks) {
		t.Fatalf("Have = %v, want %v", got, marks)
	}
	if bf.Len() != d.Chunks {
		t.Fatalf("Have has %d bits, want %d", bf.Len(), d.Chunks)
	}
	s.Close() // flushes
	if got := indicesOf(haveOf(t, path, d.Root)); !equalInts(got, marks) {
		t.Fatalf("Have after reopen = %v, want %v", got, marks)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMarkHaveCrashContract(t *testing.T) {
	s, _ := openTest(t, Options{FlushInterval: -1})
	d := testDownload("d", 100)
	s.PutDownload(d)
	s.MarkHave(d.Root, 1, 2)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s.MarkHave(d.Root, 3)
	// A crash now keeps the flushed marks and loses the buffered one.
	if got := indicesOf(haveOf(t, snapshot(t, s), d.Root)); !equalInts(got, []int64{1, 2}) {
		t.Fatalf("marks after a crash = %v, want [1 2]", got)
	}
	if got := indicesOf(mustHave(t, s, d.Root)); !equalInts(got, []int64{1, 2, 3}) {
		t.Fatalf("marks in the running store = %v", got)
	}
}

func mustHave(t *testing.T, s *Store, root cid.Cid) *bitfield.Bitfield {
	t.Helper()
	bf, err := s.Have(root)
	if err != nil {
		t.Fatal(err)
	}
	return bf
}

func TestMarkHaveFlushesByCount(t *testing.T) {
	s, _ := openTest(t, Options{MaxPendingMarks: 3, FlushInterval: -1})
	d := testDownload("d", 100)
	s.PutDownload(d)
	s.MarkHave(d.Root, 10, 11)
	if got := indicesOf(haveOf(t, snapshot(t, s), d.Root)); len(got) != 0 {
		t.Fatalf("flushed %v before MaxPendingMarks", got)
	}
	s.MarkHave(d.Root, 12)
	if got := indicesOf(haveOf(t, snapshot(t, s), d.Root)); !equalInts(got, []int64{10, 11, 12}) {
		t.Fatalf("after MaxPendingMarks the database holds %v", got)
	}
}

func TestMarkHaveFlushesByAge(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	s, _ := openTest(t, Options{FlushInterval: time.Second, Now: clk.Now})
	d := testDownload("d", 100)
	s.PutDownload(d)
	s.MarkHave(d.Root, 1)
	clk.t = clk.t.Add(999 * time.Millisecond)
	s.MarkHave(d.Root, 2)
	if got := indicesOf(haveOf(t, snapshot(t, s), d.Root)); len(got) != 0 {
		t.Fatalf("flushed %v before FlushInterval", got)
	}
	clk.t = clk.t.Add(time.Millisecond)
	s.MarkHave(d.Root, 3)
	if got := indicesOf(haveOf(t, snapshot(t, s), d.Root)); !equalInts(got, []int64{1, 2, 3}) {
		t.Fatalf("after FlushInterval the database holds %v", got)
	}
}

func TestMarkHaveRejects(t *testing.T) {
	s, _ := openTest(t, Options{})
	d := testDownload("d", 10)
	s.PutDownload(d)
	for _, i := range []int64{-1, 10} {
		if err := s.MarkHave(d.Root, 0, i); !errors.Is(err, ErrInvalid) {
			t.Errorf("MarkHave(%d) = %v, want ErrInvalid", i, err)
		}
	}
	if bf := mustHave(t, s, d.Root); bf.Count() != 0 {
		t.Error("a rejected MarkHave marked some of its indices")
	}
	unknown := integrity.Block([]byte("unknown"))
	if err := s.MarkHave(unknown, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkHave of an unknown download = %v", err)
	}
	if _, err := s.Have(unknown); !errors.Is(err, ErrNotFound) {
		t.Errorf("Have of an unknown download = %v", err)
	}
	// Deleting a download drops its buffered marks; a new one starts clean.
	s.MarkHave(d.Root, 5)
	if err := s.DeleteDownload(d.Root); err != nil {
		t.Fatal(err)
	}
	s.PutDownload(d)
	s.Flush()
	if bf := mustHave(t, s, d.Root); bf.Count() != 0 {
		t.Fatalf("new download inherited marks %v", indicesOf(bf))
	}
	s.Close()
	if err := s.MarkHave(d.Root, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("MarkHave after Close = %v", err)
	}
}

func TestMarksSurviveReopenWithoutFlush(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "peer.db")
	s, err := Open(path, Options{NoSync: true, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	d := testDownload("d", 50)
	s.PutDownload(d)
	s.MarkHave(d.Root, 49)
	if err := s.Close(); err != nil { // Close flushes
		t.Fatal(err)
	}
	if got := indicesOf(haveOf(t, path, d.Root)); !equalInts(got, []int64{49}) {
		t.Fatalf("marks after Close = %v", got)
	}
}
