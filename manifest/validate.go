package manifest

import (
	"fmt"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// The checks here are shared by the encoders (a node that fails them is
// never written) and the decoder (a block that fails them is refused), so
// that whatever peer writes, peer reads, and nothing else. They return plain
// errors (tagged with ErrTooLarge or ErrName where that applies); callers
// wrap them with ErrInvalid.

// capacity returns how many chunks a node of depth d can cover:
// FanOut^(d+1), saturated at MaxFileSize+1 (a file of MaxFileSize bytes has
// at most that many chunks, so nothing beyond matters).
func capacity(d int) uint64 {
	c := uint64(1)
	for range d + 1 {
		c *= FanOut
		if c > MaxFileSize {
			return MaxFileSize + 1
		}
	}
	return c
}

// checkSpan checks that n chunks of params p can hold b bytes. last says
// whether the span ends with the file's last chunk, the only one that may be
// shorter than p.MinChunk (but never empty). For fixed chunking this pins
// every chunk but the last to exactly p.Size. The arithmetic is done by
// division so that no claim can overflow it.
func checkSpan(p chunker.Params, n, b uint64, last bool) error {
	lo, hi := uint64(p.MinChunk()), uint64(p.MaxChunk())
	switch {
	case n == 0:
		return fmt.Errorf("covers no chunks")
	case b > MaxFileSize:
		return tooLargef("covers %d bytes, limit %d", b, uint64(MaxFileSize))
	case n > b:
		return fmt.Errorf("%d chunks cannot hold %d bytes (every chunk holds at least one)", n, b)
	case n < (b+hi-1)/hi:
		return fmt.Errorf("%d chunks of at most %d bytes cannot hold %d bytes", n, hi, b)
	case last && n-1 > (b-1)/lo:
		return fmt.Errorf("%d bytes are too few for %d chunks: all but the last hold at least %d", b, n, lo)
	case !last && n > b/lo:
		return fmt.Errorf("%d bytes are too few for %d chunks of at least %d bytes", b, n, lo)
	}
	return nil
}

// checkLooseSpan is checkSpan for a page, which does not know the chunking
// parameters: every chunk holds from 1 to chunker.MaxSize bytes.
func checkLooseSpan(n, b uint64) error {
	switch {
	case n == 0:
		return fmt.Errorf("covers no chunks")
	case b > MaxFileSize:
		return tooLargef("covers %d bytes, limit %d", b, uint64(MaxFileSize))
	case n > b:
		return fmt.Errorf("%d chunks cannot hold %d bytes (every chunk holds at least one)", n, b)
	case n < (b+chunker.MaxSize-1)/chunker.MaxSize:
		return fmt.Errorf("%d chunks of at most %d bytes cannot hold %d bytes", n, chunker.MaxSize, b)
	}
	return nil
}

// checkEntries checks the entries of a node of depth d. With params (a file
// root) every entry is checked against them and the last entry may end the
// file; without (a page, params == nil) only the loose bounds apply. It
// returns the bytes and chunks that the entries cover.
func checkEntries(d int, es []Entry, p *chunker.Params) (size, count uint64, err error) {
	if len(es) > FanOut {
		return 0, 0, tooLargef("%d entries, limit %d", len(es), FanOut)
	}
	for i, e := range es {
		if err := checkEntry(d, e, p, i == len(es)-1); err != nil {
			return 0, 0, fmt.Errorf("entries[%d]: %w", i, err)
		}
		// Each entry covers at most MaxFileSize bytes and chunks, and there
		// are at most FanOut of them: the sums cannot overflow.
		size += e.Size
		count += e.Count
	}
	return size, count, nil
}

func checkEntry(d int, e Entry, p *chunker.Params, last bool) error {
	codec, kind := integrity.Raw, "chunk"
	if d > 0 {
		codec, kind = integrity.DagCBOR, "page"
	}
	if err := integrity.CheckCodec(e.CID, codec); err != nil {
		return fmt.Errorf("%s link: %v", kind, err)
	}
	if d == 0 && e.Count != 1 {
		return fmt.Errorf("chunk entry counts %d chunks, want 1", e.Count)
	}
	if e.Count > capacity(d-1) {
		return fmt.Errorf("page of depth %d cannot hold %d chunks", d-1, e.Count)
	}
	var err error
	if p != nil {
		err = checkSpan(*p, e.Count, e.Size, last)
	} else {
		err = checkLooseSpan(e.Count, e.Size)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	return nil
}

func validateFile(f *File) error {
	if err := nameError(f.Name); err != nil {
		return err
	}
	if err := f.Chunking.Validate(); err != nil {
		return err // says "chunker: invalid parameters: ..."
	}
	switch {
	case f.Size > MaxFileSize:
		return tooLargef("size %d exceeds the limit of %d bytes", f.Size, uint64(MaxFileSize))
	case f.Depth < 0:
		return fmt.Errorf("negative depth %d", f.Depth)
	case f.Depth > MaxDepth:
		return tooLargef("depth %d exceeds the limit of %d", f.Depth, MaxDepth)
	case len(f.Entries) > FanOut:
		return tooLargef("%d entries, limit %d", len(f.Entries), FanOut)
	}
	if f.Size == 0 {
		if f.Count != 0 || f.Depth != 0 || len(f.Entries) != 0 {
			return fmt.Errorf("empty file with count %d, depth %d, %d entries (want 0, 0, none)",
				f.Count, f.Depth, len(f.Entries))
		}
		return nil
	}
	if err := checkSpan(f.Chunking, f.Count, f.Size, true); err != nil {
		return fmt.Errorf("size and count: %w", err)
	}
	if f.Count > capacity(f.Depth) {
		return fmt.Errorf("count %d exceeds what depth %d holds (%d)", f.Count, f.Depth, capacity(f.Depth))
	}
	if len(f.Entries) == 0 {
		return fmt.Errorf("file of %d bytes has no entries", f.Size)
	}
	size, count, err := checkEntries(f.Depth, f.Entries, &f.Chunking)
	if err != nil {
		return err
	}
	if size != f.Size || count != f.Count {
		return fmt.Errorf("entries cover %d bytes in %d chunks, the file claims %d bytes in %d chunks",
			size, count, f.Size, f.Count)
	}
	return nil
}

func validatePage(p *Page) error {
	switch {
	case p.Depth < 0:
		return fmt.Errorf("negative depth %d", p.Depth)
	case p.Depth >= MaxDepth:
		return tooLargef("page depth %d, limit %d", p.Depth, MaxDepth-1)
	case len(p.Entries) == 0:
		return fmt.Errorf("page has no entries")
	}
	size, _, err := checkEntries(p.Depth, p.Entries, nil)
	if err != nil {
		return err
	}
	if size > MaxFileSize {
		return tooLargef("page covers %d bytes, limit %d", size, uint64(MaxFileSize))
	}
	return nil
}

func validateDir(d *Dir) error {
	if err := nameError(d.Name); err != nil {
		return err
	}
	if len(d.Entries) > FanOut {
		return tooLargef("directory of %d entries, limit %d (sharding is not implemented)", len(d.Entries), FanOut)
	}
	var total uint64
	for i, e := range d.Entries {
		if err := nameError(e.Name); err != nil {
			return fmt.Errorf("entries[%d]: %w", i, err)
		}
		if i > 0 && e.Name <= d.Entries[i-1].Name {
			if e.Name == d.Entries[i-1].Name {
				return fmt.Errorf("entries[%d]: duplicate name %s", i, quoteName(e.Name))
			}
			return fmt.Errorf("entries[%d]: name %s sorts before %s (entries must be in bytewise order)",
				i, quoteName(e.Name), quoteName(d.Entries[i-1].Name))
		}
		if err := integrity.CheckCodec(e.CID, integrity.DagCBOR); err != nil {
			return fmt.Errorf("entries[%d] %s: link: %v", i, quoteName(e.Name), err)
		}
		if e.Size > MaxFileSize {
			return tooLargef("entries[%d] %s: size %d exceeds the limit of %d bytes",
				i, quoteName(e.Name), e.Size, uint64(MaxFileSize))
		}
		total += e.Size // at most FanOut terms of at most MaxFileSize: no overflow
	}
	if total > MaxFileSize {
		return tooLargef("directory holds %d bytes, limit %d", total, uint64(MaxFileSize))
	}
	if total != d.Size {
		return fmt.Errorf("entries hold %d bytes, the directory claims %d", total, d.Size)
	}
	return nil
}
