package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGenerated runs the generator into a temporary directory and fails if a
// committed assembly file of the chunker differs from what it writes: the
// two are changed together, the .s files only through this program.
func TestGenerated(t *testing.T) {
	dir := t.TempDir()
	if err := write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join("..", "..", f.name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, committed) {
			t.Errorf("chunker/%s differs from what chunker/internal/asmgen writes (first difference at line %d): "+
				"change the generator, not the file, and run go generate ./chunker", f.name, firstDiffLine(got, committed))
		}
	}
}

// firstDiffLine returns the number, from 1, of the first line where a and b
// differ.
func firstDiffLine(a, b []byte) int {
	line := 1
	for i := 0; i < len(a) && i < len(b) && a[i] == b[i]; i++ {
		if a[i] == '\n' {
			line++
		}
	}
	return line
}
