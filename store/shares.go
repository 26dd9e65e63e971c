package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// purgeBatch bounds the keys one transaction deletes when a share is
// removed, so that removing a huge share never holds one giant transaction.
const purgeBatch = 10000

// readChunkLocations bounds the locations ReadChunk tries for one chunk.
const readChunkLocations = 64

// ChunkLoc is where one chunk lies in a file being indexed.
type ChunkLoc struct {
	CID    cid.Cid // raw chunk CID
	Offset int64   // byte offset in the file
	Size   uint32  // length in bytes, at most chunker.MaxSize
}

// ShareInfo describes a share when it is committed.
type ShareInfo struct {
	Name     string         // display name, usually the base name of the path
	Size     int64          // total bytes
	Files    int64          // number of files
	Dir      bool           // a directory rather than a single file
	Chunking chunker.Params // how its files were cut; must be valid
}

// Share is a committed share.
type Share struct {
	Root     cid.Cid // root CID
	Path     string  // absolute path of the shared file or directory
	Name     string
	Size     int64
	Files    int64
	Dir      bool
	Chunking chunker.Params
	Created  time.Time
	// Stale is set once a read found one of the share's files changed since
	// it was indexed. The share still serves the chunks that verify; share
	// the path again to re-index it.
	Stale bool
}

// Location is one place a chunk was indexed at, and what its file looked
// like then.
type Location struct {
	Share    cid.Cid // root of the share the file belongs to
	File     cid.Cid // root of the file's DAG
	Path     string  // absolute path of the file
	Offset   int64
	Size     uint32
	FileSize int64
	ModTime  time.Time

	shareID uint64
	stale   bool
	seal    *stamp // the file's stamp when its chunks were hashed at import, if a seal (index.go)
}

// ShareTx builds one share in steps: BeginShare, AddFile as many times as
// needed, then Commit or Abort. Until Commit nothing of it is visible; if
// the process dies first, the next Open removes it.
//
// A ShareTx is not safe for concurrent use; different ShareTxs may be used
// concurrently.
type ShareTx struct {
	s     *Store
	id    uint64
	path  string
	began time.Time // before any chunk of it was hashed: what seals are dated by
	done  bool

	// The file the last AddFile added to, which the next may continue.
	cur      fileRecord
	curNo    uint64
	haveCur  bool
	curSeal  stampRecord // the seal of cur, if curOK
	curOK    bool
	nextFile uint64

	// reuser is the Reuser of this share (Reuser), if any: the files its
	// File gave keep the time their bytes were hashed (sealFor).
	reuser *Reuser

	// unwritten holds, for each file Opened found without a writer, its
	// stamp then (absolute path → stamp), until the next file is added.
	unwritten map[string]stamp

	// What AddFile has taken and not yet written: flush writes it in one
	// transaction once it holds about addBatchBytes, and Commit writes the
	// rest in its own.
	batch      []pendingFile
	batchLocs  []ChunkLoc
	batchBytes int
}

// pendingFile is one AddFile call waiting in a ShareTx's batch: its
// chunks are batchLocs[from:to].
type pendingFile struct {
	rec      fileRecord
	no       uint64
	new      bool // the file's record is to be written too
	from, to int

	// The file's seal (index.go): written (or, if not sealed, deleted)
	// when writeSeal, as the first batch of a file and any batch that
	// finds its stamp moved do.
	seal              stampRecord
	sealed, writeSeal bool
}

// addBatchBytes is about how much index AddFile gathers before it writes
// it, in one transaction. A transaction has a fixed cost (pages copied,
// the meta page, an fsync without NoSync) whatever it holds: with one per
// call, sharing 100,000 small files spent 7.2 s of 11.8 s committing.
const addBatchBytes = 1 << 20

// indexBytesPerChunk is about what one chunk's location costs in a batch:
// its CID twice (the location's key, the reverse index's value), offsets
// and file numbers.
const indexBytesPerChunk = 128

