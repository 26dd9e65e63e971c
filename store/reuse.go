package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"

	"github.com/peer-project/peer/chunker"
)

// Reuse: a share of a path that was shared before need not read and hash
// the files that did not change since. A Reuser holds the files of the
// newest committed share of the same path cut with the same chunking; File
// answers, for one file about to be imported, the chunks and the root its
// record lists, when the file's stamp now is the one recorded with it
// (index.go: recorded only when the file's ctime was racyAge older than
// the time its bytes were hashed, so that it proves the bytes hashed then
// are the bytes there now). The ShareTx whose Reuser gave a file's chunks
// records them with that time, not its own start. Anything else (no
// record, no stamp, another stamp, a file system that gives no stamps, such
// as tmpfs or a network file system (stampFS), a chunk list with a hole in
// it) is not reused: the importer reads and hashes the file as it would
// have.
//
// What a stamp cannot see is what it cannot see for a seal (proof.go): a
// write through a shared mapping to a page that was dirty already, before
// the share that recorded it started, unless that share found no writer
// (the record's noWriter, which a reuse carries as it carries the hash
// time); a fresh import reading such a file would not see it either.

// Reuser looks up what the last share of a path recorded of its files. It
// is not safe for concurrent use.
type Reuser struct {
	s        *Store
	id       uint64 // the share; 0 if none may be reused
	minChunk int
	files    map[string]uint64 // absolute path → fileNo

	// gave holds the stamp record of each file File gave the chunks of:
	// the ShareTx that made r seals such a file with the time its bytes
	// were hashed, not its own start (sealFor).
	gave map[string]stampRecord
}

// Reuser returns the Reuser of t, a share of a path: what the newest
// committed share of the same path cut with chunking recorded of its
// files. It reads their records (one map entry a file); with none, its
// File finds nothing. A file whose chunks File gives keeps, when t adds
// it, the time its bytes were hashed, not t's start: a stamp too young to
// be a seal where they were hashed is none in t either. It blocks on a
// read transaction.
func (t *ShareTx) Reuser(chunking chunker.Params) (*Reuser, error) {
	r, err := t.s.newReuser(t.path, chunking)
	if err != nil {
		return nil, err
	}
	t.reuser = r
	return r, nil
}

// newReuser returns the Reuser of a share of path (made absolute) cut with
// chunking, tied to no ShareTx.
func (s *Store) newReuser(path string, chunking chunker.Params) (*Reuser, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: reuse %s: %w", path, err)
	}
	r := &Reuser{s: s, minChunk: chunking.MinChunk(), files: map[string]uint64{}, gave: map[string]stampRecord{}}
	if !stamps || chunking.Validate() != nil {
		return r, nil
	}
	err = s.view(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketShares).Cursor()
		for k, v := cur.Last(); k != nil; k, v = cur.Prev() {
			rec, err := decodeShare(v)
			if err != nil {
				return err
			}
			if rec.state != stateCommitted || rec.path != abs || rec.chunking != chunking {
				continue
			}
			if len(k) != 8 {
				return fmt.Errorf("%w: share key of %d bytes", ErrCorrupt, len(k))
			}
			r.id = idFromKey(k)
			fc := tx.Bucket(bucketFiles).Cursor()
			for fk, fv := fc.Seek(k); fk != nil && bytes.HasPrefix(fk, k); fk, fv = fc.Next() {
				if len(fk) != 16 {
					return fmt.Errorf("%w: file key of %d bytes", ErrCorrupt, len(fk))
				}
				f, err := decodeFile(fv)
				if err != nil {
					return err
				}
				p := f.path
				if !filepath.IsAbs(p) {
					p = filepath.Join(rec.path, p)
				}
				r.files[p] = idFromKey(fk[8:])
			}
			return nil
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: reuse %s: %w", path, err)
	}
	return r, nil
}

// idFromKey decodes a big-endian id of 8 bytes.
func idFromKey(k []byte) uint64 {
	var id uint64
	for _, b := range k[:8] {
		id = id<<8 | uint64(b)
	}
	return id
}

// File returns the root and the chunks (in order, from offset 0, without a
// gap) that the share recorded for the file at path (absolute), if the file
// is there now as it was when they were hashed: a regular file on a file
// system that keeps stamps (stampFS) whose stamp (device, inode, size, mtime, ctime) is the one
// recorded, of size bytes modified at mtime. It opens the file to stat it,
// and reads nothing of it. It blocks on the database and the stat.
func (r *Reuser) File(path string, size int64, mtime time.Time) (cid.Cid, []ChunkLoc, bool) {
	no, ok := r.files[path]
	if !ok || r.id == 0 {
		return cid.Undef, nil, false
	}
	var (
		rec    fileRecord
		seal   *stampRecord
		chunks []ChunkLoc
	)
	err := r.s.view(func(tx *bolt.Tx) error {
		fv := tx.Bucket(bucketFiles).Get(fileKey(r.id, no))
		if fv == nil {
			return ErrNotFound
		}
		var err error
		if rec, err = decodeFile(fv); err != nil {
			return err
		}
		if seal, err = sealOfLocked(tx, r.id, no); err != nil || seal == nil {
			return ErrNotFound
		}
		if rec.size != size || rec.mtime != mtime.UnixNano() || seal.st.size != size || seal.st.mtime != rec.mtime {
			return ErrNotFound
		}
		// Hostile records: never more chunks than the file can hold,
		// each one where the last ended, all of them up to its size.
		maxChunks := int64(0)
		if size > 0 {
			maxChunks = size/int64(max(r.minChunk, 1)) + 1
		}
		prefix := fileKey(r.id, no)
		locs := tx.Bucket(bucketLocs)
		end := int64(0)
		cur := tx.Bucket(bucketRev).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			_, _, off, err := parseRevKey(k)
			if err != nil {
				return err
			}
			if int64(len(chunks)) >= maxChunks || off != end {
				return ErrNotFound
			}
			c, err := cid.Cast(v)
			if err != nil {
				return fmt.Errorf("%w: chunk CID: %v", ErrCorrupt, err)
			}
			lv := locs.Get(locKey(v, r.id, no, off))
			if lv == nil {
				return ErrNotFound
			}
			n, err := decodeLoc(lv)
			if err != nil {
				return err
			}
			if n == 0 || n > chunker.MaxSize || int64(n) > size-off {
				return ErrNotFound
			}
			chunks = append(chunks, ChunkLoc{CID: c, Offset: off, Size: n})
			end = off + int64(n)
		}
		if end != size {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return cid.Undef, nil, false
	}
	// The stamp's ctime must be safely older than the time the bytes were
	// hashed, so that they are the file's as of the stamp. AddFile records
	// a stamp only when that holds, so this is a guard: against a record
	// written before the hash time was kept (hashed 0: the file is hashed
	// again, once) and a database edited or damaged.
	if racy(seal.hashed, seal.st.ctime) || !r.unchanged(path, seal.st) {
		return cid.Undef, nil, false
	}
	r.gave[path] = *seal
	return rec.root, chunks, true
}

// unchanged reports whether the file at path is a regular file on a file
// system that gives stamps (stampFS) whose stamp now is st.
func (r *Reuser) unchanged(path string, st stamp) bool {
	f, fi, err := openRegular(path) // a FIFO: not unchanged, and no wait for a writer
	if err != nil {
		return false
	}
	defer f.Close()
	now, ok := stampOf(fi)
	return ok && now == st && r.s.stampFS(f)
}
