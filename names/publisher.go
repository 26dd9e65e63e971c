package names

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/routing"
)

// Defaults of PublisherConfig.
const (
	DefaultValidity  = 48 * time.Hour // as Kubo
	DefaultRepublish = 4 * time.Hour  // as Kubo
	DefaultTTL       = time.Minute    // shares change: resolvers should look again soon
	DefaultDebounce  = time.Second
	dhtPutTimeout    = time.Minute
)

// PublisherConfig configures a Publisher. Zero fields mean the default in
// their comment; Key is required.
type PublisherConfig struct {
	// Key is the name's private key. Required.
	Key ic.PrivKey
	// Resolver, if set, gets each record (Publish): it pushes it to the
	// connected peers that follow the name.
	Resolver *Resolver
	// DHT, if set, gets each record (PutDHT).
	DHT routing.ValueStore
	// LastSeq is the sequence of the last record published under Key
	// before, which the caller keeps (see OnPublish): the next record has a
	// higher one. The Resolver's best record of the name counts too.
	LastSeq uint64
	// Validity is how long a record is valid: DefaultValidity.
	Validity time.Duration
	// Republish is how often the current root is signed again with a new
	// validity, so that it never expires: DefaultRepublish. It must be
	// shorter than Validity.
	Republish time.Duration
	// TTL is the records' cache hint: DefaultTTL.
	TTL time.Duration
	// Debounce is how long Set waits for quiet before it publishes:
	// DefaultDebounce.
	Debounce time.Duration
	// OnPublish, if set, hears of every record published and of the DHT's
	// error, if any: keep rec.Seq as the next LastSeq. A publish that
	// failed before any record went out gives a nil rec and the error. It
	// is called from the goroutine that published (the Publisher's, or
	// Publish's caller); it must not call Set or Publish.
	OnPublish func(rec *Record, err error)
	// Now is the clock a record's validity counts from, the Resolver's
	// (Config.Now); nil means time.Now.
	Now func() time.Time
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
}

// Publisher points one name at a root that changes: it signs a record with
// a higher sequence for each new root, debounces bursts of changes, signs
// the current root again before its record expires, and hands each record
// to a Resolver and a DHT. Its methods are safe for concurrent use.
type Publisher struct {
	cfg    PublisherConfig
	name   Name
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	kick   chan struct{} // cap 1: Set was called
	renew  chan struct{} // cap 1: a record was published; restart the republish timer

	mu      sync.Mutex // guards pending and closed
	pending cid.Cid
	closed  bool

	pubMu sync.Mutex // serialises publishes; guards seq and root
	seq   uint64
	root  cid.Cid
}

// ErrPublisherConfig: a PublisherConfig is not usable.
var ErrPublisherConfig = errors.New("names: bad publisher config")

// NewPublisher starts a Publisher. It publishes nothing until Set or
// Publish; Close stops it.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Key == nil {
		return nil, fmt.Errorf("%w: no Key", ErrPublisherConfig)
	}
	if cfg.Validity < 0 || cfg.Republish < 0 || cfg.TTL < 0 || cfg.Debounce < 0 {
		return nil, fmt.Errorf("%w: negative duration", ErrPublisherConfig)
	}
	if cfg.Validity == 0 {
		cfg.Validity = DefaultValidity
	}
	if cfg.Republish == 0 {
		cfg.Republish = min(DefaultRepublish, cfg.Validity/2)
	}
	if cfg.Republish >= cfg.Validity {
		return nil, fmt.Errorf("%w: Republish (%v) must be shorter than Validity (%v), or records expire between two", ErrPublisherConfig, cfg.Republish, cfg.Validity)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	name, err := NameFromKey(cfg.Key.GetPublic())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{
		cfg: cfg, name: name, ctx: ctx, cancel: cancel, seq: cfg.LastSeq,
		log:   cfg.Logger.With("component", "names", "name", name.String()),
		kick:  make(chan struct{}, 1),
		renew: make(chan struct{}, 1),
	}
	p.wg.Add(1)
	go p.loop()
	return p, nil
}

// Name is the name the Publisher publishes.
func (p *Publisher) Name() Name { return p.name }

// Set points the name at root once Debounce has passed with no other Set:
// a burst of changes makes one record, of the last root. It does not
// block.
func (p *Publisher) Set(root cid.Cid) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.pending = root
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Publish points the name at root now, cancelling a pending Set. It
// returns the record, and the DHT's error if the put failed (the record
// went to the Resolver either way). It blocks until the DHT answers.
func (p *Publisher) Publish(ctx context.Context, root cid.Cid) (*Record, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	p.pending = cid.Undef
	p.mu.Unlock()
	return p.publish(ctx, root)
}

// Close stops the Publisher and waits for its goroutine; a pending Set is
// dropped. Later calls return ErrClosed.
func (p *Publisher) Close() error {
	err := ErrClosed
	p.once.Do(func() {
		err = nil
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		p.wg.Wait()
	})
	return err
}

func (p *Publisher) loop() {
	defer p.wg.Done()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	republish := time.NewTimer(time.Hour)
	republish.Stop()
	defer debounce.Stop()
	defer republish.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.kick:
			debounce.Reset(p.cfg.Debounce)
		case <-p.renew:
			republish.Reset(p.cfg.Republish)
		case <-debounce.C:
			p.mu.Lock()
			root := p.pending
			p.pending = cid.Undef
			p.mu.Unlock()
			if root.Defined() {
				p.publish(p.ctx, root)
			}
		case <-republish.C:
			p.pubMu.Lock()
			root := p.root
			p.pubMu.Unlock()
			if root.Defined() {
				p.publish(p.ctx, root)
			}
		}
	}
}

// publish signs a record of root with the next sequence and hands it out.
func (p *Publisher) publish(ctx context.Context, root cid.Cid) (*Record, error) {
	p.pubMu.Lock()
	seq := p.seq
	if p.cfg.Resolver != nil {
		seq = max(seq, p.cfg.Resolver.heldSeq(p.name))
	}
	rec, err := NewRecord(p.cfg.Key, root, seq+1, p.cfg.Now().Add(p.cfg.Validity), p.cfg.TTL)
	if err == nil && p.cfg.Resolver != nil {
		err = p.cfg.Resolver.Publish(rec)
	}
	if err != nil {
		p.pubMu.Unlock()
		err = fmt.Errorf("names: publish %s: %w", p.name, err)
		p.log.Warn("publish", "err", err)
		if p.cfg.OnPublish != nil {
			p.cfg.OnPublish(nil, err)
		}
		return nil, err
	}
	p.seq, p.root = rec.Seq, root
	p.pubMu.Unlock()
	select {
	case p.renew <- struct{}{}:
	default:
	}
	p.log.Info("published", "seq", rec.Seq, "root", root.String())
	if p.cfg.DHT != nil {
		dctx, cancel := context.WithTimeout(ctx, dhtPutTimeout)
		err = PutDHT(dctx, p.cfg.DHT, rec)
		cancel()
		if err != nil {
			p.log.Warn("DHT put", "seq", rec.Seq, "err", err)
		}
	}
	if p.cfg.OnPublish != nil {
		p.cfg.OnPublish(rec, err)
	}
	return rec, err
}
