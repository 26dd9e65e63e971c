//go:build unix

package importer

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestImportSkipsFIFO: a special file inside the folder is skipped and
// listed (the link to /dev/null of TestImportSkipsSpecialFiles now leads
// out of the folder; this one is inside).
func TestImportSkipsFIFO(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.txt"), []byte("a"))
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	res, err := Import(context.Background(), dir, Options{}, nil)
	if err != nil || res.Files != 1 || len(res.Skipped) != 1 || !strings.HasSuffix(res.Skipped[0], "pipe") {
		t.Fatalf("result %+v, %v; want a.txt imported and pipe skipped", res, err)
	}
}
