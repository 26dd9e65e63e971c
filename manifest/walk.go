package manifest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
)

// Getter fetches the bytes of a block. It need not verify them: Load does.
// Implementations say whether they block (a network fetch does) and must
// honour ctx.
type Getter interface {
	GetBlock(ctx context.Context, c cid.Cid) ([]byte, error)
}

// GetterFunc adapts a function to Getter.
type GetterFunc func(ctx context.Context, c cid.Cid) ([]byte, error)

// GetBlock calls f.
func (f GetterFunc) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) { return f(ctx, c) }

// Load fetches block c through g and decodes it with Decode, which verifies
// it. A fetch error is returned wrapped; a bad block with Decode's errors
// (so a *integrity.MismatchError names bytes that are not c's). Load blocks
// as long as g does; it is safe for concurrent use if g is.
func Load(ctx context.Context, g Getter, c cid.Cid) (Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := g.GetBlock(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("manifest: get %s: %w", c, err)
	}
	return Decode(c, data)
}

// loadPage loads the page that entry e of a node of depth depth+1 links
// to, and checks it against what e claims: its depth (so the tree cannot
// loop or stall, depth strictly decreases), its bytes and its chunks.
func loadPage(ctx context.Context, g Getter, e Entry, depth int) (*Page, error) {
	n, err := Load(ctx, g, e.CID)
	if err != nil {
		return nil, err
	}
	p, ok := n.(*Page)
	if !ok {
		return nil, fmt.Errorf("%w: block %s is a %s where a page belongs", ErrInvalid, e.CID, kindOf(n))
	}
	if p.Depth != depth {
		return nil, fmt.Errorf("%w: page %s has depth %d, its parent wants depth %d", ErrInvalid, e.CID, p.Depth, depth)
	}
	if size, count := p.Totals(); size != e.Size || count != e.Count {
		return nil, fmt.Errorf("%w: page %s covers %d bytes in %d chunks, its parent claims %d bytes in %d chunks",
			ErrInvalid, e.CID, size, count, e.Size, e.Count)
	}
	return p, nil
}

func kindOf(n Node) string {
	switch n.(type) {
	case *File:
		return typeFile
	case *Page:
		return typePage
	case *Dir:
		return "directory"
	}
	return fmt.Sprintf("%T", n)
}

// checkFile re-validates a file given by a caller (cheap: its root only).
func checkFile(f *File) error {
	if f == nil {
		return invalidf("nil *File")
	}
	if err := validateFile(f); err != nil {
		return fmt.Errorf("%w: file %s: %w", ErrInvalid, quoteName(f.Name), err)
	}
	return nil
}

// Chunks walks the chunks of file f in order, fetching its pages through
// g, and calls fn with each chunk's index, byte offset and ref. It checks
// the whole tree as it goes: each page is a page, one level below its
// parent, covering exactly the bytes and chunks its parent claims, and
// every chunk fits the file's chunking parameters; so the totals match the
// file's. An error from fn stops the walk and is returned as is; any other
// error wraps ErrInvalid (a bad tree), ctx's error or g's.
//
// Chunks holds one page per level: memory O(FanOut × depth). It blocks as
// long as g and fn do; it is safe for concurrent use if g is and f is not
// modified.
func Chunks(ctx context.Context, g Getter, f *File, fn func(index int64, offset int64, ref ChunkRef) error) error {
	if err := checkFile(f); err != nil {
		return err
	}
	w := chunkWalker{ctx: ctx, g: g, f: f, fn: fn}
	if err := w.walk(f.Entries, f.Depth, true); err != nil {
		return err
	}
	if w.index != f.Count || w.offset != f.Size {
		return fmt.Errorf("%w: file %s: walked %d bytes in %d chunks, the file claims %d in %d",
			ErrInvalid, quoteName(f.Name), w.offset, w.index, f.Size, f.Count)
	}
	return nil
}

type chunkWalker struct {
	ctx           context.Context
	g             Getter
	f             *File
	fn            func(index int64, offset int64, ref ChunkRef) error
	index, offset uint64
}

// walk visits entries of depth d; last says whether they end the file.
func (w *chunkWalker) walk(entries []Entry, d int, last bool) error {
	for i, e := range entries {
		isLast := last && i == len(entries)-1
		if err := checkSpan(w.f.Chunking, e.Count, e.Size, isLast); err != nil {
			return fmt.Errorf("%w: file %s: %s %s: %w", ErrInvalid, quoteName(w.f.Name), entryKind(d), e.CID, err)
		}
		if d == 0 {
			if err := w.fn(int64(w.index), int64(w.offset), ChunkRef{CID: e.CID, Size: uint32(e.Size)}); err != nil {
				return err
			}
			w.index++
			w.offset += e.Size
			continue
		}
		p, err := loadPage(w.ctx, w.g, e, d-1)
		if err != nil {
			return err
		}
		if err := w.walk(p.Entries, d-1, isLast); err != nil {
			return err
		}
	}
	return nil
}

