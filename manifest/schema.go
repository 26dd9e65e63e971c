package manifest

import (
	"bytes"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// Map keys of each schema, in DAG-CBOR's canonical order: shorter keys
// first, then bytewise. The encoders write them in this order and the
// reader accepts no other (TestKeyTablesCanonical checks the order).
// They are read-only.
var (
	commonKeys   = []string{"t", "v"}
	fileKeys     = []string{"t", "v", "name", "size", "count", "depth", "chunker", "entries"}
	pageKeys     = []string{"t", "v", "depth", "entries"}
	dirKeys      = []string{"t", "v", "name", "size", "entries"}
	dirEntryKeys = []string{"dir", "link", "name", "size"}
	fixedKeys    = []string{"alg", "size"}
	cdcKeys      = []string{"alg", "avg", "max", "min"}
)

// Block types, the values of "t".
const (
	typeFile = "file"
	typePage = "page"
	typeDir  = "dir"
)

// Encode validates n (a *File, *Page or *Dir) and encodes it as a block.
// A node that breaks the schema is refused with an error wrapping
// ErrInvalid; one whose block would exceed MaxBlockSize or another limit
// with an error wrapping ErrTooLarge as well. A Dir's entries must already
// be sorted; EncodeDir sorts them. Encode is pure and safe for concurrent
// use as long as n is not modified meanwhile.
func Encode(n Node) (Block, error) {
	var (
		data []byte
		err  error
	)
	switch n := n.(type) {
	case *File:
		if n == nil {
			return Block{}, invalidf("nil *File")
		}
		if err = validateFile(n); err == nil {
			data = encodeFile(n)
		}
	case *Page:
		if n == nil {
			return Block{}, invalidf("nil *Page")
		}
		if err = validatePage(n); err == nil {
			data = encodePage(n)
		}
	case *Dir:
		if n == nil {
			return Block{}, invalidf("nil *Dir")
		}
		if err = validateDir(n); err == nil {
			data = encodeDir(n)
		}
	default:
		return Block{}, invalidf("cannot encode %T", n)
	}
	if err != nil {
		return Block{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(data) > MaxBlockSize {
		return Block{}, fmt.Errorf("%w: %w", ErrInvalid,
			tooLargef("block of %d bytes, limit %d", len(data), MaxBlockSize))
	}
	return Block{CID: integrity.Block(data), Data: data}, nil
}

// Decode checks that data is the block c names and decodes it into a
// *File, *Page or *Dir. Before it parses anything it checks the size limit,
// that c is a CIDv1 DAG-CBOR sha2-256 CID, and that data hashes to c. It
// then accepts only strict, canonical DAG-CBOR in the exact schema of
// doc.go, with every limit, name, chunking parameter and total checked, so
// one node has exactly one encoding and one CID. A page is checked alone
// here; Chunks, ChunkAt and Locate check it against its parent.
//
// Every error wraps ErrInvalid, and also ErrTooLarge or ErrName where one
// applies and *integrity.MismatchError when data is not c's bytes.
// Decode is pure and safe for concurrent use.
func Decode(c cid.Cid, data []byte) (Node, error) {
	if len(data) > MaxBlockSize {
		return nil, fmt.Errorf("%w: block %s: %w", ErrInvalid, c,
			tooLargef("%d bytes, limit %d", len(data), MaxBlockSize))
	}
	if err := integrity.CheckCodec(c, integrity.DagCBOR); err != nil {
		return nil, fmt.Errorf("%w: block %s: %w", ErrInvalid, c, err)
	}
	if err := integrity.Verify(c, data); err != nil {
		return nil, fmt.Errorf("%w: block %s: %w", ErrInvalid, c, err)
	}
	n, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%w: block %s: %w", ErrInvalid, c, err)
	}
	return n, nil
}

// decode parses and validates data, whatever its CID.
func decode(data []byte) (Node, error) {
	r := &reader{data: data}
	n, err := r.mapHead(len(fileKeys) + 1)
	if err != nil {
		return nil, err
	}
	var typ string
	err = r.fieldsN(min(n, len(commonKeys)), 0, commonKeys, func(k string) error {
		switch k {
		case "t":
			t, err := r.text(8)
			typ = t
			return err
		default: // "v"
			v, err := r.uint()
			if err == nil && v != Version {
				err = fmt.Errorf("format version %d, this build reads version %d", v, Version)
			}
			return err
		}
	})
	if err != nil {
		return nil, err
	}
	var node Node
	switch typ {
	case typeFile:
		f := new(File)
		err = r.fieldsN(n, len(commonKeys), fileKeys, func(k string) error { return readFileField(r, f, k) })
		if err == nil {
			err = validateFile(f)
		}
		node = f
	case typePage:
		p := new(Page)
		err = r.fieldsN(n, len(commonKeys), pageKeys, func(k string) error { return readPageField(r, p, k) })
		if err == nil {
			err = validatePage(p)
		}
		node = p
	case typeDir:
		d := new(Dir)
		err = r.fieldsN(n, len(commonKeys), dirKeys, func(k string) error { return readDirField(r, d, k) })
		if err == nil {
			err = validateDir(d)
		}
		node = d
	default:
		return nil, fmt.Errorf("unknown block type %q (want %q, %q or %q)", typ, typeFile, typePage, typeDir)
	}
	if err != nil {
		return nil, err
	}
	if r.remaining() != 0 {
		return nil, fmt.Errorf("%d bytes after the end of the block", r.remaining())
	}
	// The reader accepts only canonical forms, so this cannot fail; it
	// guards the promise that one node has one encoding should the reader
	// and the encoders ever disagree.
	if !bytes.Equal(encode(node), data) {
		return nil, fmt.Errorf("not in canonical DAG-CBOR form")
	}
	return node, nil
}

// readDepth reads a depth, refusing values beyond MaxDepth before they are
// converted to int.
func readDepth(r *reader) (int, error) {
	d, err := r.uint()
	if err != nil {
		return 0, err
	}
	if d > MaxDepth {
		return 0, tooLargef("depth %d exceeds the limit of %d", d, MaxDepth)
	}
	return int(d), nil
}

// readName reads a name. Its length is bounded only by the block, so that
// an over-long name is reported as a bad name when the node is validated.
func readName(r *reader) (string, error) { return r.text(MaxBlockSize) }

func readFileField(r *reader, f *File, k string) (err error) {
	switch k {
	case "name":
		f.Name, err = readName(r)
	case "size":
		f.Size, err = r.uint()
		if err == nil && f.Size > MaxFileSize {
			err = tooLargef("%d bytes exceeds the limit of %d", f.Size, uint64(MaxFileSize))
		}
	case "count":
		f.Count, err = r.uint()
	case "depth":
		f.Depth, err = readDepth(r)
	case "chunker":
		f.Chunking, err = readChunker(r)
	case "entries":
		f.Entries, err = readEntries(r, f.Depth)
	}
	return err
}

func readPageField(r *reader, p *Page, k string) (err error) {
	switch k {
	case "depth":
		p.Depth, err = readDepth(r)
	case "entries":
		p.Entries, err = readEntries(r, p.Depth)
	}
	return err
}

func readDirField(r *reader, d *Dir, k string) (err error) {
	switch k {
	case "name":
		d.Name, err = readName(r)
	case "size":
		d.Size, err = r.uint()
	case "entries":
		d.Entries, err = readDirEntries(r)
	}
	return err
}

// readParam reads a chunk size of the chunker map; its range is checked by
// chunker.Params.Validate once it is an int.
func readParam(r *reader) (int, error) {
	v, err := r.uint()
	if err != nil {
		return 0, err
	}
	if v > chunker.MaxSize {
		return 0, fmt.Errorf("%d exceeds the largest chunk size %d", v, chunker.MaxSize)
	}
	return int(v), nil
}

func readChunker(r *reader) (chunker.Params, error) {
	var p chunker.Params
	n, err := r.mapHead(len(cdcKeys) + 1)
	if err != nil {
		return p, err
	}
	err = r.fieldsN(min(n, 1), 0, []string{"alg"}, func(string) error {
		p.Algorithm, err = r.text(16)
		return err
	})
	if err != nil {
		return p, err
	}
	var keys []string
	switch p.Algorithm {
	case chunker.Fixed:
		keys = fixedKeys
	case chunker.FastCDC:
		keys = cdcKeys
	default:
		return p, fmt.Errorf("unknown algorithm %q (want %q or %q)", p.Algorithm, chunker.Fixed, chunker.FastCDC)
	}
	err = r.fieldsN(n, 1, keys, func(k string) (err error) {
		switch k {
		case "size":
			p.Size, err = readParam(r)
		case "min":
			p.Min, err = readParam(r)
		case "avg":
			p.Avg, err = readParam(r)
		case "max":
			p.Max, err = readParam(r)
		}
		return err
	})
	return p, err
}

// readEntries reads the entry list of a node of depth d: [link, size] per
// chunk at depth 0, [link, size, count] per page above.
func readEntries(r *reader, d int) ([]Entry, error) {
	n, err := r.arrayHead(FanOut, 1)
	if err != nil {
		return nil, err
	}
	want, codec := 2, integrity.Raw
	if d > 0 {
		want, codec = 3, integrity.DagCBOR
	}
	es := make([]Entry, n)
	for i := range es {
		e := &es[i]
		err := func() error {
			at := r.pos
			m, err := r.arrayHead(3, 1)
			if err != nil {
				return err
			}
			if m != want {
				return r.errorf(at, "entry of %d items, want %d at depth %d", m, want, d)
			}
			if e.CID, err = r.link(codec); err != nil {
				return err
			}
			if e.Size, err = r.uint(); err != nil {
				return err
			}
			e.Count = 1
			if d > 0 {
				e.Count, err = r.uint()
			}
			return err
		}()
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return es, nil
}

func readDirEntries(r *reader) ([]DirEntry, error) {
	n, err := r.arrayHead(FanOut, 1)
	if err != nil {
		return nil, err
	}
	es := make([]DirEntry, n)
	for i := range es {
		e := &es[i]
		err := r.fields(dirEntryKeys, func(k string) (err error) {
			switch k {
			case "dir":
				e.Dir, err = r.boolean()
			case "link":
				e.CID, err = r.link(integrity.DagCBOR)
			case "name":
				e.Name, err = readName(r)
			case "size":
				e.Size, err = r.uint()
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return es, nil
}

// encode encodes a node that has passed validation.
func encode(n Node) []byte {
	switch n := n.(type) {
	case *File:
		return encodeFile(n)
	case *Page:
		return encodePage(n)
	case *Dir:
		return encodeDir(n)
	}
	panic(fmt.Sprintf("manifest: encode %T", n)) // broken invariant: callers pass nodes
}

// Sizes used to reserve buffers: an upper bound for an encoded entry.
const (
	linkLen     = 2 + 2 + 1 + 36 // tag, byte-string head, prefix, CID
	maxEntryLen = 1 + linkLen + 9 + 9
)

func encodeFile(f *File) []byte {
	b := make([]byte, 0, 128+len(f.Name)+len(f.Entries)*maxEntryLen)
	b = appendHead(b, majMap, uint64(len(fileKeys)))
	b = appendText(b, "t")
	b = appendText(b, typeFile)
	b = appendText(b, "v")
	b = appendUint(b, Version)
	b = appendText(b, "name")
	b = appendText(b, f.Name)
	b = appendText(b, "size")
	b = appendUint(b, f.Size)
	b = appendText(b, "count")
	b = appendUint(b, f.Count)
	b = appendText(b, "depth")
	b = appendUint(b, uint64(f.Depth))
	b = appendText(b, "chunker")
	b = appendChunker(b, f.Chunking)
	b = appendText(b, "entries")
	return appendEntries(b, f.Depth, f.Entries)
}

func encodePage(p *Page) []byte {
	b := make([]byte, 0, 32+len(p.Entries)*maxEntryLen)
	b = appendHead(b, majMap, uint64(len(pageKeys)))
	b = appendText(b, "t")
	b = appendText(b, typePage)
	b = appendText(b, "v")
	b = appendUint(b, Version)
	b = appendText(b, "depth")
	b = appendUint(b, uint64(p.Depth))
	b = appendText(b, "entries")
	return appendEntries(b, p.Depth, p.Entries)
}

func encodeDir(d *Dir) []byte {
	size := 64 + len(d.Name)
	for _, e := range d.Entries {
		size += 32 + linkLen + len(e.Name)
	}
	b := make([]byte, 0, size)
	b = appendHead(b, majMap, uint64(len(dirKeys)))
	b = appendText(b, "t")
	b = appendText(b, typeDir)
	b = appendText(b, "v")
	b = appendUint(b, Version)
	b = appendText(b, "name")
	b = appendText(b, d.Name)
	b = appendText(b, "size")
	b = appendUint(b, d.Size)
	b = appendText(b, "entries")
	b = appendHead(b, majArray, uint64(len(d.Entries)))
	for _, e := range d.Entries {
		b = appendHead(b, majMap, uint64(len(dirEntryKeys)))
		b = appendText(b, "dir")
		b = appendBool(b, e.Dir)
		b = appendText(b, "link")
		b = appendLink(b, e.CID)
		b = appendText(b, "name")
		b = appendText(b, e.Name)
		b = appendText(b, "size")
		b = appendUint(b, e.Size)
	}
	return b
}

func appendChunker(b []byte, p chunker.Params) []byte {
	if p.Algorithm == chunker.Fixed {
		b = appendHead(b, majMap, uint64(len(fixedKeys)))
		b = appendText(b, "alg")
		b = appendText(b, p.Algorithm)
		b = appendText(b, "size")
		return appendUint(b, uint64(p.Size))
	}
	b = appendHead(b, majMap, uint64(len(cdcKeys)))
	b = appendText(b, "alg")
	b = appendText(b, p.Algorithm)
	b = appendText(b, "avg")
	b = appendUint(b, uint64(p.Avg))
	b = appendText(b, "max")
	b = appendUint(b, uint64(p.Max))
	b = appendText(b, "min")
	return appendUint(b, uint64(p.Min))
}

func appendEntries(b []byte, d int, es []Entry) []byte {
	b = appendHead(b, majArray, uint64(len(es)))
	for _, e := range es {
		if d == 0 {
			b = appendHead(b, majArray, 2)
			b = appendLink(b, e.CID)
			b = appendUint(b, e.Size)
		} else {
			b = appendHead(b, majArray, 3)
			b = appendLink(b, e.CID)
			b = appendUint(b, e.Size)
			b = appendUint(b, e.Count)
		}
	}
	return b
}