// BeginShare starts indexing the file or directory at path (made absolute).
// It blocks on one committed transaction; it is safe for concurrent use.
func (s *Store) BeginShare(path string) (*ShareTx, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: begin share %s: %w", path, err)
	}
	if path == "" || len(abs) > maxString {
		return nil, fmt.Errorf("%w: share path %q", ErrInvalid, path)
	}
	t := &ShareTx{s: s, path: abs, began: s.opts.Now()}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketShares)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		t.id = id
		rec := shareRecord{state: statePending, path: abs, created: t.began.UnixNano()}
		return b.Put(idKey(id), encodeShare(rec))
	})
	if err != nil {
		return nil, fmt.Errorf("store: begin share %s: %w", path, err)
	}
	return t, nil
}

// AddFile indexes chunks of the file at path, which had size bytes and
// modification time mtime when it was read, and whose file's DAG has root.
// path is absolute, or relative to the share's path (and then local: no
// ".."). A big file may be added in batches: consecutive calls with the same
// path, size, mtime and root add to the same file; keep each to a few
// thousand chunks.
//
// AddFile checks its arguments at once and keeps what they say: the calls
// are written together, in one transaction per megabyte or so of index,
// and Commit writes the rest. A share is thus recorded whole or not at all
// however many files it has, as before: nothing of it is visible until
// Commit, and a share left pending by a crash is removed by the next Open.
// An error writing a batch is returned by the AddFile that wrote it, or by
// Commit; then Abort the share.
//
// Every chunk must be a raw CID lying within the file. Call AddFile after
// the chunks it indexes were read and hashed: it seals them with the file's
// stamp as it is then, when that proves the file unchanged since BeginShare
// (index.go), so that ReadChunk serves them without hashing them again.
// AddFile blocks on disk I/O when it writes a batch.
func (t *ShareTx) AddFile(path string, size int64, mtime time.Time, root cid.Cid, chunks []ChunkLoc) error {
	if t.done {
		return ErrShareDone
	}
	rec, err := t.checkFile(path, size, mtime, root, chunks)
	if err != nil {
		return fmt.Errorf("store: add file %s: %w", path, err)
	}
	same := t.haveCur && rec == t.cur
	fileNo := t.curNo
	if !same {
		fileNo = t.nextFile
	}
	seal, sealed := t.sealFor(rec, same) // the file as it is now, after its chunks were hashed
	if same {
		// A later batch of the same file: the seal holds only if the
		// stamp did not move since the first.
		sealed = sealed && t.curOK && seal == t.curSeal
	}
	if !same {
		if t.haveCur {
			delete(t.unwritten, t.abs(t.cur.path))
		}
		t.cur, t.curNo, t.haveCur = rec, fileNo, true
		t.nextFile++
	}
	t.curSeal, t.curOK = seal, sealed
	from := len(t.batchLocs)
	t.batchLocs = append(t.batchLocs, chunks...)
	t.batch = append(t.batch, pendingFile{
		rec: rec, no: fileNo, new: !same,
		seal: seal, sealed: sealed, writeSeal: !same || !sealed,
		from: from, to: len(t.batchLocs),
	})
	t.batchBytes += 64 + len(rec.path) + len(chunks)*indexBytesPerChunk
	if t.batchBytes < addBatchBytes {
		return nil
	}
	if err := t.s.update(t.flushLocked); err != nil {
		return fmt.Errorf("store: add file %s: %w", path, err)
	}
	return nil
}