func entryKind(d int) string {
	if d == 0 {
		return "chunk"
	}
	return "page"
}

// ChunkAt returns the ref and byte offset of chunk index of file f,
// fetching through g only the pages on the way to it: O(depth) blocks,
// each checked as Chunks checks it. An index outside the file gives
// ErrNotFound. ChunkAt blocks as long as g does; it is safe for concurrent
// use if g is.
func ChunkAt(ctx context.Context, g Getter, f *File, index int64) (ChunkRef, int64, error) {
	if err := checkFile(f); err != nil {
		return ChunkRef{}, 0, err
	}
	if index < 0 || uint64(index) >= f.Count {
		return ChunkRef{}, 0, fmt.Errorf("%w: chunk %d of file %s, which has %d", ErrNotFound, index, quoteName(f.Name), f.Count)
	}
	_, off, ref, err := descend(ctx, g, f, uint64(index), false)
	return ref, int64(off), err
}

// Locate returns the chunk of file f that holds byte offset: its index,
// its ref and the offset at which it starts, fetching through g only the
// pages on the way to it, as ChunkAt does. An offset outside the file
// gives ErrNotFound. Locate blocks as long as g does; it is safe for
// concurrent use if g is.
func Locate(ctx context.Context, g Getter, f *File, offset int64) (index int64, ref ChunkRef, start int64, err error) {
	if err := checkFile(f); err != nil {
		return 0, ChunkRef{}, 0, err
	}
	if offset < 0 || uint64(offset) >= f.Size {
		return 0, ChunkRef{}, 0, fmt.Errorf("%w: byte %d of file %s, which has %d", ErrNotFound, offset, quoteName(f.Name), f.Size)
	}
	i, off, ref, err := descend(ctx, g, f, uint64(offset), true)
	return int64(i), ref, int64(off), err
}

// descend goes down the tree of f to the chunk holding target, a chunk
// index or (byOffset) a byte offset already checked to lie in the file.
func descend(ctx context.Context, g Getter, f *File, target uint64, byOffset bool) (index, offset uint64, ref ChunkRef, err error) {
	entries, d, last := f.Entries, f.Depth, true
	for {
		found := -1
		for i, e := range entries {
			if (byOffset && target < offset+e.Size) || (!byOffset && target < index+e.Count) {
				found = i
				break
			}
			index += e.Count
			offset += e.Size
		}
		if found < 0 { // cannot happen: totals were checked
			return 0, 0, ChunkRef{}, fmt.Errorf("%w: file %s: entries end before the target", ErrInvalid, quoteName(f.Name))
		}
		e := entries[found]
		last = last && found == len(entries)-1
		if err := checkSpan(f.Chunking, e.Count, e.Size, last); err != nil {
			return 0, 0, ChunkRef{}, fmt.Errorf("%w: file %s: %s %s: %w", ErrInvalid, quoteName(f.Name), entryKind(d), e.CID, err)
		}
		if d == 0 {
			return index, offset, ChunkRef{CID: e.CID, Size: uint32(e.Size)}, nil
		}
		p, err := loadPage(ctx, g, e, d-1)
		if err != nil {
			return 0, 0, ChunkRef{}, err
		}
		entries, d = p.Entries, d-1
	}
}

// Resolve follows path, names separated by '/', from the directory
// manifest root down to the node it names, and returns that node's CID and
// the node (a *File or *Dir). An empty path names root itself, which may
// then be a file. Each element must pass ValidName (so "", ".", ".." and
// doubled or trailing slashes are refused with ErrName); a missing name
// gives ErrNotFound, a file in the middle ErrNotDir. Every child is checked
// against its directory entry: same name, same size, a directory exactly
// when the entry says so (else ErrInvalid).
//
// Resolve blocks as long as g does: one fetch per element. It is safe for
// concurrent use if g is.
func Resolve(ctx context.Context, g Getter, root cid.Cid, path string) (cid.Cid, Node, error) {
	n, err := Load(ctx, g, root)
	if err != nil {
		return cid.Undef, nil, err
	}
	if _, ok := n.(*Page); ok {
		return cid.Undef, nil, fmt.Errorf("%w: block %s is a page, not a file or directory", ErrInvalid, root)
	}
	if path == "" {
		return root, n, nil
	}
	elems := strings.Split(path, "/")
	if len(elems) > MaxPathDepth {
		return cid.Undef, nil, fmt.Errorf("%w: path of %d elements, limit %d", ErrTooLarge, len(elems), MaxPathDepth)
	}
	for _, el := range elems {
		if err := ValidName(el); err != nil {
			return cid.Undef, nil, fmt.Errorf("resolve %q: %w", path, err)
		}
	}
	c := root
	for i, el := range elems {
		d, ok := n.(*Dir)
		if !ok {
			return cid.Undef, nil, fmt.Errorf("%w: %q in %q is a %s", ErrNotDir, strings.Join(elems[:i], "/"), path, kindOf(n))
		}
		j, found := slices.BinarySearchFunc(d.Entries, el, func(e DirEntry, name string) int { return strings.Compare(e.Name, name) })
		if !found {
			return cid.Undef, nil, fmt.Errorf("%w: %q in %q", ErrNotFound, strings.Join(elems[:i+1], "/"), path)
		}
		e := d.Entries[j]
		if n, err = Load(ctx, g, e.CID); err != nil {
			return cid.Undef, nil, err
		}
		if err := checkChild(e, n); err != nil {
			return cid.Undef, nil, err
		}
		c = e.CID
	}
	return c, n, nil
}

