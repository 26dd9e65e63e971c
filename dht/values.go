package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ipfs/boxo/ipns"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/routing"
)

// DefaultMaxValueRecords bounds the value records a server keeps for
// other peers (IPNS records; on Amino public keys too): each is at most
// maxValueBytes, so the default holds at most 64 MiB.
const DefaultMaxValueRecords = 4096

// maxValueBytes bounds one value kept: kad-dht refuses an IPNS record over
// 10 KiB (ipns.MaxRecordSize), and a public key is smaller.
const maxValueBytes = 16 << 10

// ErrValueStoreFull: a server keeps Config.MaxValueRecords records and
// refuses a record under a new key.
var ErrValueStoreFull = errors.New("dht: value store full")

// valueValidator is the only validator of the DHT's values: the "ipns"
// namespace, checked by boxo's validator (signature, validity, a record of
// at most ipns.MaxRecordSize bytes, the highest sequence wins). Any other
// namespace is refused, except "pk" on Amino (public keys, checked against
// their hash), which kad-dht requires of Amino's servers.
func valueValidator(keys peerstore.KeyBook, amino bool) record.Validator {
	v := record.NamespacedValidator{"ipns": ipns.Validator{KeyBook: keys}}
	if amino {
		v["pk"] = record.PublicKeyValidator{}
	}
	return v
}

// valueDatastore is the datastore of the values a server keeps for others:
// a map in memory that refuses a new key past max entries and any value
// past maxValueBytes, so a peer that publishes junk cannot fill the node's
// memory. kad-dht validates each record before it stores it and drops
// expired ones. It is safe for concurrent use.
type valueDatastore struct {
	max int

	mu sync.Mutex
	m  ds.Batching // a MapDatastore, guarded by mu
	n  int
}

var _ ds.Batching = (*valueDatastore)(nil)

func newValueDatastore(max int) *valueDatastore {
	return &valueDatastore{max: max, m: ds.NewMapDatastore()}
}

func (s *valueDatastore) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Get(ctx, k)
}

func (s *valueDatastore) Has(ctx context.Context, k ds.Key) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Has(ctx, k)
}

func (s *valueDatastore) GetSize(ctx context.Context, k ds.Key) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.GetSize(ctx, k)
}

// Query returns a snapshot, so the caller may read it at leisure.
func (s *valueDatastore) Query(ctx context.Context, q dsq.Query) (dsq.Results, error) {
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

func (s *valueDatastore) Put(ctx context.Context, k ds.Key, v []byte) error {
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
		return fmt.Errorf("%w: %d records kept", ErrValueStoreFull, s.n)
	}
	if err := s.m.Put(ctx, k, v); err != nil {
		return err
	}
	if !had {
		s.n++
	}
	return nil
}

func (s *valueDatastore) Delete(ctx context.Context, k ds.Key) error {
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

func (s *valueDatastore) Sync(context.Context, ds.Key) error { return nil }
func (s *valueDatastore) Close() error                       { return nil }

// Batch applies each operation through Put and Delete, caps included.
func (s *valueDatastore) Batch(context.Context) (ds.Batch, error) { return ds.NewBasicBatch(s), nil }

// ValueStore returns the DHT as a routing.ValueStore: PutValue and
// GetValue of "/ipns/…" records (names.PutDHT and names.GetDHT take it).
// Records of any other namespace are refused. Safe for concurrent use;
// its calls block until the lookup ends or ctx is done.
func (d *DHT) ValueStore() routing.ValueStore { return valueStore{d} }

type valueStore struct{ d *DHT }

func (v valueStore) PutValue(ctx context.Context, key string, val []byte, opts ...routing.Option) error {
	if v.d.isClosed() {
		return ErrClosed
	}
	return v.d.kad.PutValue(ctx, key, val, opts...)
}

func (v valueStore) GetValue(ctx context.Context, key string, opts ...routing.Option) ([]byte, error) {
	if v.d.isClosed() {
		return nil, ErrClosed
	}
	return v.d.kad.GetValue(ctx, key, opts...)
}

func (v valueStore) SearchValue(ctx context.Context, key string, opts ...routing.Option) (<-chan []byte, error) {
	if v.d.isClosed() {
		return nil, ErrClosed
	}
	return v.d.kad.SearchValue(ctx, key, opts...)
}
