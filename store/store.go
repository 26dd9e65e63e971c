package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the version of the database layout this package writes.
// Open records it in a new database, migrates one of an older version in
// place (migrateLocked), and refuses one of a newer version.
//
// Version 2 added a field to the stamp records (index.go); an older binary
// refuses a version 2 database with ErrSchema instead of misreading it.
const SchemaVersion = 2

// Defaults of Options.
const DefaultTimeout = time.Second

// Errors of the store. Every error a method returns wraps one of these or
// comes from the operating system, integrity or the context.
var (
	// ErrNotFound: no such block, share, chunk or download.
	ErrNotFound = errors.New("store: not found")
	// ErrStale: every place a chunk was indexed at has changed since it was
	// indexed, so it cannot be served. It wraps ErrNotFound, so callers that
	// only need "can't serve this" test for ErrNotFound.
	ErrStale = fmt.Errorf("store: indexed file changed on disk (%w)", ErrNotFound)
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrSchema: the database was written by a newer version of peer, or is
	// not a peer store at all.
	ErrSchema = errors.New("store: unsupported database schema")
	// ErrLocked: another process holds the database open.
	ErrLocked = errors.New("store: database in use by another process")
	// ErrCorrupt: a record read from disk does not decode.
	ErrCorrupt = errors.New("store: corrupt record")
	// ErrInvalid: an argument is out of range or malformed.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrShareDone: a ShareTx was used after Commit or Abort.
	ErrShareDone = errors.New("store: share already committed or aborted")
)

// Options configure Open. The zero value is ready to use.
type Options struct {
	// NoSync skips fsync after each commit: much faster, for simulations and
	// tests only. A crash of the process (kill -9) still leaves a consistent
	// database; a crash of the machine may lose or corrupt it.
	NoSync bool
	// Timeout bounds the wait for another process to release the database
	// file. Zero means DefaultTimeout; it must not be negative.
	Timeout time.Duration
	// Logger receives the few events worth a line (unfinished shares removed
	// at Open, shares found stale). Nil discards them.
	Logger *slog.Logger
	// Now is the clock for Created times and for the age of a file's last
	// change when ReadChunk decides whether a verified chunk gets a proof
	// (proof.go). Nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	if o.Timeout < 0 {
		return o, fmt.Errorf("%w: negative Timeout", ErrInvalid)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Store is the node's state in one bbolt database file. It is safe for
// concurrent use by many goroutines and starts none of its own. Only one
// process can hold a database open at a time.
type Store struct {
	db   *bolt.DB
	opts Options
	log  *slog.Logger

	closed    atomic.Bool
	closeOnce sync.Once

	proofs    proofs       // that shared files still hold chunks ReadChunk hashed
	hashed    atomic.Int64 // chunks readLocation hashed: what proofs and seals spare
	sealOpens atomic.Int64 // files AddFile opened to seal them (index.go)

	// stampFS reports whether a file lies on a file system where its stamp
	// moves with every change (stampFS in proof_linux.go): seals, proofs,
	// reuse and leases rest on it. Tests make it true to test the stamp
	// logic wherever the temporary folder lies, false to stand for tmpfs or
	// a network file system.
	stampFS func(*os.File) bool
	// lease reports whether a read lease on a file open read-only was
	// granted (noWriter); tests make it false to stand for one refused (a
	// writer, another owner, leases disabled).
	lease func(*os.File) bool
}

// Open opens the database at path, creating it (mode 0600) if it does not
// exist. It records SchemaVersion in a new database, refuses one written
// under a newer schema with an error wrapping ErrSchema, and removes the
// traces of shares a crash left unfinished. It fails with ErrLocked when
// another process keeps the file open past opts.Timeout.
//
// Open blocks on disk I/O. On error nothing stays open.
func Open(path string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opts.Timeout,
		NoSync:       opts.NoSync,
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %v)", ErrLocked, path, opts.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db, opts: opts, log: opts.Logger, stampFS: stampFS, lease: noWriter}
	if err := s.initSchema(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := s.removeUnfinished(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return s, nil
}

// initSchema creates the buckets of a new database, or checks the version of
// an existing one.
func (s *Store) initSchema() error {
	dropped := 0 // seals the migration dropped
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			if err := tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil }); err != nil {
				return err
			}
			if !empty {
				return fmt.Errorf("%w: no schema version: not a peer store", ErrSchema)
			}
			for _, name := range slices.Concat(allBuckets, addedBuckets) {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(keySchema, encodeSchema(SchemaVersion))
		}
		v, err := decodeSchema(meta.Get(keySchema))
		if err != nil {
			return fmt.Errorf("%w: unreadable schema version: %v", ErrSchema, err)
		}
		switch {
		case v > SchemaVersion:
			return fmt.Errorf("%w: database has schema version %d, newer than this program's %d: upgrade peer",
				ErrSchema, v, SchemaVersion)
		case v < 1:
			return fmt.Errorf("%w: database has schema version %d, older than any this program reads (1 to %d)",
				ErrSchema, v, SchemaVersion)
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: bucket %q missing", ErrSchema, name)
			}
		}
		for _, name := range addedBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if v < SchemaVersion {
			var err error
			if dropped, err = migrateLocked(tx, v); err != nil {
				return fmt.Errorf("migrating schema version %d to %d: %w", v, SchemaVersion, err)
			}
		}
		// Buckets that earlier builds wrote and nothing reads any more.
		for _, name := range obsoleteBuckets {
			if tx.Bucket(name) != nil {
				if err := tx.DeleteBucket(name); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil && dropped > 0 {
		s.log.Warn("store: dropped unreadable seals while migrating the database; their files are hashed again when served",
			"count", dropped)
	}
	return err
}

// Close closes the database. It waits for the operations in flight; later
// calls to other methods return ErrClosed. Close is idempotent: calls after
// the first return nil.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		err = s.db.Close()
	})
	return err
}

