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

// mask returns the bit of bit i within its byte: the high bit first.
func mask(i int64) byte { return 0x80 >> (i % 8) }

// Validate checks that b is the encoding of an n-bit Bitfield: exactly
// (n+7)/8 bytes, and no bit set at or past index n. It returns an error
// wrapping ErrInvalid when it is not. It allocates nothing on success and
// reads only b, so that a caller can check bytes from a peer before it
// keeps them.
func Validate(n int64, b []byte) error {
	if n < 0 {
		return fmt.Errorf("%w: negative length %d", ErrInvalid, n)
	}
	if want := ByteLen(n); int64(len(b)) != want {
		return fmt.Errorf("%w: %d bytes for %d bits, want %d", ErrInvalid, len(b), n, want)
	}
	if r := n % 8; r != 0 {
		if spare := b[len(b)-1] & (0xff >> r); spare != 0 {
			return fmt.Errorf("%w: bits set at or past index %d, the length", ErrInvalid, n)
		}
	}
	return nil
}

// Get reports whether bit i is set in the encoding b, read as Bytes writes
// it. It returns false for an i outside [0, 8*len(b)). It does not check b:
// callers Validate it first.
func Get(b []byte, i int64) bool {
	if i < 0 || i/8 >= int64(len(b)) {
		return false
	}
	return b[i/8]&mask(i) != 0
}

// FromBytes decodes the encoding b of an n-bit Bitfield. It copies b. It
// returns an error wrapping ErrInvalid when n is negative, when len(b) is not
// (n+7)/8, or when a bit past n is set.
func FromBytes(n int64, b []byte) (*Bitfield, error) {
	if err := Validate(n, b); err != nil {
		return nil, err
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
	return f.b[i/8]&mask(i) != 0
}

// Set sets bit i and reports whether it was clear before. It panics if i is
// outside [0, Len()): callers check indices that came from a peer with Has's
// range or Len first.
func (f *Bitfield) Set(i int64) bool {
	f.check(i)
	m := mask(i)
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
	m := mask(i)
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

// Words converts the encoding b of an n-bit Bitfield to 64-bit words, the
// form a scheduler scans fastest: bit i is 1<<(i%64) of word i/64, and the
// bits of the last word past n are zero. It appends to dst (which may be
// nil) and returns the result, (n+63)/64 words longer. It checks b as
// Validate does before it allocates anything.
func Words(dst []uint64, n int64, b []byte) ([]uint64, error) {
	if err := Validate(n, b); err != nil {
		return dst, err
	}
	base := len(dst)
	dst = append(dst, make([]uint64, (n+63)/64)...)
	w := dst[base:]
	for k, c := range b {
		if c != 0 {
			// The high bit of byte k is bit 8k: reversed, it is the
			// low bit of the byte's place in its word.
			w[k/8] |= uint64(bits.Reverse8(c)) << (uint(k%8) * 8)
		}
	}
	return dst, nil
}

// FromWords returns the encoding of the first n bits of w, in Words' form:
// (n+7)/8 bytes that Validate accepts (bits of w past n are not encoded). It
// panics if w holds fewer than n bits or n is negative.
func FromWords(n int64, w []uint64) []byte {
	if n < 0 || int64(len(w))*64 < n {
		panic(fmt.Sprintf("bitfield: %d words cannot hold %d bits", len(w), n))
	}
	out := make([]byte, ByteLen(n))
	for k := range out {
		out[k] = bits.Reverse8(byte(w[k/8] >> (uint(k%8) * 8)))
	}
	if r := n % 8; r != 0 {
		out[len(out)-1] &^= 0xff >> r
	}
	return out
}
