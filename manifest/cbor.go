package manifest

import (
	"fmt"
	"unicode/utf8"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/integrity"
)

// This file holds the small subset of CBOR (RFC 8949) that manifests use,
// written by hand so that the encoder can only produce, and the reader can
// only accept, strict DAG-CBOR: shortest-form heads, definite lengths, text
// that is valid UTF-8, no floats, no tags but 42 (links), map keys written in
// the fixed canonical order that each schema table in schema.go lists.

// CBOR major types.
const (
	majUint  = 0
	majNeg   = 1
	majBytes = 2
	majText  = 3
	majArray = 4
	majMap   = 5
	majTag   = 6
	majOther = 7
)

// Simple values and the link tag.
const (
	cborFalse = 0xf4
	cborTrue  = 0xf5
	tagCID    = 42
)

// maxLinkLen bounds the byte string of a link: the 0x00 multibase prefix
// and a binary CID. Peer's CIDs take 36 bytes; anything much longer is not
// one of them and is refused before Cast looks at it.
const maxLinkLen = 1 + 64

// appendHead appends the head of a data item of major type maj and
// argument n in its shortest form.
func appendHead(b []byte, maj byte, n uint64) []byte {
	m := maj << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func appendUint(b []byte, n uint64) []byte { return appendHead(b, majUint, n) }

func appendText(b []byte, s string) []byte {
	b = appendHead(b, majText, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, cborTrue)
	}
	return append(b, cborFalse)
}

// appendLink appends c as DAG-CBOR writes a link: tag 42 over a byte string
// holding the identity multibase prefix 0x00 and the binary CID.
func appendLink(b []byte, c cid.Cid) []byte {
	raw := c.KeyString() // the binary CID, without a copy
	b = appendHead(b, majTag, tagCID)
	b = appendHead(b, majBytes, uint64(1+len(raw)))
	b = append(b, 0)
	return append(b, raw...)
}

// reader takes strict DAG-CBOR items off a byte slice. Every method checks
// that what it reads is in canonical form and that any length it reads fits
// in what is left of the input before it allocates anything for it.
type reader struct {
	data []byte
	pos  int
}

// readError reports malformed or non-canonical CBOR at a byte offset.
func (r *reader) errorf(at int, format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", at, fmt.Sprintf(format, args...))
}

func (r *reader) remaining() int { return len(r.data) - r.pos }

// head reads the head of the next item: its major type and argument. It
// refuses indefinite lengths, reserved encodings and arguments not in their
// shortest form. For major type 7 the argument is the simple value or the
// raw bits of a float; callers refuse those they do not take.
func (r *reader) head() (maj byte, arg uint64, at int, err error) {
	at = r.pos
	if r.remaining() < 1 {
		return 0, 0, at, r.errorf(at, "unexpected end of input")
	}
	ib := r.data[r.pos]
	r.pos++
	maj, ai := ib>>5, ib&0x1f
	var size int
	switch {
	case ai < 24:
		return maj, uint64(ai), at, nil
	case ai == 24:
		size = 1
	case ai == 25:
		size = 2
	case ai == 26:
		size = 4
	case ai == 27:
		size = 8
	case ai == 31:
		return 0, 0, at, r.errorf(at, "indefinite-length item (DAG-CBOR allows definite lengths only)")
	default:
		return 0, 0, at, r.errorf(at, "reserved additional information %d", ai)
	}
	if r.remaining() < size {
		return 0, 0, at, r.errorf(at, "unexpected end of input")
	}
	for _, c := range r.data[r.pos : r.pos+size] {
		arg = arg<<8 | uint64(c)
	}
	r.pos += size
	if maj == majOther {
		// Floats (ai 25..27) and two-byte simple values: never canonical
		// in a manifest, whatever their value.
		return 0, 0, at, r.errorf(at, "float or extended simple value (manifests hold none)")
	}
	var minimum uint64
	switch size {
	case 1:
		minimum = 24
	case 2:
		minimum = 1 << 8
	case 4:
		minimum = 1 << 16
	case 8:
		minimum = 1 << 32
	}
	if arg < minimum {
		return 0, 0, at, r.errorf(at, "%d encoded in %d bytes, not its shortest form", arg, size+1)
	}
	return maj, arg, at, nil
}

func majorName(maj byte) string {
	return [...]string{"an unsigned integer", "a negative integer", "a byte string", "a text string",
		"an array", "a map", "a tag", "a simple value or float"}[maj&7]
}

// expect reads a head and checks its major type.
func (r *reader) expect(want byte) (uint64, int, error) {
	maj, arg, at, err := r.head()
	if err != nil {
		return 0, at, err
	}
	if maj != want {
		return 0, at, r.errorf(at, "%s where %s belongs", majorName(maj), majorName(want))
	}
	return arg, at, nil
}

// uint reads an unsigned integer.
func (r *reader) uint() (uint64, error) {
	n, _, err := r.expect(majUint)
	return n, err
}