func (s *Store) view(fn func(*bolt.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return mapErr(s.db.View(fn))
}

func (s *Store) update(fn func(*bolt.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return mapErr(s.db.Update(fn))
}

func mapErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// openRegular opens the file at path to read and returns it with its
// FileInfo, or an error wrapping errNotRegular when it is not a regular
// file now. It never waits for a FIFO's writer (openFlags), and needs one
// path lookup: the mode is checked on the open file, so nothing can swap
// the path between the check and the open.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fi, fmt.Errorf("%w: %s is %s", errNotRegular, path, fi.Mode().Type())
	}
	return f, fi, nil
}

// Hashed returns how many chunks ReadChunk has hashed since Open: the
// work proofs and seals spare (proof.go, index.go). It is safe for
// concurrent use.
func (s *Store) Hashed() int64 { return s.hashed.Load() }

// unwritten reports whether nothing can write f's file now without moving
// its stamp first: f (open read-only) lies on a file system where a read
// lease proves it (stampFS) and one was granted (noWriter).
func (s *Store) unwritten(f *os.File) bool {
	return stamps && s.stampFS(f) && s.lease(f)
}

// errNotRegular: a path that was indexed as a file is something else now.
var errNotRegular = errors.New("store: not a regular file")

// migrateLocked brings a database of schema version v (older than
// SchemaVersion) to SchemaVersion in tx, the transaction of Open that
// checked it: all or nothing.
//
// Version 1 to 2: every stamp record gains its flags byte (stampRecord),
// and a record written before the hash time was kept gets hashed 0 (no
// seal, no reuse: the file is hashed once again). A stamp record that does
// not decode is dropped (and counted: Open logs it): a stamp only spares
// work, and without it the file is hashed again when served or shared.
func migrateLocked(tx *bolt.Tx, v uint64) (dropped int, err error) {
	if v == 1 {
		b := tx.Bucket(bucketStamps)
		var keys, vals [][]byte
		// Collected first: bbolt forbids writing a bucket while a cursor
		// walks it.
		err := b.ForEach(func(k, v []byte) error {
			keys = append(keys, bytes.Clone(k))
			if r, err := decodeStampV1(v); err == nil {
				vals = append(vals, encodeStamp(r))
			} else {
				vals = append(vals, nil)
				dropped++
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		for i, k := range keys {
			if vals[i] == nil {
				err = b.Delete(k)
			} else {
				err = b.Put(k, vals[i])
			}
			if err != nil {
				return 0, err
			}
		}
		v = 2
	}
	return dropped, tx.Bucket(bucketMeta).Put(keySchema, encodeSchema(v))
}
