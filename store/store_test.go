package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/peer-project/peer/integrity"
)

func TestOpenReopen(t *testing.T) {
	s, path := openTest(t, Options{})
	c := integrity.Block([]byte{0xa0})
	if err := s.PutBlock(c, []byte{0xa0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v, want 0600", fi.Mode().Perm())
	}
	s2, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if ok, err := s2.HasBlock(c); !ok || err != nil {
		t.Fatalf("HasBlock after reopen = %v, %v", ok, err)
	}
	if err := checkConsistent(s2); err != nil {
		t.Fatal(err)
	}
}

func TestClosedStore(t *testing.T) {
	s, _ := openTest(t, Options{})
	s.Close()
	c := integrity.Block([]byte{0xa0})
	ctx := context.Background()
	checks := map[string]error{
		"PutBlock": s.PutBlock(c, []byte{0xa0}),
		"GetBlock": func() error { _, err := s.GetBlock(ctx, c); return err }(),
		"Shares":   func() error { _, err := s.Shares(); return err }(),
		"BeginShare": func() error {
			_, err := s.BeginShare(t.TempDir())
			return err
		}(),
		"ReadChunk": func() error { _, err := s.ReadChunk(ctx, integrity.Chunk(nil), nil); return err }(),
	}
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestOptionsInvalid(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{{Timeout: -1}} {
		if _, err := Open(filepath.Join(dir, "x.db"), o); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%+v) = %v, want ErrInvalid", o, err)
		}
	}
}

// TestObsoleteBucketsRemoved opens a database that an earlier build left with
// download progress records, which nothing reads any more: Open removes them
// and keeps everything else.
func TestObsoleteBucketsRemoved(t *testing.T) {
	s, path := openTest(t, Options{})
	data := []byte("kept")
	c := integrity.Block(data)
	if err := s.PutBlock(c, data); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"downloads", "have"} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			if err := b.Put([]byte("k"), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a database with the old download buckets: %v", err)
	}
	if got, err := s.GetBlock(context.Background(), c); err != nil || !bytes.Equal(got, data) {
		t.Errorf("block after Open = %q, %v; want it kept", got, err)
	}
	s.Close()
	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		for _, name := range []string{"downloads", "have"} {
			if tx.Bucket([]byte(name)) != nil {
				t.Errorf("bucket %q still there after Open", name)
			}
		}
		return nil
	})
}

func TestSchemaNewerRefused(t *testing.T) {
	s, path := openTest(t, Options{})
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, encodeSchema(SchemaVersion+1))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(path, Options{})
	if !errors.Is(err, ErrSchema) {
		t.Fatalf("Open of a newer schema = %v, want ErrSchema", err)
	}
	for _, want := range []string{fmt.Sprintf("schema version %d", SchemaVersion+1), "newer", "upgrade peer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// Refusing must leave the file unlocked and unchanged.
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("database still locked after a refused Open: %v", err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if v, _ := decodeSchema(tx.Bucket(bucketMeta).Get(keySchema)); v != SchemaVersion+1 {
			t.Errorf("schema version rewritten to %d", v)
		}
		return nil
	})
}

func TestNotAStore(t *testing.T) {
	dir := t.TempDir()
	// A bbolt database of some other program.
	other := filepath.Join(dir, "other.db")
	db, err := bolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err })
	db.Close()
	if _, err := Open(other, Options{}); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "not a peer store") {
		t.Errorf("Open of another program's database = %v, want ErrSchema", err)
	}
	// A file that is not a database at all.
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, bytes.Repeat([]byte("not a database "), 1000), 0o600)
	if _, err := Open(junk, Options{}); err == nil {
		t.Error("Open of a junk file succeeded")
	}
	// A corrupt schema value.
	bad := filepath.Join(dir, "bad.db")
	s, err := Open(bad, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte{0xff}) })
	s.Close()
	if _, err := Open(bad, Options{}); !errors.Is(err, ErrSchema) {
		t.Errorf("Open with a corrupt schema value = %v, want ErrSchema", err)
	}
}

