package manifest

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
)

// Limits. Every block that peer writes or accepts stays within them, and a
// decoder checks each before it allocates anything sized by the input.
const (
	// MaxBlockSize is the largest encoded manifest block, in bytes.
	MaxBlockSize = 1 << 20
	// FanOut is the largest number of entries in one block: chunks or pages
	// of a file, children of a directory.
	FanOut = 8192
	// MaxDepth is the largest depth of a file's page tree. A file of depth d
	// holds at most FanOut^(d+1) chunks; the 1 PiB size cap needs depth 2 at
	// most, even with the smallest chunks.
	MaxDepth = 4
	// MaxNameLen is the longest name, in bytes, of a file or directory.
	MaxNameLen = 255
	// MaxFileSize caps the size a file manifest may claim (1 PiB), and the
	// total a directory manifest may claim.
	MaxFileSize = 1 << 50
	// MaxPathDepth caps how many directories deep Resolve and Walk go.
	MaxPathDepth = 64
	// Version is the format version that every block carries under "v".
	Version = 1
)

var (
	// ErrInvalid is wrapped by every error that refuses a block or a node:
	// bad CID, hash mismatch, malformed or non-canonical CBOR, a schema
	// violation, sizes that do not add up. Decode errors wrap it always,
	// and may wrap one of the errors below and *integrity.MismatchError too.
	ErrInvalid = errors.New("manifest: invalid")
	// ErrTooLarge is wrapped when a limit is exceeded: block size, fan-out,
	// depth, file size.
	ErrTooLarge = errors.New("manifest: too large")
	// ErrName is wrapped when a name is not a valid single path element.
	ErrName = errors.New("manifest: invalid name")
	// ErrNotFound is returned when a path element, chunk index or byte
	// offset names nothing.
	ErrNotFound = errors.New("manifest: not found")
	// ErrNotDir is returned when a path goes through something that is not
	// a directory.
	ErrNotDir = errors.New("manifest: not a directory")
	// ErrFinished is returned by a FileBuilder used after Finish.
	ErrFinished = errors.New("manifest: builder finished")
)

// tagged is an error that matches kind under errors.Is without repeating
// kind's text in its message.
type tagged struct {
	kind error
	msg  string
}

func (e *tagged) Error() string { return e.msg }
func (e *tagged) Unwrap() error { return e.kind }

func tooLargef(format string, args ...any) error {
	return &tagged{ErrTooLarge, fmt.Sprintf(format, args...)}
}

// invalidf returns an error wrapping ErrInvalid, for validation of nodes
// given to an encoder.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Block is an encoded manifest block and its CID (CIDv1, DAG-CBOR,
// sha2-256).
type Block struct {
	CID  cid.Cid
	Data []byte
}

// ChunkRef names one chunk of a file: its CID (CIDv1, raw, sha2-256) and
// its length in bytes.
type ChunkRef struct {
	CID  cid.Cid
	Size uint32
}

// Entry is one item of a file's or a page's entry list. At depth 0 it is a
// chunk: CID is the chunk's raw CID, Size its length, Count 1. At depth d > 0
// it is a page of depth d-1: CID is the page's DAG-CBOR CID, Size the bytes
// and Count the chunks that the page covers.
type Entry struct {
	CID   cid.Cid
	Size  uint64
	Count uint64
}

// Node is a decoded manifest block: *File, *Page or *Dir.
type Node interface{ isNode() }

// File is a file manifest, the root of a file's chunk tree.
type File struct {
	// Name is the file's name, a single path element (see ValidName).
	Name string
	// Size is the file's length in bytes, at most MaxFileSize.
	Size uint64
	// Chunking says how the file was cut into chunks.
	Chunking chunker.Params
	// Count is the number of chunks.
	Count uint64
	// Depth is the depth of the page tree: 0 when Entries are the chunks.
	Depth int
	// Entries are the chunks (Depth 0) or pages of depth Depth-1.
	Entries []Entry
}

// Page is an inner block of a file's chunk tree.
type Page struct {
	// Depth is 0 when Entries are chunks, d when they are pages of depth
	// d-1.
	Depth int
	// Entries are chunks or pages, as in File.
	Entries []Entry
}

// Dir is a directory manifest.
type Dir struct {
	// Name is the directory's name, a single path element.
	Name string
	// Size is the total size of the files below, the sum of Entries' sizes.
	Size uint64
	// Entries are the children, sorted bytewise by name, names unique.
	Entries []DirEntry
}

// DirEntry is a child of a directory.
type DirEntry struct {
	// Name is the child's name, a single path element; it equals the Name
	// in the child's own manifest.
	Name string
	// CID is the child's file or directory manifest.
	CID cid.Cid
	// Size is the child's size: the file's length or the directory's total.
	Size uint64
	// Dir says whether the child is a directory.
	Dir bool
}

func (*File) isNode() {}
func (*Page) isNode() {}
func (*Dir) isNode()  {}

// Totals returns the bytes and chunks that the page's entries cover. For a
// page that Decode or Encode accepted the sums cannot overflow.
func (p *Page) Totals() (size, count uint64) {
	for _, e := range p.Entries {
		size += e.Size
		count += e.Count
	}
	return size, count
}
