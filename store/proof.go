package store

import (
	"os"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
)

// Proofs that a shared file still holds the chunks it was verified to hold,
// so that ReadChunk need not hash a chunk again each time it serves it.
//
// A proof records the file's stamp (device, inode, size, modification and
// change times) when ReadChunk hashed a chunk of it and found it right. A
// later read of that chunk is served without hashing when the file's stamp,
// taken after the bytes were read, is still the same. Any write to a file,
// truncate, rename over it or chmod sets its change time (ctime) to the
// clock's now, which no system call can set back, and the kernel sets it
// before it copies a write's bytes: bytes a read saw changed mean a
// changed stamp after that read. What the stamp cannot see:
//   - a change in the same clock tick as the stamp's ctime (file systems
//     keep time in ticks of up to 2 s): no proof is made for a file whose
//     ctime is racy (index.go) at the time it is checked from;
//   - writes through a shared mapping to a page that is dirty already set
//     no time: the kernel sets one at the first write through a mapping
//     to a page it mapped read-only (page_mkwrite), which a mapping gets
//     again only once write-back cleaned the page (within 30 s by
//     default);
//   - a file system where a write through a mapping need not stamp the
//     time at all (tmpfs, ramfs, hugetlbfs: no page_mkwrite, no
//     write-back), or whose metadata comes from another machine through
//     a cache (NFS, SMB, FUSE, 9p, Ceph...): no stamps at all, hence no
//     proofs, seals or reuse, but on the disk file systems of an
//     allow-list (stampFS, proof_linux.go, which says why each is on it
//     and others are not). Elsewhere every chunk is hashed each time it
//     is served: slower, never wrong.
//
// So a proof is made, on a file system of that list, on one of two
// grounds:
//   - no writer: before the read that hashed the chunk, a read lease on the
//     file was granted (noWriter, proof_linux.go: no open file description
//     of it was open for writing, which any shared mapping that can write
//     it holds open until unmapped), and its ctime was not racy then.
//     From then on, nothing can change a byte without a new open or a new
//     mapping, whose first write to each page stamps the time first: a
//     chunk the read saw is the file's while the stamp is the same;
//   - age: the file's ctime is proofAge older than the read, longer than
//     write-back takes to clean a page under the kernel's defaults, for
//     files a lease cannot test (a writer has the file open, another
//     owner without CAP_LEASE, leases disabled).
//
// Proofs live in memory only (a restart hashes each chunk once again), one
// per chunk served, at most maxProofs (then they are all dropped and made
// again).

// proofAge is how much older than the read that hashed a chunk a file's
// last change must be for the chunk to get a proof when no lease said that
// nothing could write the file.
const proofAge = time.Minute

// maxProofs bounds the chunks that have a proof: 256 Ki of them (256 GiB
// of 1 MiB chunks) take some 50 MiB at most (path, CID and stamp each).
const maxProofs = 1 << 18

// stamp is what a file's metadata says about its content.
type stamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns since the epoch
}

// proofKey names a chunk of a file.
type proofKey struct {
	path   string
	offset int64
	size   uint32
}

// proofs holds the proofs of one Store. Safe for concurrent use.
type proofs struct {
	mu sync.Mutex
	m  map[proofKey]proof
}

type proof struct {
	c  cid.Cid
	st stamp
}

// holds reports whether chunk c at k was verified while the file had the
// stamp st.
func (p *proofs) holds(k proofKey, c cid.Cid, st stamp) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, ok := p.m[k]
	return ok && pr.st == st && pr.c.Equals(c)
}

// add records that chunk c at k hashed right while the file had stamp st,
// read at readAt, if st proves anything later: if it is proofAge old, or
// if nothing could write the file at unwrittenAt (not zero: a read lease
// was granted then, before the read) and st is not racy then.
func (p *proofs) add(k proofKey, c cid.Cid, st stamp, readAt, unwrittenAt time.Time) {
	old := readAt.UnixNano()-st.ctime >= int64(proofAge)
	if !old && (unwrittenAt.IsZero() || racy(unwrittenAt.UnixNano(), st.ctime)) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxProofs {
		p.m = map[proofKey]proof{}
	}
	p.m[k] = proof{c: c, st: st}
}

// forget drops the proofs of k, whose file no longer holds its chunk.
func (p *proofs) forget(k proofKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, k)
}

// stampAfter returns f's stamp now, if it has one a proof may rest on.
func stampAfter(f *os.File) (stamp, bool) {
	fi, err := f.Stat()
	if err != nil {
		return stamp{}, false
	}
	return stampOf(fi)
}
