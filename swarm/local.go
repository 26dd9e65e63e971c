package swarm

import (
	"context"
	"os"
	"path/filepath"
	"runtime"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/integrity"
)

// Chunks a fetch already has on this machine. Before the scheduler asks
// any peer for anything, a fetch looks for each chunk its staging area
// lacks among the places FetchOptions.Local names (the node's index of
// shares and finished downloads) and, with Force, at the same offset of
// the same file in what Dest holds now (the previous version a fetch of a
// newer one replaces). Each copy is read, hashed against the chunk's CID
// and written like a chunk from a peer; the scheduler starts with those
// chunks had, so it never asks a peer for them. A place whose bytes do
// not hash right (a file truncated or rewritten since it was indexed) is
// skipped, and the chunk comes from the network. The downloads this swarm
// runs at the same time, of other roots or to other places, count too:
// what they verified is read back from their staging areas and hashed
// again.

// maxLocalCopies bounds the places tried for one chunk (a chunk of zeros
// may sit in thousands of files).
const maxLocalCopies = 8

// LocalCopy is a place on this machine that held a chunk when it was
// indexed: bytes [Offset, Offset+Size) of the file at Path. A fetch
// verifies them before it uses them.
type LocalCopy struct {
	Path   string
	Offset int64
	Size   uint32
}

// fillLocal copies into the download every chunk it lacks that a local
// copy holds, on every core, and returns the bytes it copied. It stops
// early, without error, when ctx ends: what it copied stays.
func (f *fetch) fillLocal(ctx context.Context) int64 {
	l, dl := f.layout, f.dl
	prev := f.opts.Force
	if prev {
		if _, err := os.Lstat(f.opts.Dest); err != nil {
			prev = false
		}
	}
	f.sw.mu.Lock()
	running := len(f.sw.fetches) > 1 || len(f.sw.fetches[f.root]) > 1
	f.sw.mu.Unlock()
	if f.opts.Local == nil && !prev && !running {
		return 0
	}
	next := make(chan int64)
	var workers group
	copied := make([]int64, runtime.GOMAXPROCS(0))
	for w := range copied {
		workers.Go(func() {
			r := localReader{}
			defer r.close()
			for i := range next {
				c := l.Chunks[i]
				var places []LocalCopy
				if f.opts.Local != nil {
					places = f.opts.Local(c.CID)
				}
				if prev {
					p := f.opts.Dest
					if l.Dir {
						p = filepath.Join(p, filepath.FromSlash(l.Files[c.File].Path))
					}
					places = append(places, LocalCopy{Path: p, Offset: c.Offset, Size: uint32(c.Size)})
				}
				data := r.find(c.CID, int(c.Size), places)
				if data == nil && running {
					data = f.fromRunning(c.CID, int(c.Size), &r.buf)
				}
				if data == nil {
					continue
				}
				if fresh, err := dl.write(i, data); err != nil {
					f.log.Warn("copying a local chunk", "index", i, "err", err)
				} else if fresh {
					copied[w] += int64(c.Size)
				}
			}
		})
	}
feed:
	for i := range l.NumChunks() {
		if dl.Has(i) || dl.skipped(int(l.Chunks[i].File)) {
			continue
		}
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	workers.wait()
	var n int64
	for _, c := range copied {
		n += c
	}
	return n
}

// localReader reads candidate copies of chunks, keeping the last file
// open (the chunks of one file come in order). Not safe for concurrent use.
type localReader struct {
	path string
	f    *os.File
	buf  []byte
}

// find returns the bytes of the first place that holds chunk c of size
// bytes, verified against c, or nil. The bytes are valid until the next
// call.
func (r *localReader) find(c cid.Cid, size int, places []LocalCopy) []byte {
	for _, p := range places[:min(len(places), maxLocalCopies)] {
		if int(p.Size) != size || p.Offset < 0 {
			continue
		}
		if r.f == nil || r.path != p.Path {
			r.close()
			// Stat first: opening a FIFO would wait for a writer.
			fi, err := os.Stat(p.Path)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			f, err := os.Open(p.Path)
			if err != nil {
				continue
			}
			if st, err := f.Stat(); err != nil || !os.SameFile(fi, st) {
				f.Close()
				continue
			}
			r.f, r.path = f, p.Path
		}
		r.buf = grow(r.buf, size)
		if n, _ := r.f.ReadAt(r.buf, p.Offset); n != size {
			continue
		}
		if integrity.Verify(c, r.buf) == nil {
			return r.buf
		}
	}
	return nil
}

func (r *localReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f, r.path = nil, ""
	}
}

// fromRunning returns chunk c (of size bytes) read from another download
// this swarm runs, verified against c, or nil. *buf is reused.
func (f *fetch) fromRunning(c cid.Cid, size int, buf *[]byte) []byte {
	f.sw.mu.Lock()
	var others []*fetch
	for _, fs := range f.sw.fetches {
		for _, g := range fs {
			if g != f {
				others = append(others, g)
			}
		}
	}
	f.sw.mu.Unlock()
	for _, g := range others {
		l, dl := g.current()
		if l == nil || dl == nil {
			continue
		}
		i, ok := l.ChunkIndexFunc(c, dl.Has) // any index it holds c at
		if !ok || int(dl.layout.Chunks[i].Size) != size {
			continue
		}
		data, err := dl.readChunk(i, *buf, true) // hashed again: its file may have changed
		if err == nil {
			*buf = data
			return data
		}
	}
	return nil
}
