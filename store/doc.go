// Package store keeps a node's state in one bbolt database file: the
// interior nodes of roots' DAGs and the index of shared files.
//
// # Blocks
//
// PutBlock and PutBlocks store blocks (dag-pb nodes, or the raw root of a
// fetched file of one chunk; at most MaxBlockSize bytes) after verifying
// them against their CID; GetBlock verifies them again on the way out, and
// reads a raw block it does not hold from the shared files. The store
// never parses them.
//
// # Shares
//
// Shared files are indexed in place, never copied: for every chunk the store
// records the file, the offset and the size, and the file's size and
// modification time when it was read. A share is built in steps so that a
// huge folder never sits in one transaction, and many small files do not
// each cost one (AddFile gathers about a megabyte of index per transaction):
//
//	t, err := st.BeginShare(dir)
//	defer t.Abort() // no-op after Commit
//	for each file, in batches of a few thousand chunks:
//		err = t.AddFile(path, size, mtime, fileRoot, chunks)
//	err = t.Commit(root, store.ShareInfo{Name: ..., Chunking: params})
//
// Until Commit nothing of the share is visible; if the process dies first, the
// next Open removes it. Unshare removes a share in bounded batches the same
// way. ReadChunk serves a chunk from the first location whose file still has
// the indexed size and modification time and whose bytes still hash to the
// chunk's CID; a location that fails marks its share Stale, so a file edited
// behind the store's back is never served as the old content. A chunk that
// hashed right is served again without hashing while its file's stamp
// (device, inode, size, mtime and ctime, taken after the read) is what it
// was, when nothing could write the file before the read that hashed it
// (a read lease, taken and released at once), or else for files last
// changed over a minute before (proof.go says why that is the same
// guarantee). A file is sealed at share time on the same grounds:
// when the import tells ShareTx.Opened, before it reads the file, and
// nothing can write it, or when it was last changed over a minute before
// its share began. Its stamp is kept in the database beside its record,
// and its chunks are served without hashing from the first read on, across
// restarts (index.go). A file written and closed just before it is shared
// is thus sealed at once.
//
// Stamps (proofs, seals, reuse) are kept only on the disk file systems of
// an allow-list, where a write through a shared mapping moves the time as
// a write does: ext2/3/4, xfs, btrfs, f2fs, bcachefs, zfs (stampFS in
// proof_linux.go says why). On any other (tmpfs, where a mapping writes
// without moving it; overlayfs; FAT; network file systems), and on systems
// other than Linux, every chunk is hashed each time it is served, and
// every file each time it is shared: slower, never wrong.
//
// # Sharing again
//
// The stamp is kept for every file last changed safely before its share
// began (racyAge, git's "racy" rule), on the file systems above, and a
// share of the same path again asks a Reuser for each file: one whose
// stamp is still the recorded one gets its recorded root and chunks back,
// and is not read or hashed again (reuse.go).
//
// # The chunk index
//
// Every chunk of every share, and of every finished download (the node
// adopts it as a share), is found by its CID with one seek (Locations,
// LocationsUpTo, HasChunk). A fetch takes the places LocationsUpTo names
// and copies a chunk from the first whose bytes still hash to it, instead
// of asking the swarm (which reads and hashes them itself: swarm/local.go).
// It costs some IndexBytesPerChunk bytes per chunk on disk.
//
// # On disk
//
// Schema version SchemaVersion is kept in bucket "meta"; Open migrates a
// database of an older version in place, in one transaction, and refuses
// one of a newer version (ErrSchema). Keys are binary CIDs and
// big-endian integers; see keys.go for every bucket. Each value starts with
// a record version byte (1), followed by its fields: unsigned integers as
// uvarints, times as zig-zag varints of Unix nanoseconds, strings and CIDs
// as a uvarint length and the bytes, flags as one byte. Block values are the
// block bytes verbatim. Every value read back is decoded defensively: each
// length is checked against the bytes left and a hard limit before use, and
// a bad record is an error wrapping ErrCorrupt, never a panic or a huge
// allocation.
//
// bbolt commits are atomic and, unless Options.NoSync is set, durable, so the
// database is consistent after kill -9 or a power cut.
//
// # Concurrency
//
// A Store is safe for concurrent use and starts no goroutines. Reads run in
// parallel; writes are serialized by bbolt, each one a committed
// transaction. No lock of the store is held across file I/O.
package store
