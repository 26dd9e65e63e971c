package bitfield

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrInvalid is wrapped by every error of FromBytes.
var ErrInvalid = errors.New("bitfield: invalid encoding")

// Bitfield is a set of n bits, all clear when made by New. The zero value is
// an empty Bitfield of length 0. Methods are not safe for concurrent use.
type Bitfield struct {
	n     int64
	count int64
	b     []byte
}

// ByteLen returns the length in bytes of the encoding of n bits: (n+7)/8.
// It returns 0 for n ≤ 0.
func ByteLen(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return n/8 + min(n%8, 1)
}

// New returns a Bitfield of n bits, all clear. It allocates (n+7)/8 bytes, so
// a caller that takes n from the network bounds it first. It panics if n is
// negative.
func New(n int64) *Bitfield {
	if n < 0 {
		panic(fmt.Sprintf("bitfield: negative length %d", n))
	}
	return &Bitfield{n: n, b: make([]byte, ByteLen(n))}
}

// FromBytes decodes the encoding b of an n-bit Bitfield. It copies b. It
// returns an error wrapping ErrInvalid when n is negative, when len(b) is not
// (n+7)/8, or when a bit past n is set.
func FromBytes(n int64, b []byte) (*Bitfield, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: negative length %d", ErrInvalid, n)
	}
	if want := ByteLen(n); int64(len(b)) != want {
		return nil, fmt.Errorf("%w: %d bytes for %d bits, want %d", ErrInvalid, len(b), n, want)
	}
	if r := n % 8; r != 0 {
		if spare := b[len(b)-1] & (0xff >> r); spare != 0 {
			return nil, fmt.Errorf("%w: bits set past length %d", ErrInvalid, n)
		}
	}
	f := &Bitfield{n: n, b: append([]byte(nil), b...)}
	for _, x := range f.b {
		f.count += int64(bits.OnesCount8(x))
	}
	return f, nil
}

// Len returns the number of bits.
func (f *Bitfield) Len() int64 { return f.n }

// Count returns the number of bits set. It takes constant time.
func (f *Bitfield) Count() int64 { return f.count }

// Full reports whether every bit is set (true for a Bitfield of length 0).
func (f *Bitfield) Full() bool { return f.count == f.n }

// Has reports whether bit i is set. It returns false for an i outside
// [0, Len()), so that it can answer for indices that came from a peer.
func (f *Bitfield) Has(i int64) bool {
	if i < 0 || i >= f.n {
		return false
	}
	return f.b[i/8]&(0x80>>(i%8)) != 0
}

// Set sets bit i and reports whether it was clear before. It panics if i is
// outside [0, Len()): callers check indices that came from a peer with Has's
// range or Len first.
func (f *Bitfield) Set(i int64) bool {
	f.check(i)
	m := byte(0x80 >> (i % 8))
	if f.b[i/8]&m != 0 {
		return false
	}
	f.b[i/8] |= m
	f.count++
	return true
}

// Clear clears bit i and reports whether it was set before. It panics if i is
// outside [0, Len()).
func (f *Bitfield) Clear(i int64) bool {
	f.check(i)
	m := byte(0x80 >> (i % 8))
	if f.b[i/8]&m == 0 {
		return false
	}
	f.b[i/8] &^= m
	f.count--
	return true
}

func (f *Bitfield) check(i int64) {
	if i < 0 || i >= f.n {
		panic(fmt.Sprintf("bitfield: index %d out of range [0, %d)", i, f.n))
	}
}

// Bytes returns a copy of the encoding: (Len()+7)/8 bytes, bit i in the bit
// 0x80>>(i%8) of byte i/8, spare bits zero. FromBytes(f.Len(), f.Bytes())
// returns an equal Bitfield.
func (f *Bitfield) Bytes() []byte { return append([]byte(nil), f.b...) }

// Clone returns an independent copy of f.
func (f *Bitfield) Clone() *Bitfield {
	return &Bitfield{n: f.n, count: f.count, b: f.Bytes()}
}

// Equal reports whether f and g have the same length and the same bits set.
func (f *Bitfield) Equal(g *Bitfield) bool {
	return f.n == g.n && f.count == g.count && string(f.b) == string(g.b)
}
