package carfile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	mh "github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"

	"github.com/peer-project/peer/unixfs"
)

// Errors. Every error of a CAR that Import refuses wraps one of these, or
// one of unixfs's (ErrTooLarge, ErrMismatch, ErrUnsupported, ErrBadNode)
// for a block that is not what it claims to be.
var (
	ErrHeader     = errors.New("carfile: bad CAR header")
	ErrSection    = errors.New("carfile: bad CAR section")
	ErrTruncated  = errors.New("carfile: CAR cut short")
	ErrDuplicate  = errors.New("carfile: block repeated in the CAR")
	ErrIncomplete = errors.New("carfile: the CAR does not hold the whole DAG of a root")
	ErrLimit      = errors.New("carfile: the CAR is larger than the import's limits")
)

// maxHeader is the largest CAR header read: enough for thousands of roots.
const maxHeader = 64 << 10

// maxDepth bounds how deep Export goes below the root.
var maxDepth = unixfs.DefaultLimits().Depth

// Stats say what a CAR held.
type Stats struct {
	// Blocks is the number of blocks, Bytes the sum of their sizes.
	Blocks int64
	Bytes  int64
}

// key names a block in the sets of Export and Import: CID version, codec
// and sha2-256 digest (the only CIDs unixfs.CheckCID lets through).
type key [34]byte

func keyOf(c cid.Cid) key {
	var k key
	k[0] = byte(c.Version())
	if c.Prefix().Codec == cid.DagProtobuf {
		k[1] = 1
	}
	h := c.Hash()
	copy(k[2:], h[len(h)-32:])
	return k
}

