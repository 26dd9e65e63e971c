package dht

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/boxo/ipns"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/routing"
)

// DefaultMaxValueRecords bounds the value records (IPNS records) a server
// keeps for other peers: each is at most ipns.MaxRecordSize (10 KiB), so
// the default holds at most 40 MiB.
const DefaultMaxValueRecords = 4096

// ErrValueStoreFull: a server keeps Config.MaxValueRecords records and
// refuses a record under a new key.
var ErrValueStoreFull = errors.New("dht: value store full")

// valueValidator is the only validator of the DHT's values: the "ipns"
// namespace, checked by boxo's validator (signature, validity, a record of
// at most ipns.MaxRecordSize bytes, the highest sequence wins). Any other
// namespace (kad-dht's default "pk" included) is refused.
func valueValidator(keys peerstore.KeyBook) record.Validator {
	return record.NamespacedValidator{"ipns": ipns.Validator{KeyBook: keys}}
}

// cappedStore is the in-memory store of value records: a record under a
// new key past its cap is refused, a record that replaces one kept is not.
type cappedStore struct {
	*dssync.MutexDatastore
	max int
}

func newCappedStore(max int) *cappedStore {
	return &cappedStore{MutexDatastore: dssync.MutexWrap(ds.NewMapDatastore()), max: max}
}

// Put implements ds.Write. The check and the put are two calls, so
// concurrent puts of new keys may pass the cap by a few: a bound, not an
// exact count.
func (s *cappedStore) Put(ctx context.Context, k ds.Key, v []byte) error {
	if has, err := s.MutexDatastore.Has(ctx, k); err != nil {
		return err
	} else if !has {
		n := 0
		res, err := s.MutexDatastore.Query(ctx, query.Query{KeysOnly: true})
		if err != nil {
			return err
		}
		for range res.Next() {
			n++
		}
		res.Close()
		if n >= s.max {
			return fmt.Errorf("%w: %d records kept", ErrValueStoreFull, n)
		}
	}
	return s.MutexDatastore.Put(ctx, k, v)
}

// Batch implements ds.Batching through Put, so a batch respects the cap.
func (s *cappedStore) Batch(ctx context.Context) (ds.Batch, error) {
	return ds.NewBasicBatch(s), nil
}

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
