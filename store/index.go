package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// The chunk index: every chunk of every share (a finished download is
// adopted as one) is findable by its CID with one cursor seek in bucket
// locs, and its file's record with one get each in files, shares and
// stamps. A fetch asks it for places to copy a chunk from before it asks
// the swarm (LocationsUpTo; the swarm reads and hashes them); the serve path
// asks it for the seal below.
//
// Stamps and seals: what a share records of a file's state. AddFile
// records, beside a file's record, the file's stamp (device, inode, size,
// modification and change times) as it is after the chunks AddFile indexes
// were read and hashed, when that stamp proves the file unchanged since
// then: its change time (ctime) is at least racyAge older than the start of
// the share (BeginShare), which is earlier than any hash of it (git's
// "racy" rule: a change in the same timestamp tick as the start could leave
// ctime where it was). Any write, truncate, rename over or chmod after that
// sets ctime to a later clock tick, so a file whose stamp is still the
// recorded one still holds the bytes that were hashed, on the file systems
// of stampFS's allow-list only, as for the in-memory proofs (proof.go):
// elsewhere (tmpfs, where a write through a mapping need not move the
// time; overlayfs; network file systems) no stamp is recorded, and a
// record written there by an older version is no seal (readLocation asks
// stampFS on every read) and is not reused (Reuser asks it too).
//
// Two things rest on a stamp:
//   - A seal: when nothing could write the file as its import began to
//     read it (ShareTx.Opened: a read lease granted on the descriptor the
//     import reads, and the stamp then is the stamp after the hash: the
//     record's noWriter), or else when the stamp's ctime is proofAge older
//     than the time the bytes were hashed (the in-memory proofs' two
//     grounds, proof.go), ReadChunk serves the file's chunks without
//     hashing them, across restarts; the first serve no longer hashes. A
//     file written and closed just before its share is thus sealed at
//     once, unless something still has it open for writing or mapped.
//   - Reuse (reuse.go): a share of the same path again takes the chunks a
//     file's record lists instead of reading and hashing the file, when its
//     stamp now is the recorded one.
//
// The record keeps the time the bytes were hashed: the start of the share
// that read them, carried by every share that reused them since, so that
// a reuse never turns a stamp too young to seal into a seal.
//
// A stamp is one record per file (some 50 bytes), not per chunk: the
// index's cost per chunk stays that of locs and rev (see IndexBytesPerChunk).

// racyAge is how much older than a share's start a file's ctime must be
// for its stamp to be recorded: more than one timestamp tick of the file
// systems that keep fine times (the kernel stamps them from its coarse
// clock, up to a jiffy, 10 ms at HZ=100, behind the clock a share is dated
// by, and exFAT keeps 10 ms) with room to spare.
const racyAge = 50 * time.Millisecond

// racyAgeCoarse replaces racyAge for a ctime of whole seconds: one from a
// file system that keeps seconds (ext4 with small inodes, HFS+) or two
// (FAT), where a change a second after the share's start may keep it.
const racyAgeCoarse = 3 * time.Second

// racy reports whether a file last changed at ctime (ns since the epoch)
// may have changed again, unseen, after a share started at began: git's
// racily clean entry.
func racy(began, ctime int64) bool {
	age := int64(racyAge)
	if ctime%int64(time.Second) == 0 {
		age = int64(racyAgeCoarse)
	}
	return began-ctime < age
}

// bucketStamps: id (8) | fileNo (8) → stampRecord, the file's stamp (a
// seal, or for reuse only: stampRecord.sealed). A bucket added after
// schema version 1 was first written: Open creates it in a database that
// lacks it (an older database simply has no seals).
var bucketStamps = []byte("stamps")

// addedBuckets are created by Open in an existing database that lacks them.
var addedBuckets = [][]byte{bucketStamps}

// IndexBytesPerChunk is what one indexed chunk costs in the database, as
// measured by TestIndexSize (332 bytes, 1 MiB chunks, 4096 of them, with
// bbolt's page fill; 278 when each AddFile was its own transaction, but
// the batched writes split more pages), with some room: the keys and
// values of locs (chunk CID 36 + 24, size 2-4) and rev (24, CID 36) and
// bbolt's element headers and page slack. A 1 TiB share of 1 MiB chunks
// (1 Mi chunks) costs some 330 MiB of index.
const IndexBytesPerChunk = 384