// Opened tells t that its import is about to read the file at path
// (absolute, or relative to the share's path) from f, opened read-only,
// and has read nothing of it yet. It checks that nothing can write the
// file now (a read lease, taken and released at once: noWriter in
// proof_linux.go), and if so keeps the file's stamp as it is then: when
// AddFile finds the same stamp after the chunks were hashed, and the
// file's last change was racyAge before the share began, the file is
// sealed at once instead of only when that change was proofAge old
// (index.go). Call it on the descriptor the import reads, so that the
// file tested is the file read.
//
// It costs two fcntl calls, a fstat and a fstatfs; it blocks on nothing
// but them. Opening the file for writing from elsewhere waits during
// those microseconds (an open with O_NONBLOCK fails with EWOULDBLOCK).
func (t *ShareTx) Opened(path string, f *os.File) {
	if t.done || !stamps || !t.s.unwritten(f) {
		return
	}
	fi, err := f.Stat() // after the lease: the stamp the test vouches for
	if err != nil {
		return
	}
	st, ok := stampOf(fi)
	if !ok {
		return
	}
	if t.unwritten == nil {
		t.unwritten = map[string]stamp{}
	}
	t.unwritten[t.abs(filepath.Clean(path))] = st
}

// abs returns path, which is absolute or relative to the share's path,
// made absolute.
func (t *ShareTx) abs(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(t.path, path)
}

// flushLocked writes the batch in tx, which is the caller's, and empties
// the batch when tx commits.
func (t *ShareTx) flushLocked(tx *bolt.Tx) error {
	if _, err := t.pendingLocked(tx); err != nil {
		return err
	}
	files, locs, rev := tx.Bucket(bucketFiles), tx.Bucket(bucketLocs), tx.Bucket(bucketRev)
	for _, f := range t.batch {
		if f.new {
			if err := files.Put(fileKey(t.id, f.no), encodeFile(f.rec)); err != nil {
				return err
			}
		}
		if f.writeSeal {
			if err := sealLocked(tx, t.id, f.no, f.seal, f.sealed); err != nil {
				return err
			}
		}
		for _, ch := range t.batchLocs[f.from:f.to] {
			c := ch.CID.Bytes()
			if err := locs.Put(locKey(c, t.id, f.no, ch.Offset), encodeLoc(ch.Size)); err != nil {
				return err
			}
			if err := rev.Put(revKey(t.id, f.no, ch.Offset), c); err != nil {
				return err
			}
		}
	}
	tx.OnCommit(t.clearBatch)
	return nil
}

func (t *ShareTx) clearBatch() {
	t.batch, t.batchLocs, t.batchBytes = t.batch[:0], t.batchLocs[:0], 0
}

func (t *ShareTx) checkFile(path string, size int64, mtime time.Time, root cid.Cid, chunks []ChunkLoc) (fileRecord, error) {
	var rec fileRecord
	switch {
	case path == "" || len(path) > maxString:
		return rec, fmt.Errorf("%w: path", ErrInvalid)
	case filepath.IsAbs(path):
		path = filepath.Clean(path)
	case !filepath.IsLocal(path):
		return rec, fmt.Errorf("%w: relative path %q leaves the share", ErrInvalid, path)
	}
	if size < 0 {
		return rec, fmt.Errorf("%w: negative size %d", ErrInvalid, size)
	}
	if !time.Unix(0, mtime.UnixNano()).Equal(mtime) {
		return rec, fmt.Errorf("%w: modification time %v out of range", ErrInvalid, mtime)
	}
	if err := integrity.Check(root); err != nil {
		return rec, err
	}
	for _, ch := range chunks {
		if err := integrity.CheckCodec(ch.CID, integrity.Raw); err != nil {
			return rec, err
		}
		if ch.Size > chunker.MaxSize || ch.Offset < 0 || ch.Offset > size-int64(ch.Size) {
			return rec, fmt.Errorf("%w: chunk %s at %d+%d outside a file of %d bytes",
				ErrInvalid, ch.CID, ch.Offset, ch.Size, size)
		}
	}
	return fileRecord{path: path, size: size, mtime: mtime.UnixNano(), root: root}, nil
}

// pendingLocked returns the ShareTx's record, which must still be pending.
func (t *ShareTx) pendingLocked(tx *bolt.Tx) (shareRecord, error) {
	v := tx.Bucket(bucketShares).Get(idKey(t.id))
	if v == nil {
		return shareRecord{}, fmt.Errorf("%w: pending share %d", ErrNotFound, t.id)
	}
	rec, err := decodeShare(v)
	if err != nil {
		return rec, err
	}
	if rec.state != statePending {
		return rec, ErrShareDone
	}
	return rec, nil
}