// text reads a text string of at most maxLen bytes of valid UTF-8.
func (r *reader) text(maxLen int) (string, error) {
	n, at, err := r.expect(majText)
	if err != nil {
		return "", err
	}
	if n > uint64(maxLen) {
		return "", r.errorf(at, "text of %d bytes, limit %d", n, maxLen)
	}
	if n > uint64(r.remaining()) {
		return "", r.errorf(at, "text of %d bytes runs past the end of input", n)
	}
	b := r.data[r.pos : r.pos+int(n)]
	r.pos += int(n)
	if !utf8.Valid(b) {
		return "", r.errorf(at, "text is not valid UTF-8")
	}
	return string(b), nil
}

// boolean reads true or false.
func (r *reader) boolean() (bool, error) {
	at := r.pos
	if r.remaining() < 1 {
		return false, r.errorf(at, "unexpected end of input")
	}
	switch r.data[r.pos] {
	case cborFalse:
		r.pos++
		return false, nil
	case cborTrue:
		r.pos++
		return true, nil
	}
	maj, _, _, err := r.head()
	if err != nil {
		return false, err
	}
	return false, r.errorf(at, "%s where a boolean belongs", majorName(maj))
}

// link reads a tag-42 link and checks that its CID is one peer can verify
// (CIDv1, sha2-256) with the given codec.
func (r *reader) link(codec uint64) (cid.Cid, error) {
	tag, at, err := r.expect(majTag)
	if err != nil {
		return cid.Undef, err
	}
	if tag != tagCID {
		return cid.Undef, r.errorf(at, "tag %d (DAG-CBOR allows only tag 42, a link)", tag)
	}
	n, at, err := r.expect(majBytes)
	if err != nil {
		return cid.Undef, err
	}
	if n > maxLinkLen || n > uint64(r.remaining()) || n < 2 {
		return cid.Undef, r.errorf(at, "link of %d bytes is not a CID", n)
	}
	b := r.data[r.pos : r.pos+int(n)]
	r.pos += int(n)
	if b[0] != 0 {
		return cid.Undef, r.errorf(at, "link starts with %#x, want the 0x00 multibase prefix", b[0])
	}
	c, err := cid.Cast(b[1:])
	if err != nil {
		return cid.Undef, r.errorf(at, "link: %v", err)
	}
	if err := integrity.CheckCodec(c, codec); err != nil {
		return cid.Undef, fmt.Errorf("at byte %d: link: %w", at, err)
	}
	return c, nil
}

// arrayHead reads the head of an array of at most maxLen items. Every item
// takes at least minItem bytes, so a length the rest of the input cannot
// hold is refused before anything is allocated for it.
func (r *reader) arrayHead(maxLen, minItem int) (int, error) {
	n, at, err := r.expect(majArray)
	if err != nil {
		return 0, err
	}
	if n > uint64(maxLen) {
		return 0, tooLargef("at byte %d: array of %d items, limit %d", at, n, maxLen)
	}
	if n*uint64(minItem) > uint64(r.remaining()) {
		return 0, r.errorf(at, "array of %d items runs past the end of input", n)
	}
	return int(n), nil
}

// mapHead reads the head of a map of at most maxPairs pairs.
func (r *reader) mapHead(maxPairs int) (int, error) {
	n, at, err := r.expect(majMap)
	if err != nil {
		return 0, err
	}
	if n > uint64(maxPairs) {
		return 0, r.errorf(at, "map of %d pairs, this schema has at most %d", n, maxPairs)
	}
	if n*2 > uint64(r.remaining()) {
		return 0, r.errorf(at, "map of %d pairs runs past the end of input", n)
	}
	return int(n), nil
}

// fields reads a map whose keys must be exactly keys, in that order (the
// schema tables list them in DAG-CBOR's canonical order), and calls value
// for each key to read its value. A missing, repeated, misordered or
// unknown key is refused with an error that names it.
func (r *reader) fields(keys []string, value func(key string) error) error {
	n, err := r.mapHead(len(keys) + 1)
	if err != nil {
		return err
	}
	return r.fieldsN(n, 0, keys, value)
}

// fieldsN reads keys[from:] as the pairs from..n-1 of a map of n pairs
// whose head has been read.
func (r *reader) fieldsN(n, from int, keys []string, value func(key string) error) error {
	for i := from; i < n; i++ {
		at := r.pos
		k, err := r.text(maxKeyLen)
		if err != nil {
			return err
		}
		if i >= len(keys) || k != keys[i] {
			return keyError(r.errorf(at, ""), k, i, keys)
		}
		if err := value(k); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	if n < len(keys) {
		return fmt.Errorf("missing key %q", keys[n])
	}
	return nil
}

// maxKeyLen bounds the length of a map key: longer than any in the schema.
const maxKeyLen = 16

// keyError explains why key k is not the one expected at position i.
func keyError(where error, k string, i int, keys []string) error {
	idx := -1
	for j, kk := range keys {
		if kk == k {
			idx = j
		}
	}
	switch {
	case idx < 0:
		return fmt.Errorf("%vunknown key %q", where, k)
	case idx < i:
		return fmt.Errorf("%vkey %q repeated or out of canonical order", where, k)
	default:
		return fmt.Errorf("%vkey %q where %q belongs (out of canonical order, or %q missing)", where, k, keys[i], keys[i])
	}
}
