package wire

import (
	"bytes"
	"io"
	"testing"
)

const benchBlockSize = 1 << 20

// BenchmarkBlockRoundTrip writes 1 MiB BLOCKs and reads them back, over a
// memory buffer (no concurrency: framing cost alone) and over an io.Pipe (a
// writer goroutine and a reader, as on a stream). Each has a raw baseline
// that moves the same bytes with no framing: the ratio is what framing costs.
// Reads use a BlockAllocFunc, as the swarm will.
func BenchmarkBlockRoundTrip(b *testing.B) {
	data := bytes.Repeat([]byte{0x5a}, benchBlockSize)
	dst := make([]byte, benchBlockSize)

	b.Run("buffer/raw", func(b *testing.B) {
		var buf bytes.Buffer
		b.SetBytes(benchBlockSize)
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			buf.Write(data)
			if _, err := io.ReadFull(&buf, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("buffer/wire", func(b *testing.B) {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		r := NewReader(&buf, 0)
		blk := &Block{Data: dst}
		r.SetBlockAlloc(func(uint64, int) *Block { return blk })
		b.SetBytes(benchBlockSize)
		b.ReportAllocs()
		var i uint64
		for b.Loop() {
			buf.Reset()
			if err := w.Write(&Block{Index: i, Data: data}); err != nil {
				b.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
			m, err := r.Read()
			if err != nil || m.(*Block).Index != i {
				b.Fatal(m, err)
			}
			i++
		}
	})
	b.Run("pipe/raw", func(b *testing.B) {
		pr, pw := io.Pipe()
		b.SetBytes(benchBlockSize)
		b.ReportAllocs()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := pw.Write(data); err != nil {
					return
				}
			}
		}()
		for b.Loop() {
			if _, err := io.ReadFull(pr, dst); err != nil {
				b.Fatal(err)
			}
		}
		pr.Close()
		<-done
	})
	b.Run("pipe/wire", func(b *testing.B) {
		pr, pw := io.Pipe()
		r := NewReader(pr, 0)
		blk := &Block{Data: dst}
		r.SetBlockAlloc(func(uint64, int) *Block { return blk })
		b.SetBytes(benchBlockSize)
		b.ReportAllocs()
		done := make(chan struct{})
		go func() {
			defer close(done)
			w := NewWriter(pw)
			for i := uint64(0); ; i++ {
				if err := w.Write(&Block{Index: i, Data: data}); err != nil {
					return
				}
				if err := w.Flush(); err != nil {
					return
				}
			}
		}()
		for b.Loop() {
			if _, err := r.Read(); err != nil {
				b.Fatal(err)
			}
		}
		pr.Close()
		<-done
	})
	b.Run("buffer/wire-default", func(b *testing.B) {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		r := NewReader(&buf, 0)
		b.SetBytes(benchBlockSize)
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := w.Write(&Block{Index: 1, Data: data}); err != nil {
				b.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
			if _, err := r.Read(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWantRoundTrip: a batch of 16 WANTs of 16 indices, one Flush, read
// back: the request path.
func BenchmarkWantRoundTrip(b *testing.B) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	r := NewReader(&buf, 0)
	idx := make([]uint64, 16)
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		for j := range 16 {
			for k := range idx {
				idx[k] = uint64(j*16 + k + 1000)
			}
			if err := w.Write(&Want{Indices: idx}); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		for range 16 {
			if _, err := r.Read(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
