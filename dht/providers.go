package dht

import (
	"cmp"
	"context"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// Defaults for the caps on the provider records a DHT server keeps for
// others (Config's zero values).
const (
	// DefaultMaxProviderRecords bounds the records kept for all roots:
	// about 200 bytes each, so some 13 MiB.
	DefaultMaxProviderRecords = 1 << 16
	// DefaultMaxProvidersPerRoot bounds the records kept for one root:
	// more than a fetch needs to find its peers, far fewer than a flood
	// of fake providers.
	DefaultMaxProvidersPerRoot = 128
)

// recordStore is where kad-dht keeps the provider records this node stores
// for others: in memory, with a cap per root and a cap overall. kad-dht's
// default is a map that grows with every ADD_PROVIDER any peer sends (one
// record per peer ID and key, for 24 hours), so a peer minting IDs could
// fill the node's memory.
//
// Records are kept by key, /providers/ROOT/PEER (kad-dht's layout), grouped
// by everything before the last element: a root's records are found in one
// map, so a GET_PROVIDERS costs what the root holds, not what the node
// holds. A record for a new peer is refused (dropped, as kad-dht drops
// records it cannot write) when its root holds maxPerRoot records that have
// not expired, or the store holds maxTotal. Refreshing a record that is
// kept is always accepted: a provider that came first, as the sharer of a
// root does, keeps its place however many fakes come after it (a batch is
// applied oldest record first, for the same reason).
//
// It is safe for concurrent use (kad-dht's garbage collection runs beside
// its reads and writes).
type recordStore struct {
	maxTotal, maxPerRoot int
	validity             time.Duration
	now                  func() time.Time

	mu      sync.Mutex
	groups  map[string]map[string][]byte // parent key → last element → value
	total   int
	dropped int64 // records refused, for logs and tests
}

var _ ds.Batching = (*recordStore)(nil)

func newRecordStore(maxTotal, maxPerRoot int, validity time.Duration) *recordStore {
	return &recordStore{
		maxTotal: maxTotal, maxPerRoot: maxPerRoot, validity: validity, now: time.Now,
		groups: map[string]map[string][]byte{},
	}
}

func split(k ds.Key) (group, name string) {
	return k.Parent().String(), k.Name()
}

func (s *recordStore) Get(_ context.Context, k ds.Key) ([]byte, error) {
	g, n := split(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.groups[g][n]
	if !ok {
		return nil, ds.ErrNotFound
	}
	return append([]byte(nil), v...), nil
}

func (s *recordStore) Has(ctx context.Context, k ds.Key) (bool, error) {
	_, err := s.Get(ctx, k)
	if err == ds.ErrNotFound {
		return false, nil
	}
	return err == nil, err
}

func (s *recordStore) GetSize(ctx context.Context, k ds.Key) (int, error) {
	v, err := s.Get(ctx, k)
	if err != nil {
		return -1, err
	}
	return len(v), nil
}

// Put stores a record, or drops it when a cap is reached (see recordStore).
// It never fails: kad-dht would keep a failed batch and retry it.
func (s *recordStore) Put(_ context.Context, k ds.Key, v []byte) error {
	g, n := split(k)
	v = append([]byte(nil), v...)
	s.mu.Lock()
	defer s.mu.Unlock()
	grp := s.groups[g]
	if _, ok := grp[n]; ok {
		grp[n] = v
		return nil
	}
	if len(grp) >= s.maxPerRoot {
		s.expireLocked(g, grp)
	}
	if len(grp) >= s.maxPerRoot || s.total >= s.maxTotal {
		s.dropped++
		return nil
	}
	if grp == nil {
		grp = map[string][]byte{}
		s.groups[g] = grp
	}
	grp[n] = v
	s.total++
	return nil
}

// expireLocked removes the records of group g that have expired (a value
// is the time the record was written, as a varint of Unix nanoseconds).
func (s *recordStore) expireLocked(g string, grp map[string][]byte) {
	cutoff := s.now().Add(-s.validity).UnixNano()
	for n, v := range grp {
		if t, k := binary.Varint(v); k <= 0 || t < cutoff {
			delete(grp, n)
			s.total--
		}
	}
	if len(grp) == 0 {
		delete(s.groups, g)
	}
}

func (s *recordStore) Delete(_ context.Context, k ds.Key) error {
	g, n := split(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	grp := s.groups[g]
	if _, ok := grp[n]; !ok {
		return nil
	}
	delete(grp, n)
	s.total--
	if len(grp) == 0 {
		delete(s.groups, g)
	}
	return nil
}

// Query returns a snapshot of the records under q.Prefix. A prefix of two
// elements or more names a root (/providers/ROOT, as kad-dht's GET_PROVIDERS
// asks), and only that root's records are read, whether it has any or not:
// a lookup of a root nobody provides costs nothing. A shorter prefix (kad-dht's
// garbage collection asks for /providers/) reads them all.
func (s *recordStore) Query(_ context.Context, q dsq.Query) (dsq.Results, error) {
	var entries []dsq.Entry
	add := func(g string, grp map[string][]byte) {
		for n, v := range grp {
			e := dsq.Entry{Key: ds.NewKey(g).ChildString(n).String(), Size: len(v)}
			if !q.KeysOnly {
				e.Value = append([]byte(nil), v...)
			}
			entries = append(entries, e)
		}
	}
	prefix := ds.NewKey(q.Prefix)
	s.mu.Lock()
	if len(prefix.List()) >= 2 {
		add(prefix.String(), s.groups[prefix.String()])
	} else {
		for g, grp := range s.groups {
			add(g, grp)
		}
	}
	s.mu.Unlock()
	return dsq.NaiveQueryApply(q, dsq.ResultsWithEntries(q, entries)), nil
}

func (s *recordStore) Sync(context.Context, ds.Key) error { return nil }
func (s *recordStore) Close() error                       { return nil }

// Batch returns a batch that applies its records oldest first (by the time
// each holds), so that when a root fills up, the records written first keep
// their places: kad-dht flushes its buffer in map order.
func (s *recordStore) Batch(context.Context) (ds.Batch, error) {
	return &recordBatch{s: s, ops: map[ds.Key][]byte{}}, nil
}

// recordBatch is a batch of recordStore: a nil value is a delete.
type recordBatch struct {
	s   *recordStore
	ops map[ds.Key][]byte
}

func (b *recordBatch) Put(_ context.Context, k ds.Key, v []byte) error {
	b.ops[k] = append([]byte{}, v...)
	return nil
}

func (b *recordBatch) Delete(_ context.Context, k ds.Key) error {
	b.ops[k] = nil
	return nil
}

func (b *recordBatch) Commit(ctx context.Context) error {
	type put struct {
		k ds.Key
		t int64
		v []byte
	}
	var puts []put
	for k, v := range b.ops {
		if v == nil {
			b.s.Delete(ctx, k)
			continue
		}
		t, n := binary.Varint(v)
		if n <= 0 {
			t = math.MaxInt64
		}
		puts = append(puts, put{k, t, v})
	}
	slices.SortFunc(puts, func(a, b put) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		return strings.Compare(a.k.String(), b.k.String())
	})
	for _, p := range puts {
		b.s.Put(ctx, p.k, p.v)
	}
	clear(b.ops)
	return nil
}

// counts returns the records kept, the most kept for one root, and the
// records refused so far.
func (s *recordStore) counts() (total, maxRoot int, dropped int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, grp := range s.groups {
		maxRoot = max(maxRoot, len(grp))
	}
	return s.total, maxRoot, s.dropped
}

// noCache is kad-dht's provider cache, turned off: kad-dht adds every
// ADD_PROVIDER for a cached root to the cached set with no bound, and
// recordStore answers a root's records from one map anyway.
type noCache struct{}

func (noCache) Add(key, value any) bool        { return false }
func (noCache) Get(key any) (any, bool)        { return nil, false }
func (noCache) Contains(key any) bool          { return false }
func (noCache) Peek(key any) (any, bool)       { return nil, false }
func (noCache) Remove(key any) bool            { return false }
func (noCache) RemoveOldest() (any, any, bool) { return nil, nil, false }
func (noCache) GetOldest() (any, any, bool)    { return nil, nil, false }
func (noCache) Keys() []any                    { return nil }
func (noCache) Len() int                       { return 0 }
func (noCache) Purge()                         {}
func (noCache) Resize(int) int                 { return 0 }
