package store

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// On-disk encoding. Every value begins with recordVersion; the fields follow
// in a fixed order: unsigned integers as uvarints, signed ones (times in Unix
// nanoseconds) as zig-zag varints, strings and CIDs as a uvarint length and
// the bytes, flags as one byte. Decoders check every length against the bytes
// left and against a hard limit before they slice, and refuse trailing bytes.
const recordVersion = 1

// Hard limits on what a record read from disk may hold.
const (
	maxString = 1 << 15 // a path or a name, in bytes
	maxCID    = 64      // a binary CID; ours are cidLen
)

// cidLen is the length of every binary CID the store accepts (integrity.Check
// passes only CIDv1, one-byte codec, sha2-256).
const cidLen = 4 + integrity.DigestSize

// Share record states.
const (
	statePending   = 1 // being built, or being removed: invisible, purged on Open
	stateCommitted = 2
)

// Share record flags.
const (
	flagDir   = 1 << 0
	flagStale = 1 << 1
)

// shareRecord is the value of shares[id].
type shareRecord struct {
	state    byte
	dir      bool
	stale    bool
	root     cid.Cid // undefined while pending
	path     string  // absolute path of the shared file or directory
	name     string
	size     int64
	files    int64
	created  int64 // Unix nanoseconds
	chunking chunker.Params
}

// fileRecord is the value of files[id, fileNo].
type fileRecord struct {
	path  string // absolute, or relative to the share's path
	size  int64
	mtime int64 // Unix nanoseconds
	root  cid.Cid
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendCID(b []byte, c cid.Cid) []byte {
	if !c.Defined() {
		return binary.AppendUvarint(b, 0)
	}
	return appendString(b, c.KeyString())
}

func encodeShare(r shareRecord) []byte {
	var flags byte
	if r.dir {
		flags |= flagDir
	}
	if r.stale {
		flags |= flagStale
	}
	b := []byte{recordVersion, r.state, flags}
	b = appendCID(b, r.root)
	b = appendString(b, r.path)
	b = appendString(b, r.name)
	b = binary.AppendUvarint(b, uint64(r.size))
	b = binary.AppendUvarint(b, uint64(r.files))
	b = binary.AppendVarint(b, r.created)
	b = appendString(b, r.chunking.Algorithm)
	for _, v := range []int{r.chunking.Size, r.chunking.Min, r.chunking.Avg, r.chunking.Max} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	return b
}

func decodeShare(v []byte) (shareRecord, error) {
	var r shareRecord
	d := decoder{b: v, what: "share"}
	d.version()
	r.state = d.byte()
	flags := d.byte()
	r.root = d.cid()
	r.path = d.str()
	r.name = d.str()
	r.size = d.int64()
	r.files = d.int64()
	r.created = d.varint()
	r.chunking.Algorithm = d.str()
	r.chunking.Size = d.int()
	r.chunking.Min = d.int()
	r.chunking.Avg = d.int()
	r.chunking.Max = d.int()
	if err := d.finish(); err != nil {
		return shareRecord{}, err
	}
	if flags&^(flagDir|flagStale) != 0 {
		return shareRecord{}, d.errorf("unknown flags %#x", flags)
	}
	r.dir, r.stale = flags&flagDir != 0, flags&flagStale != 0
	switch r.state {
	case statePending:
	case stateCommitted:
		if !r.root.Defined() {
			return shareRecord{}, d.errorf("committed share without a root")
		}
		if err := r.chunking.Validate(); err != nil {
			return shareRecord{}, d.errorf("%v", err)
		}
	default:
		return shareRecord{}, d.errorf("unknown state %d", r.state)
	}
	return r, nil
}

func encodeFile(r fileRecord) []byte {
	b := []byte{recordVersion}
	b = appendString(b, r.path)
	b = binary.AppendUvarint(b, uint64(r.size))
	b = binary.AppendVarint(b, r.mtime)
	return appendCID(b, r.root)
}

func decodeFile(v []byte) (fileRecord, error) {
	var r fileRecord
	d := decoder{b: v, what: "file"}
	d.version()
	r.path = d.str()
	r.size = d.int64()
	r.mtime = d.varint()
	r.root = d.cid()
	if err := d.finish(); err != nil {
		return fileRecord{}, err
	}
	if r.path == "" || !r.root.Defined() {
		return fileRecord{}, d.errorf("file without a path or a root")
	}
	return r, nil
}

// encodeLoc encodes the value of locs[chunk, id, fileNo, offset]: the
// chunk's size.
func encodeLoc(size uint32) []byte {
	return binary.AppendUvarint([]byte{recordVersion}, uint64(size))
}

func decodeLoc(v []byte) (uint32, error) {
	d := decoder{b: v, what: "location"}
	d.version()
	size := d.uvarint()
	if err := d.finish(); err != nil {
		return 0, err
	}
	if size > chunker.MaxSize {
		return 0, d.errorf("chunk of %d bytes exceeds %d", size, chunker.MaxSize)
	}
	return uint32(size), nil
}

func encodeSchema(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func decodeSchema(v []byte) (uint64, error) {
	d := decoder{b: v, what: "schema version"}
	n := d.uvarint()
	return n, d.finish()
}

// decoder reads fields off b. The first failure sticks in err, after which
// every read returns a zero value, so a decode function checks once.
type decoder struct {
	b    []byte
	what string
	err  error
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s record: %s", ErrCorrupt, d.what, fmt.Sprintf(format, args...))
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = d.errorf(format, args...)
	}
}

func (d *decoder) version() {
	if v := d.byte(); d.err == nil && v != recordVersion {
		d.fail("version %d, want %d", v, recordVersion)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int64 reads a uvarint that must fit a non-negative int64.
func (d *decoder) int64() int64 {
	v := d.uvarint()
	if v > math.MaxInt64 {
		d.fail("value %d out of range", v)
		return 0
	}
	return int64(v)
}

// int reads a uvarint that must fit a non-negative int32, plenty for chunk
// sizes.
func (d *decoder) int() int {
	v := d.uvarint()
	if v > math.MaxInt32 {
		d.fail("value %d out of range", v)
		return 0
	}
	return int(v)
}

// bytes returns the next length-prefixed field of at most max bytes; it
// aliases the input.
func (d *decoder) bytes(max int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(max) || n > uint64(len(d.b)) {
		d.fail("field of %d bytes (limit %d, %d left)", n, max, len(d.b))
		return nil
	}
	f := d.b[:n]
	d.b = d.b[n:]
	return f
}

func (d *decoder) str() string { return string(d.bytes(maxString)) }

// cid reads a CID that must pass integrity.Check, or an empty field for an
// undefined one.
func (d *decoder) cid() cid.Cid {
	f := d.bytes(maxCID)
	if d.err != nil || len(f) == 0 {
		return cid.Undef
	}
	c, err := cid.Cast(f)
	if err == nil {
		err = integrity.Check(c)
	}
	if err != nil {
		d.fail("cid: %v", err)
		return cid.Undef
	}
	return c
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}
