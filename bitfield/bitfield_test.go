package bitfield

import (
	"bytes"
	"errors"
	"math/bits"
	"slices"
	"testing"
)

func TestByteLen(t *testing.T) {
	tests := []struct{ n, want int64 }{
		{-1, 0}, {0, 0}, {1, 1}, {7, 1}, {8, 1}, {9, 2}, {16, 2}, {17, 3}, {1 << 40, 1 << 37},
	}
	for _, tt := range tests {
		if got := ByteLen(tt.n); got != tt.want {
			t.Errorf("ByteLen(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

func TestEncodingVectors(t *testing.T) {
	tests := []struct {
		name string
		n    int64
		set  []int64
		want []byte
	}{
		{"empty", 0, nil, []byte{}},
		{"first bit is the high bit", 8, []int64{0}, []byte{0x80}},
		{"last bit of a byte", 8, []int64{7}, []byte{0x01}},
		{"second byte", 10, []int64{8, 9}, []byte{0x00, 0xc0}},
		{"full odd length", 3, []int64{0, 1, 2}, []byte{0xe0}},
		{"sparse", 20, []int64{1, 10, 19}, []byte{0x40, 0x20, 0x10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(tt.n)
			for _, i := range tt.set {
				if !f.Set(i) {
					t.Fatalf("Set(%d) reported the bit already set", i)
				}
			}
			if got := f.Bytes(); !bytes.Equal(got, tt.want) {
				t.Fatalf("Bytes = % x, want % x", got, tt.want)
			}
			if f.Count() != int64(len(tt.set)) {
				t.Fatalf("Count = %d, want %d", f.Count(), len(tt.set))
			}
			g, err := FromBytes(tt.n, tt.want)
			if err != nil {
				t.Fatalf("FromBytes: %v", err)
			}
			if !g.Equal(f) {
				t.Fatalf("FromBytes(Bytes) = %v, want %v", g.Bytes(), f.Bytes())
			}
			for i := int64(0); i < tt.n; i++ {
				want := false
				for _, s := range tt.set {
					want = want || s == i
				}
				if g.Has(i) != want {
					t.Fatalf("Has(%d) = %v, want %v", i, !want, want)
				}
			}
		})
	}
}

func TestSetClearCount(t *testing.T) {
	f := New(100)
	if f.Full() || f.Count() != 0 || f.Len() != 100 {
		t.Fatalf("new bitfield: len %d count %d full %v", f.Len(), f.Count(), f.Full())
	}
	for i := int64(0); i < 100; i++ {
		f.Set(i)
	}
	if !f.Full() || f.Count() != 100 {
		t.Fatalf("after setting all: count %d full %v", f.Count(), f.Full())
	}
	if f.Set(42) {
		t.Fatal("Set of a set bit reported it clear")
	}
	c := f.Clone()
	if !f.Clear(42) || f.Clear(42) {
		t.Fatal("Clear did not report the previous state")
	}
	if f.Has(42) || f.Count() != 99 || f.Full() {
		t.Fatalf("after Clear: has %v count %d", f.Has(42), f.Count())
	}
	if !c.Has(42) || c.Count() != 100 {
		t.Fatal("Clone shares storage with the original")
	}
	b := f.Bytes()
	b[0] = 0
	if !f.Has(0) {
		t.Fatal("Bytes shares storage with the bitfield")
	}
	var zero Bitfield
	if zero.Len() != 0 || !zero.Full() || zero.Has(0) || len(zero.Bytes()) != 0 {
		t.Fatal("zero Bitfield is not an empty one")
	}
}

func TestHasOutOfRange(t *testing.T) {
	f := New(9)
	f.Set(8)
	for _, i := range []int64{-1, 9, 16, 1 << 62} {
		if f.Has(i) {
			t.Errorf("Has(%d) = true outside the range", i)
		}
	}
}

func TestSetOutOfRangePanics(t *testing.T) {
	for _, i := range []int64{-1, 9} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Set(%d) on 9 bits did not panic", i)
				}
			}()
			New(9).Set(i)
		}()
	}
}

func TestFromBytesRejects(t *testing.T) {
	tests := []struct {
		name string
		n    int64
		b    []byte
	}{
		{"negative length", -1, nil},
		{"too short", 9, []byte{0xff}},
		{"too long", 8, []byte{0xff, 0x00}},
		{"bytes for zero bits", 0, []byte{0x00}},
		{"spare bit set", 9, []byte{0xff, 0x40}},
		{"lowest spare bit set", 1, []byte{0x01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := FromBytes(tt.n, tt.b); !errors.Is(err, ErrInvalid) {
				t.Fatalf("FromBytes(%d, % x) = %v, want ErrInvalid", tt.n, tt.b, err)
			}
		})
	}
}