// Export writes a CARv1 with root as its only root and every block
// reachable from it, each once, in depth-first order: a node, then the
// DAG under each of its links in turn, as `ipfs dag export` orders them.
// Every block is read through g and checked with unixfs.Decode (its CID,
// size and structure) before it is written, so a corrupt store is never
// exported. It holds one block, the links along the path from the root,
// and the set of blocks written (about 100 bytes each: 100 MB for a 1 TiB
// file of 1 MiB leaves). It blocks until the CAR is written; w is written
// through a buffer and never seeked; a block of g that no longer matches
// its CID (a shared file edited meanwhile) fails the export, and w then
// holds a CAR cut short. Calls share no state: they may run concurrently.
func Export(ctx context.Context, g unixfs.Getter, root cid.Cid, w io.Writer) (Stats, error) {
	var st Stats
	if err := unixfs.CheckCID(root); err != nil {
		return st, fmt.Errorf("carfile: export %s: %w", root, err)
	}
	// The header comes from go-car; written to a buffer first so that a
	// w that is an io.WriterAt is not written at offset 0.
	var hdr bytes.Buffer
	if _, err := storage.NewWritable(&hdr, []cid.Cid{root}, car.WriteAsCarV1(true)); err != nil {
		return st, fmt.Errorf("carfile: export %s: header: %w", root, err)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.Write(hdr.Bytes()); err != nil {
		return st, fmt.Errorf("carfile: export %s: %w", root, err)
	}
	seen := map[key]struct{}{}
	type frame struct {
		links []unixfs.NamedLink
		next  int
	}
	var stack []frame
	visit := func(c cid.Cid) error {
		k := keyOf(c)
		if _, ok := seen[k]; ok {
			return nil // its whole DAG followed it the first time
		}
		data, err := g.GetBlock(ctx, c)
		if err != nil {
			return fmt.Errorf("get %s: %w", c, err)
		}
		n, err := unixfs.Decode(c, data)
		if err != nil {
			return err
		}
		if err := writeSection(bw, c, data); err != nil {
			return err
		}
		seen[k] = struct{}{}
		st.Blocks++
		st.Bytes += int64(len(data))
		if len(n.Links) > 0 {
			if len(stack) >= maxDepth {
				return fmt.Errorf("%w: %s is deeper than %d below the root", unixfs.ErrLimit, c, maxDepth)
			}
			stack = append(stack, frame{links: n.Links})
		}
		return nil
	}
	if err := visit(root); err != nil {
		return st, fmt.Errorf("carfile: export %s: %w", root, err)
	}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("carfile: export %s: %w", root, err)
		}
		top := &stack[len(stack)-1]
		if top.next == len(top.links) {
			stack = stack[:len(stack)-1]
			continue
		}
		l := top.links[top.next]
		top.next++
		if err := visit(l.CID); err != nil {
			return st, fmt.Errorf("carfile: export %s: %w", root, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("carfile: export %s: %w", root, err)
	}
	return st, nil
}

// writeSection writes one CARv1 section: a varint of the length, the CID,
// the block.
func writeSection(w io.Writer, c cid.Cid, data []byte) error {
	cb := c.Bytes()
	var pre [varint.MaxLenUvarint63]byte
	n := varint.PutUvarint(pre[:], uint64(len(cb)+len(data)))
	for _, b := range [][]byte{pre[:n], cb, data} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// Limits bound what one Import keeps, whatever the CAR.
type Limits struct {
	// CIDs is the most distinct CIDs an import tracks, counting both the
	// blocks of the CAR and the links they hold (about 100 bytes each: 96
	// measured with 1 Mi of them).
	CIDs int
}

// DefaultLimits fit a CAR of a 2 TiB file of 1 MiB leaves (about 2 Mi
// blocks), at about 200 MB of tracking when full.
func DefaultLimits() Limits { return Limits{CIDs: 1 << 21} }

// Result is what Import read.
type Result struct {
	// Roots are the roots the CAR's header names.
	Roots []cid.Cid
	Stats
	// Incomplete lists the roots whose DAG the CAR does not hold whole,
	// each with one block that is missing under it.
	Incomplete []Missing
}

// Missing names a root and a block under it that the CAR lacks.
type Missing struct {
	Root, Block cid.Cid
}

// IncompleteError is the error of an Import whose CAR lacks blocks under
// one of its roots. It wraps ErrIncomplete.
type IncompleteError struct{ Missing []Missing }

func (e *IncompleteError) Error() string {
	m := e.Missing[0]
	what := fmt.Sprintf("block %s under it", m.Block)
	if m.Block == m.Root {
		what = "the root block itself"
	}
	more := ""
	if len(e.Missing) > 1 {
		more = fmt.Sprintf(" (and %d more roots)", len(e.Missing)-1)
	}
	return fmt.Sprintf("carfile: root %s is incomplete: %s is not in the CAR%s; "+
		"the blocks the CAR holds were imported, fetch the rest or export the CAR again with the whole DAG",
		m.Root, what, more)
}

func (e *IncompleteError) Unwrap() error { return ErrIncomplete }

// Import reads the CAR (v1, or v2 with its v1 payload) from r, checks
// every block and hands it to put, in the CAR's order, each once; put may
// keep the Block's Data. A block is checked before put sees it: a CID
// unixfs reads (raw or dag-pb, sha2-256), at most unixfs.MaxNodeSize
// bytes (refused before they are read), bytes that hash to the CID, and
// for dag-pb a node that unixfs.Decode accepts. A CAR that repeats a block
// is refused. The CAR is never held whole: Import keeps one block and the
// set of CIDs it has seen, within DefaultLimits. When the CAR ends, every
// root whose DAG it does not hold whole is listed in the Result's
// Incomplete, and the error is an *IncompleteError (the blocks it held
// have been put). It blocks until r ends or fails. Calls share no state:
// they may run concurrently (put is called from the caller's goroutine).
func Import(ctx context.Context, r io.Reader, put func(unixfs.Block) error) (Result, error) {
	return ImportLimits(ctx, r, put, DefaultLimits())
}

// ImportLimits is Import within lim.
func ImportLimits(ctx context.Context, r io.Reader, put func(unixfs.Block) error, lim Limits) (Result, error) {
	var res Result
	cr := &countingReader{r: bufio.NewReaderSize(r, 256<<10)}
	br, err := car.NewBlockReader(cr,
		car.MaxAllowedHeaderSize(maxHeader),
		car.MaxAllowedSectionSize(unixfs.MaxNodeSize+128),
		car.WithTrustedCAR(true)) // checked here, with errors that say which block
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return res, fmt.Errorf("%w: %w after %d bytes; is this a whole CAR file?", ErrHeader, ErrTruncated, cr.n)
		}
		return res, fmt.Errorf("%w: %v; is this a CAR file?", ErrHeader, err)
	}
	if len(br.Roots) == 0 {
		return res, fmt.Errorf("%w: no roots; import takes a CAR made by `peer export` or `ipfs dag export`", ErrHeader)
	}
	for _, root := range br.Roots {
		if err := unixfs.CheckCID(root); err != nil {
			return res, fmt.Errorf("%w: root %s: %w", ErrHeader, root, err)
		}
	}
	res.Roots = br.Roots
	g := newGraph(lim.CIDs)
	for _, root := range res.Roots {
		if _, err := g.id(root); err != nil {
			return res, err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("carfile: import: %w", err)
		}
		at := cr.n
		c, sr, size, err := br.NextReader()
		if errors.Is(err, io.EOF) && cr.n == at {
			break // a clean end, between sections
		}
		nth := res.Blocks + 1
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return res, fmt.Errorf("%w: section %d, at byte %d, is cut short", ErrTruncated, nth, at)
		case err != nil:
			return res, fmt.Errorf("%w: section %d, at byte %d: %v", ErrSection, nth, at, err)
		}
		if err := unixfs.CheckCID(c); err != nil {
			return res, fmt.Errorf("carfile: section %d: %w", nth, err)
		}
		if size > unixfs.MaxNodeSize {
			return res, fmt.Errorf("carfile: section %d: %w: %s has %d bytes, the limit is %d",
				nth, unixfs.ErrTooLarge, c, size, unixfs.MaxNodeSize)
		}
		data := make([]byte, size)
		if got, err := io.ReadFull(sr, data); err != nil {
			return res, fmt.Errorf("%w: block %s (section %d) ends after %d of its %d bytes", ErrTruncated, c, nth, got, size)
		}
		n, err := unixfs.Decode(c, data)
		if err != nil {
			return res, fmt.Errorf("carfile: section %d: %w", nth, err)
		}
		if err := g.add(c, n); err != nil {
			return res, fmt.Errorf("carfile: section %d: %w", nth, err)
		}
		if err := put(unixfs.Block{CID: c, Data: data}); err != nil {
			return res, fmt.Errorf("carfile: put %s: %w", c, err)
		}
		res.Blocks++
		res.Bytes += int64(size)
	}
	for _, root := range res.Roots {
		if miss, ok := g.missing(root); ok {
			res.Incomplete = append(res.Incomplete, Missing{Root: root, Block: miss})
		}
	}
	if len(res.Incomplete) > 0 {
		return res, &IncompleteError{Missing: res.Incomplete}
	}
	return res, nil
}

