package integrity

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Codecs of the blocks peer produces.
const (
	// Raw is the multicodec of a chunk: its bytes are the file's bytes.
	Raw uint64 = cid.Raw // 0x55
	// DagPB is the multicodec of a UnixFS node (a file node over its
	// leaves, a folder, a HAMT shard): the interior nodes of a root's DAG.
	DagPB uint64 = cid.DagProtobuf // 0x70
)

// DigestSize is the length in bytes of a sha2-256 digest.
const DigestSize = sha256.Size

// prefixLen is the length of the binary prefix that every CID peer makes
// shares: version 1, the codec, sha2-256 and the digest length, one byte each.
const prefixLen = 4

// cidLen is the length in bytes of a binary CID peer makes.
const cidLen = prefixLen + DigestSize

// ErrUnsupported is returned for a CID that peer does not produce: another
// version, codec or hash function. Such a CID can never be verified here and
// is refused rather than passed.
var ErrUnsupported = errors.New("integrity: unsupported CID")

// MismatchError reports bytes that do not hash to the CID they were offered
// for. Peer names who sent them when they came from the network (empty for
// bytes read from disk), so that the sender can be struck.
type MismatchError struct {
	CID  cid.Cid // what the bytes should have been
	Got  cid.Cid // what they hash to
	Peer string  // who sent them, if anyone
}

func (e *MismatchError) Error() string {
	if e.Peer != "" {
		return fmt.Sprintf("integrity: bytes from %s hash to %s, not %s", e.Peer, e.Got, e.CID)
	}
	return fmt.Sprintf("integrity: bytes hash to %s, not %s", e.Got, e.CID)
}

// New returns the CIDv1 of data under codec (Raw or DagPB), hashed with
// sha2-256. It panics on any other codec: callers pass constants.
func New(codec uint64, data []byte) cid.Cid {
	sum := sha256.Sum256(data)
	return FromDigest(codec, sum[:])
}

// Chunk returns the CID of a chunk: CIDv1, raw codec, sha2-256.
func Chunk(data []byte) cid.Cid { return New(Raw, data) }

// Block returns the CID of an interior node of a DAG: CIDv1, dag-pb,
// sha2-256. It hashes data as given; it does not check that data is dag-pb.
func Block(data []byte) cid.Cid { return New(DagPB, data) }

// FromDigest builds the CID of codec whose sha2-256 digest is sum.
// It panics if codec is not Raw or DagPB or sum is not 32 bytes long.
func FromDigest(codec uint64, sum []byte) cid.Cid {
	if codec != Raw && codec != DagPB {
		panic(fmt.Sprintf("integrity: codec %#x is not one peer produces", codec))
	}
	if len(sum) != DigestSize {
		panic(fmt.Sprintf("integrity: digest of %d bytes, want %d", len(sum), DigestSize))
	}
	// Both codecs and sha2-256 (0x12) encode as one-byte varints, so the
	// binary CID is four bytes of prefix and the digest.
	b := make([]byte, cidLen)
	b[0], b[1], b[2], b[3] = 1, byte(codec), multihash.SHA2_256, DigestSize
	copy(b[prefixLen:], sum)
	c, err := cid.Cast(b)
	if err != nil {
		panic(fmt.Sprintf("integrity: building CID: %v", err)) // broken invariant
	}
	return c
}

// Check reports whether c is a CID peer can verify: version 1, codec Raw or
// DagPB, sha2-256 with a full-length digest. The error wraps ErrUnsupported.
func Check(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined CID", ErrUnsupported)
	}
	p := c.Prefix()
	if p.Version != 1 {
		return fmt.Errorf("%w: %s is CIDv%d, want CIDv1", ErrUnsupported, c, p.Version)
	}
	if p.Codec != Raw && p.Codec != DagPB {
		return fmt.Errorf("%w: %s has codec %#x, want raw (0x55) or dag-pb (0x70)", ErrUnsupported, c, p.Codec)
	}
	if p.MhType != multihash.SHA2_256 || p.MhLength != DigestSize {
		return fmt.Errorf("%w: %s is not hashed with sha2-256", ErrUnsupported, c)
	}
	return nil
}

// CheckCodec is Check, and also that c has the given codec.
func CheckCodec(c cid.Cid, codec uint64) error {
	if err := Check(c); err != nil {
		return err
	}
	if got := c.Prefix().Codec; got != codec {
		return fmt.Errorf("%w: %s has codec %#x, want %#x", ErrUnsupported, c, got, codec)
	}
	return nil
}

// Digest returns the sha2-256 digest inside c, which must pass Check.
func Digest(c cid.Cid) ([]byte, error) {
	if err := Check(c); err != nil {
		return nil, err
	}
	b := c.Bytes()
	return b[len(b)-DigestSize:], nil
}

// Verify checks that data hashes to c. It returns an error wrapping
// ErrUnsupported when c cannot be checked, and a *MismatchError when the bytes
// are not those of c.
func Verify(c cid.Cid, data []byte) error {
	return VerifyFrom(c, data, "")
}

// VerifyFrom is Verify for bytes that came from peer, whom a mismatch names.
func VerifyFrom(c cid.Cid, data []byte, peer string) error {
	want, err := Digest(c)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if string(sum[:]) != string(want) {
		return &MismatchError{CID: c, Got: FromDigest(c.Prefix().Codec, sum[:]), Peer: peer}
	}
	return nil
}

// Writer hashes everything written to it. The zero value is not usable; make
// one with NewWriter. A Writer is not safe for concurrent use.
type Writer struct {
	codec uint64
	h     hash.Hash
	n     int64
}

// NewWriter returns a Writer that names what is written to it as a CID of
// codec (Raw or DagPB). It panics on any other codec.
func NewWriter(codec uint64) *Writer {
	if codec != Raw && codec != DagPB {
		panic(fmt.Sprintf("integrity: codec %#x is not one peer produces", codec))
	}
	return &Writer{codec: codec, h: sha256.New()}
}

// Write hashes p. It never fails.
func (w *Writer) Write(p []byte) (int, error) {
	w.h.Write(p)
	w.n += int64(len(p))
	return len(p), nil
}

// Len returns the number of bytes written so far.
func (w *Writer) Len() int64 { return w.n }

// CID returns the CID of everything written so far.
func (w *Writer) CID() cid.Cid {
	var buf [DigestSize]byte
	return FromDigest(w.codec, w.h.Sum(buf[:0]))
}

// Verify checks everything written so far against c, as Verify does.
func (w *Writer) Verify(c cid.Cid) error {
	want, err := Digest(c)
	if err != nil {
		return err
	}
	if c.Prefix().Codec != w.codec {
		return fmt.Errorf("%w: %s has codec %#x, writer hashes %#x", ErrUnsupported, c, c.Prefix().Codec, w.codec)
	}
	var buf [DigestSize]byte
	sum := w.h.Sum(buf[:0])
	if string(sum) != string(want) {
		return &MismatchError{CID: c, Got: FromDigest(w.codec, sum)}
	}
	return nil
}

// Reset forgets everything written, to hash a new stream.
func (w *Writer) Reset() {
	w.h.Reset()
	w.n = 0
}
