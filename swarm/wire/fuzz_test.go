package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/peer-project/peer/bitfield"
)

// FuzzRead feeds arbitrary bytes to a Reader. It must never panic; it must
// fail only with io.EOF, io.ErrUnexpectedEOF or an error wrapping
// ErrProtocol; and the encoding is canonical: the messages it decodes
// re-encode to exactly the bytes they came from, which decode to equal
// messages. The second byte of a fuzz input, when odd, has the Reader decode
// blocks through a BlockAllocFunc.
func FuzzRead(f *testing.F) {
	for _, tt := range allMessages() {
		if b := encodeAll(f, tt.msg); len(b) < 4096 {
			f.Add(b)
		}
	}
	f.Add(encodeAll(f, &Hello{Version: Version, Root: nodeCID, Chunks: 3}, &HaveBitfield{Bits: []byte{5}},
		&Want{Indices: []uint64{0, 2}}, &Block{Index: 0, Data: []byte("zero")}, &DontHave{Indices: []uint64{2}}))
	f.Add([]byte{0x00})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x09})
	f.Add(frame(0x11))
	f.Add(frame(0x12))
	f.Add(encodeAll(f, &Hello{Version: Version, Root: nodeCID}, &InOrder{}, &Want{Indices: []uint64{0, 1}}))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, useAlloc := range []bool{false, true} {
			r := NewReader(bytes.NewReader(data), 0)
			if useAlloc {
				blk := &Block{Data: make([]byte, 0, 16)}
				r.SetBlockAlloc(func(index uint64, size int) *Block {
					if index%3 == 0 {
						return nil // the default path
					}
					return blk
				})
			}
			var msgs []Msg
			var re bytes.Buffer
			w := NewWriter(&re)
			for {
				m, err := r.Read()
				if err != nil {
					if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrProtocol) {
						t.Fatalf("Read: unexpected error %v", err)
					}
					break
				}
				if err := w.Write(m); err != nil {
					t.Fatalf("decoded %T does not re-encode: %v", m, err)
				}
				msgs = append(msgs, normalize(m))
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, re.Bytes()) {
				t.Fatalf("re-encoding\n% x\nis not a prefix of the input\n% x", re.Bytes(), data)
			}
			r2 := NewReader(bytes.NewReader(re.Bytes()), 0)
			for i, want := range msgs {
				got, err := r2.Read()
				if err != nil {
					t.Fatalf("message %d re-read: %v", i, err)
				}
				if !reflect.DeepEqual(normalize(got), want) {
					t.Fatalf("message %d re-read as %+v, want %+v", i, got, want)
				}
			}
			if _, err := r2.Read(); err != io.EOF {
				t.Fatalf("re-read ends with %v, want io.EOF", err)
			}
		}
	})
}

// FuzzHaveBitfieldValidate: HaveBitfield.Validate and Has agree with
// package bitfield, the one codec of the encoding, for any bytes and any
// chunk count: Validate accepts exactly what bitfield.Validate accepts
// (counts past MaxBitfieldChunks never), every refusal wraps ErrMalformed,
// and Has reads the bits as bitfield.Get does, false past the end.
func FuzzHaveBitfieldValidate(f *testing.F) {
	f.Add(uint64(10), []byte{0xa0, 0x40})
	f.Add(uint64(10), []byte{0xa0, 0x60})
	f.Add(uint64(10), []byte{0x01, 0x02})
	f.Add(uint64(MaxBitfieldChunks+1), []byte{0})
	f.Add(^uint64(0), []byte{0xff})
	f.Fuzz(func(t *testing.T, chunks uint64, bits []byte) {
		m := &HaveBitfield{Bits: bits}
		err := m.Validate(chunks)
		want := chunks <= MaxBitfieldChunks && bitfield.Validate(int64(chunks), bits) == nil
		if (err == nil) != want {
			t.Fatalf("Validate(%d, % x) = %v, want ok %v", chunks, bits, err, want)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Validate error %v does not wrap ErrMalformed", err)
		}
		for i := range uint64(len(bits))*8 + 9 {
			if m.Has(i) != bitfield.Get(bits, int64(i)) {
				t.Fatalf("Has(%d) of % x = %v, bitfield.Get says otherwise", i, bits, m.Has(i))
			}
		}
		if m.Has(1<<63) || m.Has(^uint64(0)) {
			t.Fatal("Has true far past the end")
		}
	})
}