// stampRecord is the value of stamps[id, fileNo]: the file's stamp, and
// when the bytes its chunks hold were hashed (Unix ns): the start of the
// share whose import read them, carried over by each share that reused
// them since (reuse.go). hashed is 0 in a record migrated from one written
// before it was kept: such a stamp is neither a seal nor reused (the next
// share hashes the file once again). noWriter says that nothing could
// write the file when its import began to read it (a read lease was
// granted: noWriter in proof_linux.go), so that the stamp is a seal as
// soon as it is not racy; it is carried over with hashed.
type stampRecord struct {
	st       stamp
	hashed   int64
	noWriter bool
}

// sealed reports whether r is a seal: whether its file's chunks may be
// served without hashing while the file's stamp is r's (index.go).
func (r stampRecord) sealed() bool {
	if r.noWriter {
		return !racy(r.hashed, r.st.ctime)
	}
	return r.hashed-r.st.ctime >= int64(proofAge)
}

// Flags of a stampRecord.
const stampNoWriter = 1 << 0

// encodeStamp encodes the value of stamps[id, fileNo] (schema version 2).
func encodeStamp(r stampRecord) []byte {
	b := appendStampV1(r)
	var flags byte
	if r.noWriter {
		flags |= stampNoWriter
	}
	return append(b, flags)
}

// appendStampV1 encodes the fields a stamp record of schema version 1
// holds: the stamp, and the time it was hashed (absent from the earliest).
func appendStampV1(r stampRecord) []byte {
	b := []byte{recordVersion}
	b = binary.AppendUvarint(b, r.st.dev)
	b = binary.AppendUvarint(b, r.st.ino)
	b = binary.AppendUvarint(b, uint64(r.st.size))
	b = binary.AppendVarint(b, r.st.mtime)
	b = binary.AppendVarint(b, r.st.ctime)
	return binary.AppendVarint(b, r.hashed)
}

// decodeStamp decodes the value of stamps[id, fileNo]; every field is
// there since schema version 2 (Open migrates older records).
func decodeStamp(v []byte) (stampRecord, error) {
	d := decoder{b: v, what: "stamp"}
	r := d.stampFields()
	r.hashed = d.varint()
	flags := d.byte()
	if err := d.finish(); err != nil {
		return stampRecord{}, err
	}
	if flags&^stampNoWriter != 0 {
		return stampRecord{}, d.errorf("unknown flags %#x", flags)
	}
	r.noWriter = flags&stampNoWriter != 0
	return r, nil
}

// decodeStampV1 decodes a stamp record of schema version 1, for the
// migration: the stamp, then the time it was hashed, which the records
// written before it was kept lack (0: no seal, no reuse).
func decodeStampV1(v []byte) (stampRecord, error) {
	d := decoder{b: v, what: "stamp (schema 1)"}
	r := d.stampFields()
	if d.err == nil && len(d.b) > 0 {
		r.hashed = d.varint()
	}
	if err := d.finish(); err != nil {
		return stampRecord{}, err
	}
	return r, nil
}

// stampFields reads the record version and the stamp.
func (d *decoder) stampFields() stampRecord {
	var r stampRecord
	d.version()
	r.st.dev = d.uvarint()
	r.st.ino = d.uvarint()
	r.st.size = d.int64()
	r.st.mtime = d.varint()
	r.st.ctime = d.varint()
	return r
}

// sealOf returns the stamp of the file at path if it may record chunks
// read and hashed from it since began: a regular file on a file system
// that gives stamps (stampFS), of the size and modification time the
// caller indexes, last changed at least racyAge before began.
func (s *Store) sealOf(path string, size int64, mtime int64, began time.Time) (stamp, bool) {
	f, fi, err := openRegular(path) // a FIFO: no seal, and no wait for a writer
	if err != nil {
		return stamp{}, false
	}
	defer f.Close()
	st, ok := stampOf(fi)
	if !ok || st.size != size || st.mtime != mtime || !s.stampFS(f) {
		return stamp{}, false
	}
	if racy(began.UnixNano(), st.ctime) {
		return stamp{}, false
	}
	return st, true
}

// sealLocked records or removes the seal of file fileNo of share id.
func sealLocked(tx *bolt.Tx, id, fileNo uint64, r stampRecord, ok bool) error {
	b := tx.Bucket(bucketStamps)
	if !ok {
		return b.Delete(fileKey(id, fileNo))
	}
	return b.Put(fileKey(id, fileNo), encodeStamp(r))
}