func FuzzFromBytes(f *testing.F) {
	f.Add(int64(0), []byte{})
	f.Add(int64(8), []byte{0xa5})
	f.Add(int64(9), []byte{0xff, 0x80})
	f.Add(int64(9), []byte{0xff, 0x40})
	f.Add(int64(17), []byte{0x01, 0x02, 0x80})
	f.Add(int64(-3), []byte{0x01})
	f.Fuzz(func(t *testing.T, n int64, b []byte) {
		bf, err := FromBytes(n, b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if !bytes.Equal(bf.Bytes(), b) {
			t.Fatalf("Bytes = % x, want % x", bf.Bytes(), b)
		}
		var ones int64
		for _, x := range b {
			ones += int64(bits.OnesCount8(x))
		}
		if bf.Count() != ones || bf.Len() != n {
			t.Fatalf("Count %d Len %d, want %d %d", bf.Count(), bf.Len(), ones, n)
		}
		var has int64
		for i := int64(0); i < n; i++ {
			if bf.Has(i) {
				has++
			}
		}
		if has != ones {
			t.Fatalf("Has reports %d bits, Count %d", has, ones)
		}
		if bf.Has(n) || bf.Has(-1) {
			t.Fatal("Has true outside the range")
		}
	})
}

// TestWordsVectors: the 64-bit word form puts bit i at 1<<(i%64) of word
// i/64, whatever the byte order of the encoding; Get reads the encoding
// directly.
func TestWordsVectors(t *testing.T) {
	tests := []struct {
		n     int64
		b     []byte
		words []uint64
	}{
		{0, []byte{}, []uint64{}},
		{10, []byte{0xa0, 0x40}, []uint64{1<<0 | 1<<2 | 1<<9}},
		{8, []byte{0x01}, []uint64{1 << 7}},
		{65, append(make([]byte, 8), 0x80), []uint64{0, 1}},
		{64, []byte{0x80, 0, 0, 0, 0, 0, 0, 0x01}, []uint64{1 | 1<<63}},
	}
	for _, tt := range tests {
		w, err := Words(nil, tt.n, tt.b)
		if err != nil {
			t.Fatalf("Words(%d, % x): %v", tt.n, tt.b, err)
		}
		if !slices.Equal(w, tt.words) {
			t.Errorf("Words(%d, % x) = %x, want %x", tt.n, tt.b, w, tt.words)
		}
		if got := FromWords(tt.n, tt.words); !bytes.Equal(got, tt.b) {
			t.Errorf("FromWords(%d, %x) = % x, want % x", tt.n, tt.words, got, tt.b)
		}
		for i := range tt.n {
			if Get(tt.b, i) != (tt.words[i/64]&(1<<(i%64)) != 0) {
				t.Errorf("Get(% x, %d) disagrees with the words", tt.b, i)
			}
		}
	}
	if _, err := Words(nil, 10, []byte{0xa0, 0x60}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Words of a spare bit set: %v, want ErrInvalid", err)
	}
	if Get([]byte{0xff}, 8) || Get([]byte{0xff}, -1) {
		t.Error("Get true past the encoding")
	}
}

// FuzzWords: any bytes for any length either fail Validate (and Words and
// FromBytes with it) or convert to words and back to the same bytes, with
// Get, Has and the words agreeing on every bit.
func FuzzWords(f *testing.F) {
	f.Add(int64(10), []byte{0xa0, 0x40})
	f.Add(int64(10), []byte{0xa0, 0x60})
	f.Add(int64(65), append(make([]byte, 8), 0x80))
	f.Add(int64(1), []byte{0x01})
	f.Fuzz(func(t *testing.T, n int64, b []byte) {
		n %= 1 << 16
		verr := Validate(n, b)
		w, err := Words(nil, n, b)
		_, ferr := FromBytes(n, b)
		if (verr == nil) != (err == nil) || (verr == nil) != (ferr == nil) {
			t.Fatalf("Validate %v, Words %v, FromBytes %v disagree", verr, err, ferr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if int64(len(w)) != (n+63)/64 {
			t.Fatalf("%d words for %d bits", len(w), n)
		}
		if got := FromWords(n, w); !bytes.Equal(got, b) {
			t.Fatalf("round trip % x -> % x", b, got)
		}
		bf, _ := FromBytes(n, b)
		for i := range n {
			inWords := w[i/64]&(1<<(i%64)) != 0
			if Get(b, i) != inWords || bf.Has(i) != inWords {
				t.Fatalf("bit %d: Get %v, Has %v, words %v", i, Get(b, i), bf.Has(i), inWords)
			}
		}
	})
}
