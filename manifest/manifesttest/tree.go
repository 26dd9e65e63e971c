// Package manifesttest builds trees of manifests for tests, among them the
// hostile ones that a walk must survive: pages and directories reused to
// claim an exponential tree in a few blocks. It is for tests only.
package manifesttest

import (
	"encoding/binary"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/manifest"
)

// ChunkSize is the fixed chunk size of the files Tree makes.
const ChunkSize = 16 << 10

// chunkCID returns the CID of the bytes of i, a chunk that need not exist.
func chunkCID(i int) cid.Cid {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return integrity.Chunk(b[:])
}

// Tree builds a tree of valid manifests from the bytes of a fuzz input,
// handing each block to put, and returns its root: a directory, or a file
// when the input makes only one. The bytes are a program: each op byte is
// followed by its arguments, and ops may make pages of chunks, pages of
// pages that repeat one page many times, files over them, empty files, and
// levels of directories that each hold all the items of the level below
// (so that k directories a level make k^levels nodes from k blocks a
// level). Every block is valid alone and every tree is consistent; what a
// tree claims may be far more than a walker should visit.
func Tree(data []byte, put func(manifest.Block) error) (cid.Cid, error) {
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	var (
		pages [manifest.MaxDepth][]manifest.Entry // pages made, by depth
		items []manifest.DirEntry                 // the next directory's entries, names unique
		chunk int
	)
	params := chunker.FixedParams(ChunkSize)
	emit := func(n manifest.Node) (manifest.Block, bool, error) {
		b, err := manifest.Encode(n)
		if err != nil {
			return b, false, nil // beyond a limit: the op is skipped
		}
		return b, true, put(b)
	}
	add := func(e manifest.DirEntry) {
		for i := range items {
			if items[i].Name == e.Name {
				items[i] = e
				return
			}
		}
		items = append(items, e)
	}
	name := func(prefix string) string {
		n, pad := next()%16, next()
		return prefix + string(rune('a'+n)) + strings.Repeat("x", pad%254)
	}
	chunks := func(n int) []manifest.Entry {
		es := make([]manifest.Entry, n)
		for i := range es {
			es[i] = manifest.Entry{CID: chunkCID(chunk), Size: ChunkSize, Count: 1}
			chunk++
		}
		return es
	}
	// over returns k entries drawn from the pages of depth d, repeats
	// allowed: the first is chosen, and the rest are it or the next.
	over := func(d, k int) []manifest.Entry {
		ps := pages[d]
		first, step := next()%len(ps), next()%2
		es := make([]manifest.Entry, k)
		for i := range es {
			es[i] = ps[(first+i*step)%len(ps)]
		}
		return es
	}
	for ops := 0; len(data) > 0 && ops < 64; ops++ {
		switch next() % 5 {
		case 0: // a page of depth 0 of 1..64 chunks
			p := &manifest.Page{Entries: chunks(1 + next()%64)}
			b, ok, err := emit(p)
			if err != nil {
				return cid.Undef, err
			}
			if ok {
				size, count := p.Totals()
				pages[0] = append(pages[0], manifest.Entry{CID: b.CID, Size: size, Count: count})
			}
		case 1: // a page of depth d+1 over 1..256 pages of depth d
			d := next() % (manifest.MaxDepth - 1)
			k := 1 + next()
			if len(pages[d]) == 0 {
				continue
			}
			p := &manifest.Page{Depth: d + 1, Entries: over(d, k)}
			b, ok, err := emit(p)
			if err != nil {
				return cid.Undef, err
			}
			if ok {
				size, count := p.Totals()
				pages[d+1] = append(pages[d+1], manifest.Entry{CID: b.CID, Size: size, Count: count})
			}
		case 2: // a file: 1..64 chunks, or 1..256 pages of one depth
			d, k := next()%manifest.MaxDepth, 1+next()
			f := &manifest.File{Name: name("f"), Chunking: params, Depth: d}
			if d == 0 {
				f.Entries = chunks(1 + k%64)
			} else if len(pages[d-1]) > 0 {
				f.Entries = over(d-1, k)
			} else {
				continue
			}
			for _, e := range f.Entries {
				f.Size += e.Size
				f.Count += e.Count
			}
			b, ok, err := emit(f)
			if err != nil {
				return cid.Undef, err
			}
			if ok {
				add(manifest.DirEntry{Name: f.Name, CID: b.CID, Size: f.Size})
			}
		case 3: // an empty file
			f := &manifest.File{Name: name("e"), Chunking: params}
			b, ok, err := emit(f)
			if err != nil {
				return cid.Undef, err
			}
			if ok {
				add(manifest.DirEntry{Name: f.Name, CID: b.CID})
			}
		case 4: // a level: 1..4 directories, each holding every item
			k := 1 + next()%4
			pad := next()
			var size uint64
			for _, e := range items {
				size += e.Size
			}
			var made []manifest.DirEntry
			for j := range k {
				n := string(rune('a'+j)) + strings.Repeat("y", pad%255)
				n = n[:min(len(n), manifest.MaxNameLen)]
				b, err := manifest.EncodeDir(manifest.Dir{Name: n, Size: size, Entries: items})
				if err != nil {
					continue // too big: no level
				}
				if err := put(b); err != nil {
					return cid.Undef, err
				}
				made = append(made, manifest.DirEntry{Name: n, CID: b.CID, Size: size, Dir: true})
			}
			if len(made) > 0 {
				items = made
			}
		}
	}
	if len(items) == 1 && !items[0].Dir {
		return items[0].CID, nil
	}
	var size uint64
	for _, e := range items {
		size += e.Size
	}
	b, err := manifest.EncodeDir(manifest.Dir{Name: "root", Size: size, Entries: items})
	if err != nil {
		// Too big for one block or past the size cap: the first item.
		if len(items) == 0 {
			return cid.Undef, err
		}
		return items[0].CID, nil
	}
	return b.CID, put(b)
}

// Params returns the chunking parameters of the files Tree makes.
func Params() chunker.Params { return chunker.FixedParams(ChunkSize) }
