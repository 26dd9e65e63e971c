package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
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
	for _, want := range []string{"schema version 2", "newer", "upgrade peer"} {
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