// sealOfLocked returns the seal of file fileNo of share id, if it has one.
func sealOfLocked(tx *bolt.Tx, id, fileNo uint64) (*stampRecord, error) {
	v := tx.Bucket(bucketStamps).Get(fileKey(id, fileNo))
	if v == nil {
		return nil, nil
	}
	r, err := decodeStamp(v)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// LocationsUpTo returns up to limit of the places chunk c is indexed at
// in committed shares, as Locations does: one seek in the index, no file
// read. It is safe for concurrent use.
func (s *Store) LocationsUpTo(c cid.Cid, limit int) ([]Location, error) {
	if limit < 0 {
		return nil, ErrInvalid
	}
	return s.locations(c, limit)
}

// SharedFile is a file of a share as it was indexed.
type SharedFile struct {
	Path    string // absolute
	Size    int64
	ModTime time.Time
}

// SharedFilesAt returns the files of the committed shares of path (made
// absolute), as they were indexed, in no particular order. It reads the
// database only; it is safe for concurrent use.
func (s *Store) SharedFilesAt(path string) ([]SharedFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: files of %s: %w", path, err)
	}
	var out []SharedFile
	err = s.view(func(tx *bolt.Tx) error {
		files := tx.Bucket(bucketFiles)
		return tx.Bucket(bucketShares).ForEach(func(k, v []byte) error {
			rec, err := decodeShare(v)
			if err != nil {
				return err
			}
			if rec.state != stateCommitted || rec.path != abs {
				return nil
			}
			cur := files.Cursor()
			for fk, fv := cur.Seek(k); fk != nil && bytes.HasPrefix(fk, k); fk, fv = cur.Next() {
				f, err := decodeFile(fv)
				if err != nil {
					return err
				}
				p := f.path
				if !filepath.IsAbs(p) {
					p = filepath.Join(rec.path, p)
				}
				out = append(out, SharedFile{Path: p, Size: f.size, ModTime: time.Unix(0, f.mtime)})
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: files of %s: %w", path, err)
	}
	return out, nil
}

// HasChunk reports whether some committed share indexes chunk c, without
// reading any file: one seek, however many files hold c. It is safe for
// concurrent use.
func (s *Store) HasChunk(c cid.Cid) (bool, error) {
	locs, err := s.locations(c, 1)
	if err != nil {
		return false, err
	}
	return len(locs) > 0, nil
}

// sealFor returns the stamp to record for file rec of t (see sealOf), the
// file's next batch if same, with the time its bytes were hashed: the
// share's start, or for a file whose chunks t's Reuser gave, the time the
// share that hashed them recorded (a stamp 1 s old there is no seal here
// however late this share started: its bytes were not hashed again). A
// file that Reuser gave keeps the record it was given by, without being
// opened again: Reuser.File opened it and found that stamp, and a stamp
// says what the file holds while the file has it, whenever it is checked.
// Should the file change between the two, its stamp moves (a later ctime)
// and the record no longer matches it: ReadChunk hashes what it serves
// and the next share reads the file again, as if it were not sealed. A
// file given for another size or modification time than rec's gets no
// stamp at all: its chunks were not hashed from what rec describes.
//
// It opens the file only when a stamp may come of it: not on a system
// without stamps, not for a later batch of a file whose earlier one was
// not stamped, not for a file Reuser gave, and not for a file modified
// within racyAge of the share's start (a download just written and
// adopted as a share): its ctime, which no call sets back, is at least as
// recent unless its mtime was set to the future, which only costs that
// file its stamp.
func (t *ShareTx) sealFor(rec fileRecord, same bool) (stampRecord, bool) {
	if !stamps || (same && !t.curOK) || t.began.UnixNano()-rec.mtime < int64(racyAge) {
		return stampRecord{}, false
	}
	path := t.abs(rec.path)
	if t.reuser != nil {
		if h, reused := t.reuser.gave[path]; reused {
			// Its chunks are the bytes Reuser.File found: no seal of
			// this share's time, whatever the file holds now.
			return h, h.st.size == rec.size && h.st.mtime == rec.mtime
		}
	}
	t.s.sealOpens.Add(1)
	st, ok := t.s.sealOf(path, rec.size, rec.mtime, t.began)
	if !ok {
		return stampRecord{}, false
	}
	w, tested := t.unwritten[path]
	return stampRecord{st: st, hashed: t.began.UnixNano(), noWriter: tested && w == st}, true
}