// Commit makes the share visible under root. If root was already shared, the
// new share replaces the old one, whose index is then removed. Commit blocks
// on disk I/O; after it, the ShareTx is done.
func (t *ShareTx) Commit(root cid.Cid, info ShareInfo) error {
	if t.done {
		return ErrShareDone
	}
	if err := integrity.Check(root); err != nil {
		return fmt.Errorf("store: commit share: %w", err)
	}
	if info.Name == "" || len(info.Name) > maxString || info.Size < 0 || info.Files < 0 {
		return fmt.Errorf("%w: share info %+v", ErrInvalid, info)
	}
	if err := info.Chunking.Validate(); err != nil {
		return fmt.Errorf("store: commit share: %w", err)
	}
	var old uint64
	err := t.s.update(func(tx *bolt.Tx) error {
		if err := t.flushLocked(tx); err != nil {
			return err
		}
		rec, err := t.pendingLocked(tx)
		if err != nil {
			return err
		}
		roots, shares := tx.Bucket(bucketRoots), tx.Bucket(bucketShares)
		if v := roots.Get(root.Bytes()); v != nil {
			if old, err = t.s.retireLocked(tx, v); err != nil {
				return err
			}
		}
		rec.state, rec.root = stateCommitted, root
		rec.name, rec.size, rec.files, rec.dir, rec.chunking = info.Name, info.Size, info.Files, info.Dir, info.Chunking
		if err := shares.Put(idKey(t.id), encodeShare(rec)); err != nil {
			return err
		}
		return roots.Put(root.Bytes(), idKey(t.id))
	})
	if err != nil {
		return fmt.Errorf("store: commit share %s: %w", root, err)
	}
	t.done, t.unwritten = true, nil
	if old != 0 {
		if err := t.s.purge(old); err != nil {
			// The old share is invisible already; Open finishes the job.
			t.s.log.Warn("store: removing replaced share", "root", root, "err", err)
		}
	}
	return nil
}

// Abort drops the share and its index. Abort after Commit does nothing and
// returns nil, so `defer t.Abort()` is safe. It blocks on disk I/O.
func (t *ShareTx) Abort() error {
	if t.done {
		return nil
	}
	t.done = true
	t.clearBatch()
	t.unwritten = nil
	if err := t.s.purge(t.id); err != nil {
		return fmt.Errorf("store: abort share: %w", err)
	}
	return nil
}

// retireLocked turns the committed share whose id key is v back to pending
// so that it can be purged, and returns its id.
func (s *Store) retireLocked(tx *bolt.Tx, v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: root index value of %d bytes", ErrCorrupt, len(v))
	}
	id := binary.BigEndian.Uint64(v)
	shares := tx.Bucket(bucketShares)
	rv := shares.Get(idKey(id))
	if rv == nil {
		return 0, fmt.Errorf("%w: root index names missing share %d", ErrCorrupt, id)
	}
	rec, err := decodeShare(rv)
	if err != nil {
		return 0, err
	}
	if err := tx.Bucket(bucketRoots).Delete(rec.root.Bytes()); err != nil {
		return 0, err
	}
	rec.state = statePending
	return id, shares.Put(idKey(id), encodeShare(rec))
}

// Unshare removes the share root and its index; the blocks stay. It blocks on
// disk I/O (one transaction per purgeBatch keys); it is safe for concurrent
// use.
func (s *Store) Unshare(root cid.Cid) error {
	var id uint64
	err := s.update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRoots).Get(root.Bytes())
		if v == nil {
			return fmt.Errorf("%w: share %s", ErrNotFound, root)
		}
		var err error
		id, err = s.retireLocked(tx, v)
		return err
	})
	if err == nil {
		err = s.purge(id)
	}
	if err != nil {
		return fmt.Errorf("store: unshare %s: %w", root, err)
	}
	return nil
}

