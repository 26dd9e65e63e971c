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
	return checkPage(n, e, depth)
}

// loadPage is the package's loadPage on w's budget.
func (w *Walker) loadPage(ctx context.Context, e Entry, depth int) (*Page, error) {
	n, err := w.load(ctx, e.CID)
	if err != nil {
		return nil, err
	}
	return checkPage(n, e, depth)
}

// checkPage checks that n, loaded for entry e, is the page of depth depth
// that e claims.
func checkPage(n Node, e Entry, depth int) (*Page, error) {
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
// error wraps ErrInvalid (a bad tree), ErrTooLarge (past DefaultLimits:
// f claims more chunks, or its pages more blocks or bytes, than one walk
// may visit), ctx's error or g's.
//
// Chunks holds one page per level: memory O(FanOut × depth). It blocks as
// long as g and fn do; it is safe for concurrent use if g is and f is not
// modified. It is NewWalker(g, Limits{}).Chunks.
func Chunks(ctx context.Context, g Getter, f *File, fn func(index int64, offset int64, ref ChunkRef) error) error {
	return NewWalker(g, Limits{}).Chunks(ctx, f, fn)
}

// Chunks is the package's Chunks on w's budget: f's claimed chunk count is
// charged before any page is loaded (so a file that claims more than is
// left is refused having loaded nothing), and each page loaded is charged
// to Blocks and Bytes, every time it is met.
func (w *Walker) Chunks(ctx context.Context, f *File, fn func(index int64, offset int64, ref ChunkRef) error) error {
	if err := checkFile(f); err != nil {
		return err
	}
	if f.Count > uint64(w.lim.Chunks-w.used.Chunks) {
		return w.over("chunks", w.lim.Chunks, fmt.Sprintf("file %s has %d, %d were walked before it", quoteName(f.Name), f.Count, w.used.Chunks))
	}
	w.used.Chunks += int64(f.Count)
	cw := chunkWalker{ctx: ctx, w: w, f: f, fn: fn}
	if err := cw.walk(f.Entries, f.Depth, true); err != nil {
		return err
	}
	if cw.index != f.Count || cw.offset != f.Size {
		return fmt.Errorf("%w: file %s: walked %d bytes in %d chunks, the file claims %d in %d",
			ErrInvalid, quoteName(f.Name), cw.offset, cw.index, f.Size, f.Count)
	}
	return nil
}

type chunkWalker struct {
	ctx           context.Context
	w             *Walker
	f             *File
	fn            func(index int64, offset int64, ref ChunkRef) error
	index, offset uint64
}

// walk visits entries of depth d; last says whether they end the file.
func (cw *chunkWalker) walk(entries []Entry, d int, last bool) error {
	for i, e := range entries {
		isLast := last && i == len(entries)-1
		if err := checkSpan(cw.f.Chunking, e.Count, e.Size, isLast); err != nil {
			return fmt.Errorf("%w: file %s: %s %s: %w", ErrInvalid, quoteName(cw.f.Name), entryKind(d), e.CID, err)
		}
		if d == 0 {
			if err := cw.fn(int64(cw.index), int64(cw.offset), ChunkRef{CID: e.CID, Size: uint32(e.Size)}); err != nil {
				return err
			}
			cw.index++
			cw.offset += e.Size
			continue
		}
		p, err := cw.w.loadPage(cw.ctx, e, d-1)
		if err != nil {
			return err
		}
		if err := cw.walk(p.Entries, d-1, isLast); err != nil {
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
// concurrent use if g is. It is NewWalker(g, Limits{}).Resolve.
func Resolve(ctx context.Context, g Getter, root cid.Cid, path string) (cid.Cid, Node, error) {
	return NewWalker(g, Limits{}).Resolve(ctx, root, path)
}

// Resolve is the package's Resolve on w's budget: each block it loads is
// charged to Blocks and Bytes.
func (w *Walker) Resolve(ctx context.Context, root cid.Cid, path string) (cid.Cid, Node, error) {
	if path != "" {
		// The path is the caller's: checked before anything is loaded.
		if n := strings.Count(path, "/") + 1; n > MaxPathDepth {
			return cid.Undef, nil, fmt.Errorf("%w: path of %d elements, limit %d", ErrTooLarge, n, MaxPathDepth)
		}
		for el := range strings.SplitSeq(path, "/") {
			if err := ValidName(el); err != nil {
				return cid.Undef, nil, fmt.Errorf("resolve %q: %w", path, err)
			}
		}
	}
	n, err := w.loadRoot(ctx, root)
	if err != nil {
		return cid.Undef, nil, err
	}
	if path == "" {
		return root, n, nil
	}
	elems := strings.Split(path, "/")
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
		if n, err = w.load(ctx, e.CID); err != nil {
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

// Limits of one walk. A few blocks can describe an exponential tree:
// honest trees repeat subtrees (two equal folders are one manifest, a
// file of zeros is one page linked many times), so reuse cannot be
// refused, and what a walk costs is bounded by what it visits, counted
// every time it meets a block, not by the blocks that exist.
const (
	// MaxWalkNodes bounds the files and directories one walk visits.
	MaxWalkNodes = 1 << 20
	// MaxWalkChunks bounds the chunks of all files one walk visits: 16 Mi,
	// 16 TiB at 1 MiB a chunk. A node keeps a record of each chunk of a
	// root it fetches or serves, about 60 bytes: 1 GiB at the limit.
	MaxWalkChunks = 1 << 24
	// MaxWalkBlocks bounds the blocks one walk loads: files, directories
	// and pages.
	MaxWalkBlocks = 1 << 21
	// MaxWalkBytes bounds the encoded bytes of the blocks one walk loads.
	// An honest tree at MaxWalkChunks loads about 760 MiB of pages.
	MaxWalkBytes = 1 << 30
	// MaxWalkPathBytes bounds the bytes of the paths one walk hands out
	// (a caller that keeps them keeps that much).
	MaxWalkPathBytes = 256 << 20
)

// Limits bound one walk: what a Walker may visit, load and make. A field
// of zero (or less) means its default, the Max constants above.
type Limits struct {
	Nodes     int64 // files and directories visited, each time met
	Chunks    int64 // chunks of the files visited (Walker.Chunks)
	Blocks    int64 // blocks loaded: files, directories, pages, each time met
	Bytes     int64 // encoded bytes of those blocks
	PathBytes int64 // bytes of the paths handed to Walk's fn
}

// DefaultLimits returns the limits that the package's Walk, Chunks and
// Resolve use, and that every walk of a tree from a peer should.
func DefaultLimits() Limits {
	return Limits{Nodes: MaxWalkNodes, Chunks: MaxWalkChunks, Blocks: MaxWalkBlocks, Bytes: MaxWalkBytes, PathBytes: MaxWalkPathBytes}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	for _, f := range []struct{ v, d *int64 }{
		{&l.Nodes, &d.Nodes}, {&l.Chunks, &d.Chunks}, {&l.Blocks, &d.Blocks}, {&l.Bytes, &d.Bytes}, {&l.PathBytes, &d.PathBytes},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	return l
}

// Walker walks trees of manifests fetched through a Getter on one budget,
// its Limits: Walk, Chunks and Resolve called on the same Walker share it,
// so that a root's walk and the walks of its files' chunks together stay
// within one set of limits. Each limit is checked before what it counts is
// loaded or handed out: past one, the call returns an error wrapping
// ErrTooLarge that says which, and nothing of the excess was allocated.
// The cost of a walk is linear in what it visits.
//
// A Walker is for one goroutine at a time.
type Walker struct {
	g      Getter
	lim    Limits
	used   Limits
	onLoad func(cid.Cid)
}

// NewWalker returns a Walker that loads blocks through g within lim (zero
// fields mean the defaults).
func NewWalker(g Getter, lim Limits) *Walker {
	return &Walker{g: g, lim: lim.withDefaults()}
}

// OnLoad has fn called with the CID of each block the walker loads and
// accepts, each time it is met.
func (w *Walker) OnLoad(fn func(c cid.Cid)) { w.onLoad = fn }

// Used returns what the walker has visited, loaded and made so far, in
// the units of its Limits.
func (w *Walker) Used() Limits { return w.used }

// over returns the error of a walk stopped at limit what.
func (w *Walker) over(what string, limit int64, detail string) error {
	return tooLargef("manifest: walk stopped: more than %d %s (%s); this node walks no more of one root, "+
		"a limit against trees that repeat one block to claim far more than they hold; "+
		"if the root is honest, fetch or inspect a part of it (ROOT/path)", limit, what, detail)
}

// load fetches and decodes block c, charging it to Blocks and Bytes: the
// count before the fetch, the bytes before they are decoded.
func (w *Walker) load(ctx context.Context, c cid.Cid) (Node, error) {
	if w.used.Blocks >= w.lim.Blocks {
		return nil, w.over("blocks loaded", w.lim.Blocks, "files, directories and pages, each time met")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w.used.Blocks++
	data, err := w.g.GetBlock(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("manifest: get %s: %w", c, err)
	}
	if int64(len(data)) > w.lim.Bytes-w.used.Bytes {
		return nil, w.over("bytes of blocks loaded", w.lim.Bytes, fmt.Sprintf("block %s is %d bytes", c, len(data)))
	}
	w.used.Bytes += int64(len(data))
	n, err := Decode(c, data)
	if err == nil && w.onLoad != nil {
		w.onLoad(c)
	}
	return n, err
}

// loadRoot loads the root of a walk, which must be a file or a directory.
func (w *Walker) loadRoot(ctx context.Context, root cid.Cid) (Node, error) {
	n, err := w.load(ctx, root)
	if err != nil {
		return nil, err
	}
	if _, ok := n.(*Page); ok {
		return nil, fmt.Errorf("%w: block %s is a page, not a file or directory", ErrInvalid, root)
	}
	return n, nil
}

// Walk visits root and, if it is a directory, everything below it, depth
// first in name order, calling fn with each node's path relative to root
// ("" for root itself, then "a", "a/b", ...), CID and node (*File or
// *Dir): parents before their children. Children are checked against
// their entries as Resolve checks them; directories nest at most
// MaxPathDepth deep, and a walk stays within DefaultLimits (else
// ErrTooLarge). If fn returns fs.SkipDir for a directory, Walk skips its
// contents; any other error from fn stops the walk and is returned as is.
//
// Walk holds the directories on the current path: memory
// O(MaxBlockSize × depth) at worst. It blocks as long as g and fn do; it is
// safe for concurrent use if g is. It is NewWalker(g, Limits{}).Walk.
func Walk(ctx context.Context, g Getter, root cid.Cid, fn func(path string, c cid.Cid, n Node) error) error {
	return NewWalker(g, Limits{}).Walk(ctx, root, fn)
}

// Walk is the package's Walk on w's budget: each node visited is charged
// to Nodes before fn is called, each block loaded to Blocks and Bytes, and
// each path to PathBytes before it is made. fn may call w.Chunks for the
// files it is given, on the same budget.
func (w *Walker) Walk(ctx context.Context, root cid.Cid, fn func(path string, c cid.Cid, n Node) error) error {
	n, err := w.loadRoot(ctx, root)
	if err != nil {
		return err
	}
	err = w.walkNode(ctx, "", root, n, 0, fn)
	if errors.Is(err, fs.SkipDir) {
		return nil
	}
	return err
}

func (w *Walker) walkNode(ctx context.Context, path string, c cid.Cid, n Node, depth int, fn func(string, cid.Cid, Node) error) error {
	if w.used.Nodes >= w.lim.Nodes {
		return w.over("files and directories", w.lim.Nodes, "each time met")
	}
	w.used.Nodes++
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
		size := int64(len(e.Name))
		if path != "" {
			size += int64(len(path)) + 1
		}
		if size > w.lim.PathBytes-w.used.PathBytes {
			return w.over("bytes of paths", w.lim.PathBytes, fmt.Sprintf("%d directories deep", depth))
		}
		if w.used.Nodes >= w.lim.Nodes { // before the child is loaded
			return w.over("files and directories", w.lim.Nodes, "each time met")
		}
		child, err := w.load(ctx, e.CID)
		if err != nil {
			return err
		}
		w.used.PathBytes += size
		p := e.Name
		if path != "" {
			p = path + "/" + e.Name
		}
		if err := checkChild(e, child); err != nil {
			return fmt.Errorf("walk %q: %w", p, err)
		}
		err = w.walkNode(ctx, p, e.CID, child, depth+1, fn)
		if err != nil && !(errors.Is(err, fs.SkipDir) && e.Dir) {
			return err
		}
	}
	return nil
}
