package main

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// countWrites records the size of each write.
type countWrites struct {
	bytes.Buffer
	sizes []int
}

func (c *countWrites) Write(p []byte) (int, error) {
	c.sizes = append(c.sizes, len(p))
	return c.Buffer.Write(p)
}

// TestStdoutWholeWrites: `get -o -` copies the daemon's body to stdout in
// writes of up to a chunk, not io.Copy's 32 KiB.
func TestStdoutWholeWrites(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+100)
	var out countWrites
	// The body hands out what it has, up to what is asked, like an HTTP
	// body does; HalfReader makes that less than asked half the time.
	n, err := io.Copy(wholeWrites{&out}, iotest.HalfReader(bytes.NewReader(data)))
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("copied %d bytes, %v; want %d and the same bytes", n, err, len(data))
	}
	if len(out.sizes) > 8 {
		t.Fatalf("%d writes for %d bytes (largest %d): want writes of up to %d bytes", len(out.sizes), len(data), maxOf(out.sizes), stdoutBuffer)
	}
}

func maxOf(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
