package store

import (
	"encoding/binary"
	"fmt"
)

// Buckets and their keys. Integers in keys are big-endian so that a bucket
// iterates them in numeric order and a prefix selects one share or file.
var (
	// meta: "schema" → uvarint schema version.
	bucketMeta = []byte("meta")
	// blocks: CID → the block's bytes, verbatim (the CID is their check).
	bucketBlocks = []byte("blocks")
	// shares: id (8) → shareRecord.
	bucketShares = []byte("shares")
	// roots: root CID → id (8), committed shares only.
	bucketRoots = []byte("roots")
	// files: id (8) | fileNo (8) → fileRecord.
	bucketFiles = []byte("files")
	// locs: chunk CID (36) | id (8) | fileNo (8) | offset (8) → size.
	bucketLocs = []byte("locs")
	// rev: id (8) | fileNo (8) | offset (8) → chunk CID, to remove a share's
	// locations without its chunk list.
	bucketRev = []byte("rev")

	allBuckets = [][]byte{bucketMeta, bucketBlocks, bucketShares, bucketRoots, bucketFiles,
		bucketLocs, bucketRev}

	// obsoleteBuckets held download progress records ("downloads": root →
	// record, "have": root | page → bitfield page) that were written and
	// never read: a resumed fetch re-verifies its partial file instead.
	// Open removes them from a database that still has them.
	obsoleteBuckets = [][]byte{[]byte("downloads"), []byte("have")}

	keySchema = []byte("schema")
)

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func fileKey(id, fileNo uint64) []byte {
	return binary.BigEndian.AppendUint64(idKey(id), fileNo)
}

func revKey(id, fileNo uint64, off int64) []byte {
	return binary.BigEndian.AppendUint64(fileKey(id, fileNo), uint64(off))
}

func locKey(c []byte, id, fileNo uint64, off int64) []byte {
	k := make([]byte, 0, len(c)+24)
	k = append(k, c...)
	return append(k, revKey(id, fileNo, off)...)
}

// parseRevKey splits id | fileNo | offset.
func parseRevKey(k []byte) (id, fileNo uint64, off int64, err error) {
	if len(k) != 24 {
		return 0, 0, 0, fmt.Errorf("%w: location key of %d bytes", ErrCorrupt, len(k))
	}
	off = int64(binary.BigEndian.Uint64(k[16:]))
	if off < 0 {
		return 0, 0, 0, fmt.Errorf("%w: negative offset in location key", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(k[8:]), off, nil
}

// parseLocKey splits chunk CID | id | fileNo | offset.
func parseLocKey(k []byte) (c []byte, id, fileNo uint64, off int64, err error) {
	if len(k) != cidLen+24 {
		return nil, 0, 0, 0, fmt.Errorf("%w: location key of %d bytes", ErrCorrupt, len(k))
	}
	id, fileNo, off, err = parseRevKey(k[cidLen:])
	return k[:cidLen], id, fileNo, off, err
}