// countingReader counts the bytes read through it, so that an end of the
// stream can be told apart from a section cut short.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// graph is what Import keeps to tell which roots are complete: an id per
// CID seen (as a block or as a link), which ids were blocks, and the links
// of every dag-pb block.
type graph struct {
	max   int
	ids   map[key]uint32
	n     uint32   // ids given
	have  []uint64 // bitset over ids
	links map[uint32][]uint32
}

func newGraph(max int) *graph {
	return &graph{max: max, ids: map[key]uint32{}, links: map[uint32][]uint32{}}
}

func (g *graph) id(c cid.Cid) (uint32, error) {
	k := keyOf(c)
	if id, ok := g.ids[k]; ok {
		return id, nil
	}
	if int(g.n) >= g.max {
		return 0, fmt.Errorf("%w: more than %d distinct blocks and links; import a smaller DAG or raise Limits.CIDs", ErrLimit, g.max)
	}
	id := g.n
	g.n++
	g.ids[k] = id
	if int(id/64) >= len(g.have) {
		g.have = append(g.have, 0)
	}
	return id, nil
}

func (g *graph) has(id uint32) bool { return g.have[id/64]&(1<<(id%64)) != 0 }

// add records the block c, decoded as n.
func (g *graph) add(c cid.Cid, n *unixfs.Node) error {
	id, err := g.id(c)
	if err != nil {
		return err
	}
	if g.has(id) {
		return fmt.Errorf("%w: %s; a CAR holds each block once", ErrDuplicate, c)
	}
	g.have[id/64] |= 1 << (id % 64)
	if len(n.Links) == 0 {
		return nil
	}
	ls := make([]uint32, len(n.Links))
	for i, l := range n.Links {
		if ls[i], err = g.id(l.CID); err != nil {
			return err
		}
	}
	g.links[id] = ls
	return nil
}

// missing returns a block under root that the CAR did not hold, if any.
func (g *graph) missing(root cid.Cid) (cid.Cid, bool) {
	start := g.ids[keyOf(root)]
	visited := make([]uint64, len(g.have))
	stack := []uint32{start}
	visited[start/64] |= 1 << (start % 64)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !g.has(id) {
			return g.cidOf(id), true
		}
		for _, l := range g.links[id] {
			if visited[l/64]&(1<<(l%64)) == 0 {
				visited[l/64] |= 1 << (l % 64)
				stack = append(stack, l)
			}
		}
	}
	return cid.Undef, false
}

// cidOf returns the CID of id (a scan of the set: it names a missing
// block, once per incomplete root).
func (g *graph) cidOf(id uint32) cid.Cid {
	for k, v := range g.ids {
		if v == id {
			return k.cid()
		}
	}
	return cid.Undef
}

// cid returns the CID that k names.
func (k key) cid() cid.Cid {
	h, err := mh.Encode(k[2:], mh.SHA2_256)
	if err != nil {
		return cid.Undef
	}
	if k[0] == 0 {
		return cid.NewCidV0(h)
	}
	codec := uint64(cid.Raw)
	if k[1] == 1 {
		codec = cid.DagProtobuf
	}
	return cid.NewCidV1(codec, h)
}