// checkChild checks that child n is what its directory entry e says.
func checkChild(e DirEntry, n Node) error {
	var name string
	var size uint64
	switch n := n.(type) {
	case *File:
		name, size = n.Name, n.Size
	case *Dir:
		name, size = n.Name, n.Size
	default:
		return fmt.Errorf("%w: entry %s links to a %s", ErrInvalid, quoteName(e.Name), kindOf(n))
	}
	_, isDir := n.(*Dir)
	switch {
	case isDir != e.Dir:
		want := "file"
		if e.Dir {
			want = "directory"
		}
		return fmt.Errorf("%w: entry %s says %s, %s is a %s", ErrInvalid, quoteName(e.Name), want, e.CID, kindOf(n))
	case name != e.Name:
		return fmt.Errorf("%w: entry %s links to a manifest named %s", ErrInvalid, quoteName(e.Name), quoteName(name))
	case size != e.Size:
		return fmt.Errorf("%w: entry %s says %d bytes, its manifest %d", ErrInvalid, quoteName(e.Name), e.Size, size)
	}
	return nil
}

// MaxWalkNodes bounds the files and directories one Walk visits. Honest
// trees may repeat a subtree (two equal folders are one manifest), so a few
// blocks can describe an exponential tree: the bound is on visits, not on
// blocks.
const MaxWalkNodes = 1 << 20

// Walk visits root and, if it is a directory, everything below it, depth
// first in name order, calling fn with each node's path relative to root
// ("" for root itself, then "a", "a/b", ...), CID and node (*File or
// *Dir). Children are checked against their entries as Resolve checks
// them; directories nest at most MaxPathDepth deep and a walk visits at
// most MaxWalkNodes nodes (else ErrTooLarge). If
// fn returns fs.SkipDir for a directory, Walk skips its contents; any other
// error from fn stops the walk and is returned as is.
//
// Walk holds the directories on the current path: memory
// O(MaxBlockSize × depth) at worst. It blocks as long as g and fn do; it is
// safe for concurrent use if g is.
func Walk(ctx context.Context, g Getter, root cid.Cid, fn func(path string, c cid.Cid, n Node) error) error {
	n, err := Load(ctx, g, root)
	if err != nil {
		return err
	}
	if _, ok := n.(*Page); ok {
		return fmt.Errorf("%w: block %s is a page, not a file or directory", ErrInvalid, root)
	}
	visits := 0
	err = walkNode(ctx, g, "", root, n, 0, &visits, fn)
	if errors.Is(err, fs.SkipDir) {
		return nil
	}
	return err
}

func walkNode(ctx context.Context, g Getter, path string, c cid.Cid, n Node, depth int, visits *int, fn func(string, cid.Cid, Node) error) error {
	if *visits++; *visits > MaxWalkNodes {
		return fmt.Errorf("%w: more than %d files and directories", ErrTooLarge, MaxWalkNodes)
	}
	if err := fn(path, c, n); err != nil {
		return err
	}
	d, ok := n.(*Dir)
	if !ok {
		return nil
	}
	if depth >= MaxPathDepth && len(d.Entries) > 0 {
		return fmt.Errorf("%w: directory %q nests deeper than %d", ErrTooLarge, path, MaxPathDepth)
	}
	for _, e := range d.Entries {
		child, err := Load(ctx, g, e.CID)
		if err != nil {
			return err
		}
		p := e.Name
		if path != "" {
			p = path + "/" + e.Name
		}
		if err := checkChild(e, child); err != nil {
			return fmt.Errorf("walk %q: %w", p, err)
		}
		err = walkNode(ctx, g, p, e.CID, child, depth+1, visits, fn)
		if err != nil && !(errors.Is(err, fs.SkipDir) && e.Dir) {
			return err
		}
	}
	return nil
}
