package names

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/peer-project/peer/internal/bubble"
)

// memStore is a routing.ValueStore in memory that counts puts.
type memStore struct {
	mu   sync.Mutex
	vals map[string][]byte
	puts int
}

func (m *memStore) PutValue(_ context.Context, k string, v []byte, _ ...routing.Option) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.vals == nil {
		m.vals = map[string][]byte{}
	}
	m.vals[k] = v
	m.puts++
	return nil
}

func (m *memStore) GetValue(_ context.Context, k string, _ ...routing.Option) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.vals[k]; ok {
		return v, nil
	}
	return nil, routing.ErrNotFound
}

func (m *memStore) SearchValue(ctx context.Context, k string, _ ...routing.Option) (<-chan []byte, error) {
	return nil, errors.New("not implemented")
}

// TestPublisher runs on a virtual clock: a burst of Sets makes one record
// of the last root, Debounce after the last Set; the root is signed again
// every Republish, so followers never see it expire; sequences continue
// from LastSeq.
func TestPublisher(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		const (
			debounce  = time.Second
			republish = time.Hour
			validity  = 90 * time.Minute
		)
		tn := newTestNet(t, 2, 10*time.Millisecond, Config{})
		tn.connect(0, 1)
		sk, name := newKey(t)
		dht := &memStore{}
		published := make(chan *Record, 16)
		pub, err := NewPublisher(PublisherConfig{
			Key: sk, Resolver: tn.rs[0], DHT: dht, LastSeq: 41,
			Debounce: debounce, Republish: republish, Validity: validity,
			OnPublish: func(rec *Record, err error) {
				if err != nil {
					t.Errorf("publish: %v", err)
				}
				published <- rec
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		if pub.Name() != name {
			t.Fatalf("publisher's name %s, want %s", pub.Name(), name)
		}
		sub, err := tn.rs[1].Follow(name)
		if err != nil {
			t.Fatal(err)
		}

		start := time.Now()
		for i, root := range []string{"r1", "r2", "r3"} {
			if i > 0 {
				time.Sleep(debounce / 2) // virtual: changes come faster than the debounce
			}
			pub.Set(rootOfBytes(root))
		}
		lastSet := time.Now()
		rec := recv(t, sub.C)
		if rec.Seq != 42 || rec.Root != rootOfBytes("r3") {
			t.Fatalf("follower got sequence %d root %s, want 42 and r3", rec.Seq, rec.Root)
		}
		if took := time.Since(lastSet); took < debounce || took > debounce+100*time.Millisecond {
			t.Fatalf("record came %v after the last Set, want the debounce (%v) and one network delay", took, debounce)
		}
		if len(published) != 1 {
			t.Fatalf("%d records published for a burst of 3 Sets, want 1", len(published))
		}
		<-published
		if got, err := GetDHT(context.Background(), dht, name, time.Now()); err != nil || got.Seq != 42 {
			t.Fatalf("DHT holds %+v, %v", got, err)
		}

		// Republished before it expires, for as long as the Publisher runs.
		for want := uint64(43); want <= 45; want++ {
			rec := recvWithin(t, sub.C, republish+time.Minute)
			if rec.Seq != want || rec.Root != rootOfBytes("r3") {
				t.Fatalf("republished sequence %d root %s, want %d and r3", rec.Seq, rec.Root, want)
			}
			<-published
			if best, ok := tn.rs[1].Best(name); !ok || best.Seq != want {
				t.Fatalf("follower's best %+v, %v", best, ok)
			}
		}
		t.Logf("3 republishes by %v (virtual)", time.Since(start).Round(time.Second))

		// Publish goes out at once and cancels a pending Set.
		pub.Set(rootOfBytes("r4"))
		if rec, err := pub.Publish(context.Background(), rootOfBytes("r5")); err != nil || rec.Seq != 46 {
			t.Fatalf("Publish: %+v, %v", rec, err)
		}
		<-published
		if rec := recv(t, sub.C); rec.Root != rootOfBytes("r5") {
			t.Fatalf("follower got root %s, want r5", rec.Root)
		}
		time.Sleep(2 * debounce)
		if len(published) != 0 {
			t.Fatal("a Set cancelled by Publish was published")
		}
		if dht.puts != 5 {
			t.Fatalf("%d DHT puts, want 5", dht.puts)
		}
		if err := pub.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(context.Background(), rootOfBytes("r6")); !errors.Is(err, ErrClosed) {
			t.Fatalf("Publish after Close: %v", err)
		}
	})
}

func TestPublisherConfig(t *testing.T) {
	sk, _ := newKey(t)
	for _, cfg := range []PublisherConfig{
		{},
		{Key: sk, Validity: time.Hour, Republish: time.Hour},
		{Key: sk, Debounce: -1},
	} {
		if _, err := NewPublisher(cfg); !errors.Is(err, ErrPublisherConfig) {
			t.Errorf("NewPublisher(%+v): %v, want ErrPublisherConfig", cfg, err)
		}
	}
	p, err := NewPublisher(PublisherConfig{Key: sk, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.Republish != 30*time.Minute {
		t.Errorf("default Republish for a 1 h validity: %v, want 30m", p.cfg.Republish)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// TestPublisherUsesItsClock: a record's validity counts from the clock the
// Publisher is given, the Resolver's; a record dated by the machine's
// clock would be expired for a Resolver whose clock is hours ahead.
func TestPublisherUsesItsClock(t *testing.T) {
	ahead := func() time.Time { return time.Now().Add(3 * time.Hour) }
	tn := newTestNet(t, 1, 0, Config{Now: ahead})
	sk, _ := newKey(t)
	pub, err := NewPublisher(PublisherConfig{Key: sk, Resolver: tn.rs[0], Validity: time.Hour, Now: ahead})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	rec, err := pub.Publish(context.Background(), rootOfBytes("clock"))
	if err != nil {
		t.Fatalf("a record from a Publisher on the Resolver's clock: %v", err)
	}
	if want := ahead().Add(30 * time.Minute); rec.EOL.Before(want) {
		t.Fatalf("the record is valid until %v, before %v: dated by another clock", rec.EOL, want)
	}
}
