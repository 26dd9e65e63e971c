package names

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/routing"
)

// PutDHT stores rec in a value store (kad-dht's PutValue) under its name's
// routing key ("/ipns/" and the key's multihash). The store must validate
// the "ipns" namespace with DHTValidator (kad-dht does by default, unless
// its values are disabled). It blocks until the store answers or ctx ends.
func PutDHT(ctx context.Context, vs routing.ValueStore, rec *Record) error {
	if rec == nil {
		return fmt.Errorf("names: PutDHT: nil record")
	}
	if err := vs.PutValue(ctx, rec.Name.RoutingKey(), rec.Raw); err != nil {
		return fmt.Errorf("names: put %s (seq %d) in the DHT: %w", rec.Name, rec.Seq, err)
	}
	return nil
}

// GetDHT looks name up in a value store (kad-dht's GetValue, which picks
// the best of the records its peers return) and validates what it gets at
// time now. It blocks until the store answers or ctx ends; a name nobody
// published gives the store's routing.ErrNotFound, wrapped.
func GetDHT(ctx context.Context, vs routing.ValueStore, name Name, now time.Time) (*Record, error) {
	raw, err := vs.GetValue(ctx, name.RoutingKey())
	if err != nil {
		return nil, fmt.Errorf("names: get %s from the DHT: %w", name, err)
	}
	rec, err := Validate(name, raw, now)
	if err != nil {
		return nil, fmt.Errorf("names: record of %s from the DHT: %w", name, err)
	}
	return rec, nil
}

// ResolveDHT looks name up in a value store as GetDHT does, at the
// Resolver's time, and gives what it finds to the Resolver as Learn does
// (kept if the name is followed here and the record is newer than the one
// held, and pushed to the peers that follow it), validating it once for
// both. It returns the newest record known: the one found, or the one held
// if that has a higher sequence. Its errors are GetDHT's; a record found
// but not kept is logged, not returned. It blocks until the store answers
// or ctx ends; safe for concurrent use.
func (r *Resolver) ResolveDHT(ctx context.Context, vs routing.ValueStore, name Name) (*Record, error) {
	rec, err := GetDHT(ctx, vs, name, r.cfg.Now())
	if err != nil {
		return nil, err
	}
	if err := r.accept(nil, rec); err != nil && !errors.Is(err, ErrNotFollowing) {
		r.log.Debug("a record found in the DHT", "name", name.String(), "seq", rec.Seq, "err", err)
	}
	if best, ok := r.Best(name); ok && best.Seq > rec.Seq {
		return best, nil
	}
	return rec, nil
}

// DHTValidator is the validator of the "ipns" namespace that a DHT must use
// (kad-dht: NamespacedValidator("ipns", DHTValidator(h.Peerstore()))):
// boxo's, which checks the signature and validity and selects the highest
// sequence. keys, if not nil, supplies public keys that records and names
// do not embed (RSA).
func DHTValidator(keys peerstore.KeyBook) ipns.Validator {
	return ipns.Validator{KeyBook: keys}
}
