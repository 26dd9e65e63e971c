package manifest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// FileBuilder builds a file manifest from the file's chunks, added in
// order. It emits each page as soon as it is full, so its memory stays
// O(FanOut × depth) whatever the size of the file; Finish emits the rest
// and the root.
//
// The tree it builds is canonical: chunks fill pages of FanOut entries from
// the left, a level exists only when the one below holds more than FanOut
// entries, so the same chunks and parameters always give the same root CID.
//
// A FileBuilder is not safe for concurrent use. Its methods block only as
// long as emit does.
type FileBuilder struct {
	name   string
	params chunker.Params
	emit   func(Block) error
	fanout int
	limit  uint64 // most chunks a tree of MaxDepth holds with fanout

	levels [][]Entry // levels[d]: entries of depth d not yet in a page
	size   uint64
	count  uint64
	short  uint32 // length of the last chunk if shorter than params.MinChunk
	err    error  // the first error; the builder is unusable after it
	done   bool
}

// NewFileBuilder returns a builder for a file called name (see ValidName)
// cut with params p. emit receives each page as it is completed, children
// before their parents, then the root; an error from emit stops the build
// and is returned, wrapped, by Add or Finish. emit is called from the
// goroutine that calls Add or Finish and may keep the Block.
func NewFileBuilder(name string, p chunker.Params, emit func(Block) error) (*FileBuilder, error) {
	return newFileBuilder(name, p, emit, FanOut)
}

// newFileBuilder is NewFileBuilder with a smaller fan-out, so that tests
// can build deep trees from few chunks. Every tree it builds is also valid
// with FanOut.
func newFileBuilder(name string, p chunker.Params, emit func(Block) error, fanout int) (*FileBuilder, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if emit == nil {
		return nil, invalidf("nil emit function")
	}
	if fanout < 2 || fanout > FanOut {
		panic(fmt.Sprintf("manifest: fan-out %d outside 2..%d", fanout, FanOut)) // broken invariant
	}
	limit := uint64(1)
	for range MaxDepth + 1 {
		limit = min(limit*uint64(fanout), MaxFileSize+1) // no overflow: fanout ≤ 2^13
	}
	return &FileBuilder{name: name, params: p, emit: emit, fanout: fanout, limit: limit}, nil
}

// Add appends the next chunk of the file. It checks the chunk against the
// parameters: a raw CID, 1 to MaxChunk bytes, and every chunk but the last
// at least MinChunk bytes (exactly Size for fixed chunking), so a short
// chunk followed by another is refused. It refuses a file beyond
// MaxFileSize with ErrTooLarge. After an error the builder is unusable.
func (b *FileBuilder) Add(ref ChunkRef) error {
	if b.done {
		return ErrFinished
	}
	if b.err != nil {
		return b.err
	}
	b.err = b.add(ref)
	return b.err
}

func (b *FileBuilder) add(ref ChunkRef) error {
	if err := integrity.CheckCodec(ref.CID, integrity.Raw); err != nil {
		return fmt.Errorf("%w: chunk %d: %w", ErrInvalid, b.count, err)
	}
	switch hi, lo := b.params.MaxChunk(), b.params.MinChunk(); {
	case ref.Size == 0:
		return invalidf("chunk %d (%s) is empty", b.count, ref.CID)
	case int64(ref.Size) > int64(hi):
		return invalidf("chunk %d (%s) is %d bytes, %s allows at most %d", b.count, ref.CID, ref.Size, b.params, hi)
	case b.short != 0:
		return invalidf("chunk %d follows a chunk of %d bytes: only the last chunk may be shorter than %d (%s)",
			b.count, b.short, lo, b.params)
	case int64(ref.Size) < int64(lo):
		b.short = ref.Size
	}
	if b.size+uint64(ref.Size) > MaxFileSize {
		return fmt.Errorf("%w: file of more than %d bytes", ErrTooLarge, uint64(MaxFileSize))
	}
	if b.count == b.limit {
		return fmt.Errorf("%w: file of more than %d chunks needs a tree deeper than %d", ErrTooLarge, b.limit, MaxDepth)
	}
	b.size += uint64(ref.Size)
	b.count++
	return b.push(0, Entry{CID: ref.CID, Size: uint64(ref.Size), Count: 1})
}

// push appends e to level d, first turning a full level into a page.
func (b *FileBuilder) push(d int, e Entry) error {
	if d > MaxDepth {
		return fmt.Errorf("%w: file needs a tree deeper than %d", ErrTooLarge, MaxDepth)
	}
	if d == len(b.levels) {
		b.levels = append(b.levels, make([]Entry, 0, b.fanout))
	}
	if len(b.levels[d]) == b.fanout {
		if err := b.flush(d); err != nil {
			return err
		}
	}
	b.levels[d] = append(b.levels[d], e)
	return nil
}

// flush emits the entries of level d as a page and pushes its entry to the
// level above.
func (b *FileBuilder) flush(d int) error {
	p := &Page{Depth: d, Entries: b.levels[d]}
	blk, err := Encode(p)
	if err != nil {
		return fmt.Errorf("manifest: page of depth %d: %w", d, err) // broken invariant
	}
	size, count := p.Totals()
	b.levels[d] = b.levels[d][:0]
	if err := b.emit(blk); err != nil {
		return fmt.Errorf("manifest: emit page %s: %w", blk.CID, err)
	}
	return b.push(d+1, Entry{CID: blk.CID, Size: size, Count: count})
}

// Finish completes the tree, emits the remaining pages and the root, and
// returns the root block, whose CID names the file. An empty file (no
// chunks) has a root with no entries. The builder is unusable afterwards.
func (b *FileBuilder) Finish() (Block, error) {
	if b.done {
		return Block{}, ErrFinished
	}
	b.done = true
	if b.err != nil {
		return Block{}, b.err
	}
	// Every level but the top goes into a page; flushing one may make the
	// level above overflow into a new top, which the loop then reaches.
	for d := 0; d < len(b.levels)-1; d++ {
		if len(b.levels[d]) > 0 {
			if err := b.flush(d); err != nil {
				return Block{}, err
			}
		}
	}
	f := &File{Name: b.name, Size: b.size, Chunking: b.params, Count: b.count}
	if len(b.levels) > 0 {
		f.Depth = len(b.levels) - 1
		f.Entries = b.levels[f.Depth]
	}
	blk, err := Encode(f)
	if err != nil {
		return Block{}, err
	}
	if err := b.emit(blk); err != nil {
		return Block{}, fmt.Errorf("manifest: emit root %s: %w", blk.CID, err)
	}
	return blk, nil
}

// EncodeDir validates d and encodes it as a directory manifest. Its entries
// are sorted by name (bytewise) on a copy; a duplicate or invalid name, a
// link that is not a DAG-CBOR CID, or sizes that do not add up to d.Size
// are refused with ErrInvalid. A directory of more than FanOut entries, or
// whose block would exceed MaxBlockSize, is refused with ErrTooLarge as
// well: large directories would need sharding, which this format does not
// have yet. EncodeDir is pure and safe for concurrent use.
func EncodeDir(d Dir) (Block, error) {
	d.Entries = slices.Clone(d.Entries)
	slices.SortFunc(d.Entries, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) })
	return Encode(&d)
}