// purge deletes a pending share and everything indexed under it, purgeBatch
// keys per transaction, so that a crash part-way leaves a pending share that
// the next Open purges again.
func (s *Store) purge(id uint64) error {
	prefix := idKey(id)
	for {
		more := false
		err := s.update(func(tx *bolt.Tx) error {
			v := tx.Bucket(bucketShares).Get(prefix)
			if v == nil {
				return nil // already gone
			}
			if rec, err := decodeShare(v); err == nil && rec.state != statePending {
				return fmt.Errorf("store: purge of committed share %d", id) // broken invariant
			}
			rev, locs := tx.Bucket(bucketRev), tx.Bucket(bucketLocs)
			keys, vals := prefixed(rev, prefix, purgeBatch)
			for i, k := range keys {
				if err := locs.Delete(append(vals[i], k...)); err != nil {
					return err
				}
				if err := rev.Delete(k); err != nil {
					return err
				}
			}
			if more = len(keys) == purgeBatch; more {
				return nil
			}
			files, stamps := tx.Bucket(bucketFiles), tx.Bucket(bucketStamps)
			keys, _ = prefixed(files, prefix, purgeBatch)
			for _, k := range keys {
				if err := files.Delete(k); err != nil {
					return err
				}
				if err := stamps.Delete(k); err != nil {
					return err
				}
			}
			if more = len(keys) == purgeBatch; more {
				return nil
			}
			return tx.Bucket(bucketShares).Delete(prefix)
		})
		if err != nil || !more {
			return err
		}
	}
}

// prefixed returns copies of up to limit keys of b that start with prefix,
// and of their values.
func prefixed(b *bolt.Bucket, prefix []byte, limit int) (keys, vals [][]byte) {
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(keys) < limit; k, v = c.Next() {
		keys = append(keys, bytes.Clone(k))
		vals = append(vals, bytes.Clone(v))
	}
	return keys, vals
}

// removeUnfinished purges every pending share: those a crash interrupted
// while being built or removed.
func (s *Store) removeUnfinished() error {
	var ids []uint64
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketShares).ForEach(func(k, v []byte) error {
			rec, err := decodeShare(v)
			if err != nil {
				return fmt.Errorf("share %x: %w", k, err)
			}
			if rec.state == statePending && len(k) == 8 {
				ids = append(ids, binary.BigEndian.Uint64(k))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.purge(id); err != nil {
			return err
		}
	}
	if len(ids) > 0 {
		s.log.Info("store: removed unfinished shares", "count", len(ids))
	}
	return nil
}

func (r shareRecord) share() Share {
	return Share{
		Root: r.root, Path: r.path, Name: r.name, Size: r.size, Files: r.files, Dir: r.dir,
		Chunking: r.chunking, Created: time.Unix(0, r.created), Stale: r.stale,
	}
}

// Shares returns every committed share, sorted by name and then root. It is
// safe for concurrent use.
func (s *Store) Shares() ([]Share, error) {
	var out []Share
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketShares).ForEach(func(k, v []byte) error {
			rec, err := decodeShare(v)
			if err != nil {
				return fmt.Errorf("share %x: %w", k, err)
			}
			if rec.state == stateCommitted {
				out = append(out, rec.share())
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: shares: %w", err)
	}
	slices.SortFunc(out, func(a, b Share) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Root.KeyString(), b.Root.KeyString())
	})
	return out, nil
}

// Share returns the committed share root, or an error wrapping ErrNotFound.
// It is safe for concurrent use.
func (s *Store) Share(root cid.Cid) (Share, error) {
	var sh Share
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRoots).Get(root.Bytes())
		if v == nil {
			return fmt.Errorf("%w: share %s", ErrNotFound, root)
		}
		rv := tx.Bucket(bucketShares).Get(v)
		if rv == nil {
			return fmt.Errorf("%w: root index names a missing share", ErrCorrupt)
		}
		rec, err := decodeShare(rv)
		sh = rec.share()
		return err
	})
	return sh, err
}

