package swarm

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ipfs/go-cid"
)

// TestFinishHoldsFewFiles finishes a folder download of more files than
// the process may hold open beside the maxOpenFiles a download keeps: finish
// must close each file it opens to sync before it opens the next, or a
// folder of 100,000 files fails with "too many open files" at the very
// end. The soft limit on descriptors is lowered for the test (it runs
// alone: it is not parallel) and restored after.
func TestFinishHoldsFewFiles(t *testing.T) {
	const files = maxOpenFiles + 700
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open descriptors: %v", err)
	}
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	var list []dirFile
	contents := map[string][]byte{}
	for i := range files {
		f := dirFile{path: fmt.Sprintf("f%04d", i), data: []byte(fmt.Sprintf("file %d\n", i))}
		list = append(list, f)
		contents[f.path] = f.data
	}
	l := layoutOf(t, blocks, buildDir(t, blocks, "many", list))
	dest := filepath.Join(t.TempDir(), "many")

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	low := old
	low.Cur = min(old.Cur, uint64(len(fds)+maxOpenFiles+200))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })

	d, err := openDownload(l, dest)
	if err != nil {
		t.Fatal(err)
	}
	defer d.closeFiles()
	writeAll(t, d, l, contents)
	if err := d.finish(false); err != nil {
		t.Fatalf("finish of %d files with at most %d descriptors: %v", files, low.Cur, err)
	}
	for _, f := range list {
		if got, err := os.ReadFile(filepath.Join(dest, f.path)); err != nil || !bytes.Equal(got, f.data) {
			t.Fatalf("%s: %q (%v), want %q", f.path, got, err, f.data)
		}
	}
}
