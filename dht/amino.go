package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	kad "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// AminoPrefix is the protocol prefix of the public IPFS DHT (Amino): its
// protocol is /ipfs/kad/1.0.0. A Config with Amino set speaks it.
const AminoPrefix protocol.ID = kad.DefaultPrefix

// AminoProtocol is the protocol ID of the Amino DHT.
const AminoProtocol = AminoPrefix + "/kad/1.0.0"

// Bounds of the values (IPNS and public-key records) an Amino server keeps
// for others: the Amino DHT requires every server to store them, so they
// are capped like provider records. kad-dht refuses an IPNS record over
// 10 KiB; a public key is smaller.
const (
	DefaultMaxValues = 4096
	maxValueBytes    = 16 << 10
)

// ErrValuesFull is returned (to the peer that sent a value) when a server
// keeps DefaultMaxValues values already.
var ErrValuesFull = errors.New("dht: value store full")

// AminoBootstrapPeers returns the public bootstrap peers that
// go-libp2p-kad-dht ships (dht.DefaultBootstrapPeers): the list a node of
// the public network joins through when its Config names none. Nothing of
// this package dials them unless a Config carries them.
func AminoBootstrapPeers() []peer.AddrInfo {
	return kad.GetDefaultBootstrapPeerAddrInfos()
}

// valueStore is the datastore of an Amino server's values: a map in
// memory that refuses a new key past max entries and any value past
// maxValueBytes, so a peer that publishes junk cannot fill the node's
// memory. kad-dht validates each record before it stores it and drops
// expired ones. It is safe for concurrent use.
type valueStore struct {
	max int

	mu sync.Mutex
	m  ds.Batching // a MapDatastore, guarded by mu
	n  int
}

var _ ds.Batching = (*valueStore)(nil)

func newValueStore(max int) *valueStore {
	return &valueStore{max: max, m: ds.NewMapDatastore()}
}

func (s *valueStore) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Get(ctx, k)
}

func (s *valueStore) Has(ctx context.Context, k ds.Key) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Has(ctx, k)
}

func (s *valueStore) GetSize(ctx context.Context, k ds.Key) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.GetSize(ctx, k)
}

// Query returns a snapshot, so the caller may read it at leisure.
func (s *valueStore) Query(ctx context.Context, q dsq.Query) (dsq.Results, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.m.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	all, err := r.Rest()
	if err != nil {
		return nil, err
	}
	return dsq.ResultsWithEntries(q, all), nil
}

func (s *valueStore) Put(ctx context.Context, k ds.Key, v []byte) error {
	if len(v) > maxValueBytes {
		return fmt.Errorf("dht: value of %d bytes over the %d-byte limit", len(v), maxValueBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	had, err := s.m.Has(ctx, k)
	if err != nil {
		return err
	}
	if !had && s.n >= s.max {
		return ErrValuesFull
	}
	if err := s.m.Put(ctx, k, v); err != nil {
		return err
	}
	if !had {
		s.n++
	}
	return nil
}

func (s *valueStore) Delete(ctx context.Context, k ds.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	had, err := s.m.Has(ctx, k)
	if err != nil || !had {
		return err
	}
	if err := s.m.Delete(ctx, k); err != nil {
		return err
	}
	s.n--
	return nil
}

func (s *valueStore) Sync(context.Context, ds.Key) error { return nil }
func (s *valueStore) Close() error                       { return nil }

// Batch applies each operation through Put and Delete, caps included.
func (s *valueStore) Batch(context.Context) (ds.Batch, error) { return ds.NewBasicBatch(s), nil }
