package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// MaxBlockSize is the largest block the store accepts: the largest chunk,
// which a file of one chunk has as its root (every dag-pb node is far
// smaller).
const MaxBlockSize = chunker.MaxSize

// Block is a block of a root's DAG: an interior dag-pb node, or the raw
// root of a file of one chunk fetched from a peer.
type Block struct {
	CID  cid.Cid
	Data []byte
}

// checkBlock verifies a block before it is stored.
func checkBlock(b Block) error {
	if err := integrity.Check(b.CID); err != nil {
		return fmt.Errorf("store: put block: %w", err)
	}
	if len(b.Data) > MaxBlockSize {
		return fmt.Errorf("%w: block %s of %d bytes exceeds %d", ErrInvalid, b.CID, len(b.Data), MaxBlockSize)
	}
	if err := integrity.Verify(b.CID, b.Data); err != nil {
		return fmt.Errorf("store: put block: %w", err)
	}
	return nil
}

// PutBlock stores a block after checking that data hashes to c, a dag-pb or
// raw CID; a mismatch returns a *integrity.MismatchError. Storing a
// block that is already there does nothing. The store treats the bytes as
// opaque. PutBlock blocks on one committed transaction; it is safe for
// concurrent use.
func (s *Store) PutBlock(c cid.Cid, data []byte) error {
	return s.PutBlocks([]Block{{CID: c, Data: data}})
}

// PutBlocks stores blocks in one transaction: all of them or, if one fails its
// check, none. It blocks on one committed transaction; it is safe for
// concurrent use.
func (s *Store) PutBlocks(blocks []Block) error {
	for _, b := range blocks {
		if err := checkBlock(b); err != nil {
			return err
		}
	}
	if len(blocks) == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketBlocks)
		for _, b := range blocks {
			k := b.CID.Bytes()
			if bk.Get(k) != nil {
				continue
			}
			if err := bk.Put(k, b.Data); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetBlock returns a copy of the block c, verified again against c so that a
// damaged database never yields wrong bytes (that returns an error wrapping
// ErrCorrupt). A raw block that is not stored is read from a shared file
// as ReadChunk does (the root of a shared file of one chunk is that chunk).
// It returns an error wrapping ErrNotFound when the block is absent. It
// reads from the database without waiting for writers; it is safe for
// concurrent use. It satisfies unixfs.Getter.
func (s *Store) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := s.getBlock(ctx, c)
	if errors.Is(err, ErrNotFound) && c.Prefix().Codec == integrity.Raw {
		return s.ReadChunk(ctx, c, nil)
	}
	return data, err
}

func (s *Store) getBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var data []byte
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketBlocks).Get(c.Bytes())
		if v == nil {
			return fmt.Errorf("%w: block %s", ErrNotFound, c)
		}
		data = append([]byte(nil), v...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := integrity.Verify(c, data); err != nil {
		return nil, fmt.Errorf("%w: block %s: %w", ErrCorrupt, c, err)
	}
	return data, nil
}

// HasBlock reports whether block c is stored. It is safe for concurrent use.
func (s *Store) HasBlock(c cid.Cid) (bool, error) {
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketBlocks).Get(c.Bytes()) != nil
		return nil
	})
	return ok, err
}