// Locations returns every place chunk c is indexed at in committed shares,
// those of fresh shares first. It does not look at the files. It is safe for
// concurrent use.
func (s *Store) Locations(c cid.Cid) ([]Location, error) {
	return s.locations(c, -1)
}

// locations returns up to limit (all if negative) locations of c.
func (s *Store) locations(c cid.Cid, limit int) ([]Location, error) {
	if err := integrity.Check(c); err != nil {
		return nil, fmt.Errorf("store: locations: %w", err)
	}
	prefix := c.Bytes()
	var out []Location
	err := s.view(func(tx *bolt.Tx) error {
		shares, files := tx.Bucket(bucketShares), tx.Bucket(bucketFiles)
		recs := make(map[uint64]*shareRecord)
		cur := tx.Bucket(bucketLocs).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			if limit >= 0 && len(out) >= limit {
				break
			}
			_, id, fileNo, off, err := parseLocKey(k)
			if err != nil {
				return err
			}
			size, err := decodeLoc(v)
			if err != nil {
				return err
			}
			rec, ok := recs[id]
			if !ok {
				if sv := shares.Get(idKey(id)); sv != nil {
					r, err := decodeShare(sv)
					if err != nil {
						return err
					}
					rec = &r
				}
				recs[id] = rec
			}
			if rec == nil || rec.state != stateCommitted {
				continue // being built or removed
			}
			fv := files.Get(fileKey(id, fileNo))
			if fv == nil {
				return fmt.Errorf("%w: location of chunk %s names a missing file", ErrCorrupt, c)
			}
			f, err := decodeFile(fv)
			if err != nil {
				return err
			}
			path := f.path
			if !filepath.IsAbs(path) {
				path = filepath.Join(rec.path, path)
			}
			seal, err := sealOfLocked(tx, id, fileNo)
			if err != nil {
				return err
			}
			var sealSt *stamp
			if seal != nil && seal.sealed() {
				sealSt = &seal.st // else a stamp for reuse only (index.go)
			}
			out = append(out, Location{
				Share: rec.root, File: f.root, Path: path, Offset: off, Size: size,
				FileSize: f.size, ModTime: time.Unix(0, f.mtime), shareID: id, stale: rec.stale, seal: sealSt,
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: locations of %s: %w", c, err)
	}
	slices.SortStableFunc(out, func(a, b Location) int {
		switch {
		case a.stale == b.stale:
			return 0
		case b.stale:
			return -1
		}
		return 1
	})
	return out, nil
}

// staleError says why a location can no longer serve its chunk.
type staleError struct {
	path   string
	reason string
	err    error
}

func (e *staleError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%s: %s: %v", e.path, e.reason, e.err)
	}
	return fmt.Sprintf("%s: %s", e.path, e.reason)
}

func (e *staleError) Unwrap() error { return e.err }

// ReadChunk reads chunk c from a shared file into buf (grown if too small)
// and returns the bytes, verified against c. It tries the chunk's locations
// in turn: one whose file is gone, has another size or modification time than
// when it was indexed, or whose bytes no longer hash to c, marks its share
// Stale and is skipped. A file edited behind the store's back is thus never
// served as the old content.
//
// It returns an error wrapping ErrNotFound when no share holds c, ErrStale
// (which also wraps ErrNotFound) when every location failed that way, and
// the I/O error when reading failed otherwise. It blocks on file I/O; it is
// safe for concurrent use.
func (s *Store) ReadChunk(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	locs, err := s.locations(c, readChunkLocations)
	if err != nil {
		return nil, err
	}
	if len(locs) == 0 {
		return nil, fmt.Errorf("%w: chunk %s", ErrNotFound, c)
	}
	var stale, other []error
	for _, l := range locs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := s.readLocation(c, l, buf)
		if err == nil {
			return data, nil
		}
		var se *staleError
		if errors.As(err, &se) {
			stale = append(stale, err)
			s.markStale(l, se)
		} else {
			other = append(other, err)
		}
	}
	if len(other) > 0 {
		return nil, fmt.Errorf("store: read chunk %s: %w", c, errors.Join(other...))
	}
	return nil, fmt.Errorf("%w: chunk %s: %w", ErrStale, c, errors.Join(stale...))
}

// readLocation reads and verifies one location: it hashes the bytes unless
// a proof (proof.go) or the location's seal (index.go) holds for them.
// Errors that mean the file no longer holds the chunk are *staleError.
func (s *Store) readLocation(c cid.Cid, l Location, buf []byte) ([]byte, error) {
	// One lookup, and no wait on a FIFO for a writer (openRegular).
	f, fi, err := openRegular(l.Path)
	switch {
	case errors.Is(err, errNotRegular):
		return nil, &staleError{path: l.Path, reason: "not a regular file now (" + fi.Mode().Type().String() + ")"}
	case errors.Is(err, os.ErrNotExist):
		return nil, &staleError{path: l.Path, reason: "gone"}
	case err != nil:
		return nil, err
	}
	defer f.Close()
	if fi.Size() != l.FileSize || !fi.ModTime().Equal(l.ModTime) {
		return nil, &staleError{path: l.Path, reason: fmt.Sprintf(
			"size %d, modified %v; indexed with size %d, modified %v",
			fi.Size(), fi.ModTime(), l.FileSize, l.ModTime)}
	}
	if cap(buf) < int(l.Size) {
		buf = make([]byte, l.Size)
	}
	buf = buf[:l.Size]
	// No stamp from a file system where it need not move with every change
	// (stampFS): not even a seal an older version recorded there counts.
	st, stamped := stampOf(fi)
	stamped = stamped && s.stampFS(f)
	key := proofKey{path: l.Path, offset: l.Offset, size: l.Size}
	trusted := stamped && ((l.seal != nil && *l.seal == st) || s.proofs.holds(key, c, st))
	// When nothing could write the file, if so, before the read: asked only
	// where it can make the proof (stampFS held already, above), not for a
	// stamp the age rule proves anyway or the racy rule refuses.
	var unwrittenAt time.Time
	if now := s.opts.Now(); stamped && !trusted && !racy(now.UnixNano(), st.ctime) &&
		now.UnixNano()-st.ctime < int64(proofAge) && s.lease(f) {
		unwrittenAt = now
	}
	readAt := s.opts.Now()
	n, err := f.ReadAt(buf, l.Offset)
	if n < len(buf) {
		if err == nil || err == io.EOF {
			return nil, &staleError{path: l.Path, reason: "short read"}
		}
		return nil, err
	}
	if trusted {
		// The stamp after the read: a write that the read saw set it.
		if after, ok := stampAfter(f); ok && after == st {
			return buf, nil
		}
	}
	s.hashed.Add(1)
	if err := integrity.Verify(c, buf); err != nil {
		s.proofs.forget(key)
		return nil, &staleError{path: l.Path, reason: "content changed", err: err}
	}
	if stamped {
		if after, ok := stampAfter(f); ok && after == st {
			s.proofs.add(key, c, st, readAt, unwrittenAt)
		}
	}
	return buf, nil
}

// markStale flags the share of l as stale, once.
func (s *Store) markStale(l Location, why error) {
	if l.stale {
		return
	}
	s.log.Warn("store: shared file changed; share is stale", "share", l.Share, "why", why)
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketShares)
		v := b.Get(idKey(l.shareID))
		if v == nil {
			return nil // unshared meanwhile
		}
		rec, err := decodeShare(v)
		if err != nil || rec.stale || rec.state != stateCommitted {
			return err
		}
		rec.stale = true
		return b.Put(idKey(l.shareID), encodeShare(rec))
	})
	if err != nil {
		s.log.Warn("store: marking share stale", "share", l.Share, "err", err)
	}
}