func TestLocked(t *testing.T) {
	_, path := openTest(t, Options{})
	_, err := Open(path, Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

// logBuffer returns a logger writing to a buffer.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// stampV1 is a stamp record as schema version 1 wrote it: the stamp, and
// the time it was hashed unless withHashed is false (the records written
// before it was kept).
func stampV1(r stampRecord, withHashed bool) []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, r.st.dev)
	b = binary.AppendUvarint(b, r.st.ino)
	b = binary.AppendUvarint(b, uint64(r.st.size))
	b = binary.AppendVarint(b, r.st.mtime)
	b = binary.AppendVarint(b, r.st.ctime)
	if withHashed {
		b = binary.AppendVarint(b, r.hashed)
	}
	return b
}

// TestMigrateSchema1: a database of schema version 1 opens, Open rewrites
// its stamp records in place (a record with its hash time stays a seal, one
// without is none, an unreadable one is dropped with a log line), and its
// meta says SchemaVersion after; a second Open changes nothing.
func TestMigrateSchema1(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("stamps are kept on Linux only")
	}
	s, path := openTest(t, Options{Now: later})
	dir := t.TempDir()
	a := writeFile(t, dir, "a", content("a", 2*testChunk))
	b := writeFile(t, dir, "b", content("b", 2*testChunk))
	c := writeFile(t, dir, "c", content("c", 2*testChunk))
	shareFiles(t, s, dir, integrity.Block([]byte("r")), 10, a, b, c)
	recs := map[string]stampRecord{}
	s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStamps).ForEach(func(k, v []byte) error {
			r, err := decodeStamp(v)
			recs[string(k)] = r
			return err
		})
	})
	if len(recs) != 3 {
		t.Fatalf("%d stamp records, want 3", len(recs))
	}
	s.Close()

	// Back to what schema 1 wrote: a's record with its hash time, b's
	// without, c's unreadable.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*stampRecord{}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keySchema, binary.AppendUvarint(nil, 1)); err != nil {
			return err
		}
		st := tx.Bucket(bucketStamps)
		for k, r := range recs {
			var v []byte
			switch no := binary.BigEndian.Uint64([]byte(k)[8:]); no {
			case 0:
				v, want[k] = stampV1(r, true), &r
			case 1:
				v, want[k] = stampV1(r, false), &stampRecord{st: r.st}
			case 2:
				v = []byte{1, 0xff}
			}
			if err := st.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	for round := range 2 {
		logger, logs := logBuffer()
		s2, err := reopen(path, Options{Now: later, Logger: logger})
		if err != nil {
			t.Fatalf("round %d: Open of a schema 1 database: %v", round, err)
		}
		if err := checkConsistent(s2); err != nil {
			t.Fatal(err)
		}
		var version uint64
		got := map[string]*stampRecord{}
		s2.db.View(func(tx *bolt.Tx) error {
			version, _ = decodeSchema(tx.Bucket(bucketMeta).Get(keySchema))
			return tx.Bucket(bucketStamps).ForEach(func(k, v []byte) error {
				r, err := decodeStamp(v)
				got[string(k)] = &r
				return err
			})
		})
		if version != SchemaVersion {
			t.Fatalf("round %d: schema version %d after Open, want %d", round, version, SchemaVersion)
		}
		if len(got) != 2 || *got[keyOf(want, 0)] != *want[keyOf(want, 0)] || *got[keyOf(want, 1)] != *want[keyOf(want, 1)] {
			t.Fatalf("round %d: records after Open %v, want %v", round, got, want)
		}
		if dropped := strings.Contains(logs.String(), "dropped unreadable seals"); dropped != (round == 0) {
			t.Errorf("round %d: log %q", round, logs)
		}
		readAll(t, a, s2.ReadChunk) // sealed: not hashed
		if n := s2.hashed.Load(); n != 0 {
			t.Fatalf("round %d: a sealed file of the old database: %d chunks hashed", round, n)
		}
		readAll(t, b, s2.ReadChunk) // no hash time: no seal
		if n := s2.hashed.Load(); n != int64(len(b.chunks)) {
			t.Fatalf("round %d: a file whose record had no hash time: %d chunks hashed, want %d", round, n, len(b.chunks))
		}
		s2.Close()
	}
}

// keyOf returns the key of file no in m, whose keys are fileKeys of one
// share.
func keyOf(m map[string]*stampRecord, no uint64) string {
	for k := range m {
		if binary.BigEndian.Uint64([]byte(k)[8:]) == no {
			return k
		}
	}
	return ""
}
