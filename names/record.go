package names

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// MaxRecordSize is the largest signed record accepted, in bytes: 10 KiB, as
// the IPNS record specification says.
const MaxRecordSize = ipns.MaxRecordSize

// Prefix starts every name as it is printed.
const Prefix = "/ipns/"

var (
	// ErrName: a string is not an IPNS name.
	ErrName = errors.New("names: not an IPNS name")
	// ErrTooLarge: a record is longer than MaxRecordSize.
	ErrTooLarge = errors.New("names: record larger than 10 KiB")
	// ErrMalformed: a record cannot be decoded.
	ErrMalformed = errors.New("names: malformed record")
	// ErrSignature: a record's signature does not verify against its name's
	// key, or its signed data and its plain fields disagree: it is forged
	// or corrupt.
	ErrSignature = errors.New("names: bad record signature")
	// ErrWrongKey: a record carries a public key other than its name's: it
	// was signed for another name.
	ErrWrongKey = errors.New("names: record signed by another key")
	// ErrExpired: a record's validity (EOL) has passed.
	ErrExpired = errors.New("names: record expired")
	// ErrValue: a record points somewhere other than /ipfs/CID.
	ErrValue = errors.New("names: record value is not /ipfs/CID")
	// ErrStale: a record has a lower sequence number than the one held.
	ErrStale = errors.New("names: record older than the one held")
)

// Name is an IPNS name: the hash of a public key. The zero Name is invalid.
// Names are comparable and may be map keys.
type Name struct {
	n ipns.Name
}

// NameFromKey returns the name of a public key.
func NameFromKey(pk ic.PubKey) (Name, error) {
	id, err := peer.IDFromPublicKey(pk)
	if err != nil {
		return Name{}, fmt.Errorf("%w: %w", ErrName, err)
	}
	return Name{ipns.NameFromPeer(id)}, nil
}

// NameFromPeer returns the name of a peer's key (the node's own name).
func NameFromPeer(id peer.ID) Name { return Name{ipns.NameFromPeer(id)} }

// ParseName reads a name as String prints it ("/ipns/k51…"), or without
// its "/ipns/" prefix, or as a base58 peer ID ("12D3Koo…").
func ParseName(s string) (Name, error) {
	bare := strings.TrimPrefix(s, Prefix)
	if bare == "" || strings.ContainsAny(bare, "/ \t\r\n") {
		return Name{}, fmt.Errorf("%w: %q: want /ipns/k51… (a key name, no path after it)", ErrName, s)
	}
	id, err := peer.Decode(bare)
	if err != nil {
		return Name{}, fmt.Errorf("%w: %q: want /ipns/k51… (%v)", ErrName, s, err)
	}
	return Name{ipns.NameFromPeer(id)}, nil
}

// nameFromBytes reads a name's binary form (a multihash) from the wire.
func nameFromBytes(b []byte) (Name, error) {
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return Name{}, fmt.Errorf("%w: %w", ErrName, err)
	}
	return Name{ipns.NameFromPeer(id)}, nil
}

// String prints the name as "/ipns/" and a base36 CIDv1 of codec
// libp2p-key ("/ipns/k51…").
func (n Name) String() string {
	if n.IsZero() {
		return Prefix + "<none>"
	}
	return Prefix + n.n.String()
}

// IsZero says whether n is the zero Name.
func (n Name) IsZero() bool { return n.n.Peer() == "" }

// Peer returns the name's key hash as a peer ID.
func (n Name) Peer() peer.ID { return n.n.Peer() }

// IPNS returns the name as boxo's ipns.Name.
func (n Name) IPNS() ipns.Name { return n.n }

// RoutingKey is the key under which the DHT keeps the name's record
// ("/ipns/" and the binary multihash).
func (n Name) RoutingKey() string { return string(n.n.RoutingKey()) }

// bytes is the name's binary form (a multihash).
func (n Name) bytes() []byte { return []byte(n.n.Peer()) }

// Record is a validated, signed IPNS record that points a name at a root.
// Its fields are read from Raw, which is what travels; do not change them.
type Record struct {
	Name Name
	Root cid.Cid       // the value is /ipfs/Root
	Seq  uint64        // sequence number: higher wins
	EOL  time.Time     // validity: refused after this
	TTL  time.Duration // how long a resolver may cache it
	Raw  []byte        // the signed record, protobuf as the spec says
}

// NewRecord signs a record that points the name of sk at /ipfs/root, with
// sequence seq, valid until eol, with a cache hint ttl. It is signed with
// both V1 and V2 signatures (as boxo does) and embeds sk's public key, so a
// record sent under another name is reported as ErrWrongKey rather than as
// a bad signature.
func NewRecord(sk ic.PrivKey, root cid.Cid, seq uint64, eol time.Time, ttl time.Duration) (*Record, error) {
	if !root.Defined() {
		return nil, fmt.Errorf("%w: no root given", ErrValue)
	}
	if ttl < 0 {
		return nil, fmt.Errorf("names: negative TTL %v", ttl)
	}
	name, err := NameFromKey(sk.GetPublic())
	if err != nil {
		return nil, err
	}
	rec, err := ipns.NewRecord(sk, path.FromCid(root), seq, eol, ttl,
		ipns.WithV1Compatibility(true), ipns.WithPublicKey(true))
	if err != nil {
		return nil, fmt.Errorf("names: sign record: %w", err)
	}
	raw, err := ipns.MarshalRecord(rec)
	if err != nil {
		return nil, fmt.Errorf("names: encode record: %w", err)
	}
	if len(raw) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(raw))
	}
	return &Record{Name: name, Root: root, Seq: seq, EOL: eol.UTC(), TTL: ttl, Raw: raw}, nil
}

// Validate decodes raw and checks it as a record of name at time now: size,
// encoding, key, signature, validity and value. A refusal wraps one of
// ErrTooLarge, ErrMalformed, ErrWrongKey, ErrSignature, ErrExpired or
// ErrValue. It does not know which record is held: ErrStale is the
// Resolver's.
//
// boxo's check of the validity reads time.Now as well, so now should not be
// later than the wall clock (a record that is expired by either is refused).
func Validate(name Name, raw []byte, now time.Time) (*Record, error) {
	if name.IsZero() {
		return nil, fmt.Errorf("%w: empty name", ErrName)
	}
	if len(raw) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes for %s", ErrTooLarge, len(raw), name)
	}
	rec, err := ipns.UnmarshalRecord(raw)
	if err != nil {
		return nil, fmt.Errorf("%w for %s: %w", ErrMalformed, name, err)
	}
	pk, err := ipns.ExtractPublicKey(rec, name.n)
	switch {
	case errors.Is(err, ipns.ErrPublicKeyMismatch):
		return nil, fmt.Errorf("%w: the record is not for %s", ErrWrongKey, name)
	case err != nil:
		return nil, fmt.Errorf("%w for %s: public key: %w", ErrMalformed, name, err)
	}
	switch err := ipns.Validate(rec, pk); {
	case err == nil:
	case errors.Is(err, ipns.ErrSignature):
		return nil, fmt.Errorf("%w for %s", ErrSignature, name)
	case errors.Is(err, ipns.ErrExpiredRecord):
		return nil, fmt.Errorf("%w: %s is past its validity", ErrExpired, name)
	case errors.Is(err, ipns.ErrRecordSize):
		return nil, fmt.Errorf("%w for %s", ErrTooLarge, name)
	case strings.Contains(err.Error(), "did not match between protobuf and CBOR"):
		// The unsigned V1 fields say something the signed data does not.
		return nil, fmt.Errorf("%w for %s: %w", ErrSignature, name, err)
	default:
		return nil, fmt.Errorf("%w for %s: %w", ErrMalformed, name, err)
	}
	eol, err := rec.Validity()
	if err != nil {
		return nil, fmt.Errorf("%w for %s: validity: %w", ErrMalformed, name, err)
	}
	if now.After(eol) {
		return nil, fmt.Errorf("%w: %s was valid until %s", ErrExpired, name, eol.UTC().Format(time.RFC3339))
	}
	seq, err := rec.Sequence()
	if err != nil {
		return nil, fmt.Errorf("%w for %s: sequence: %w", ErrMalformed, name, err)
	}
	ttl, err := rec.TTL()
	if err != nil {
		ttl = 0 // optional field
	}
	val, err := rec.Value()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrValue, name, err)
	}
	root, err := rootOf(val)
	if err != nil {
		return nil, fmt.Errorf("%w: %s points at %q", ErrValue, name, val.String())
	}
	return &Record{Name: name, Root: root, Seq: seq, EOL: eol.UTC(), TTL: ttl, Raw: raw}, nil
}

// rootOf returns the CID of a path /ipfs/CID with nothing after it.
func rootOf(p path.Path) (cid.Cid, error) {
	if p.Namespace() != path.IPFSNamespace {
		return cid.Undef, ErrValue
	}
	segs := p.Segments()
	if len(segs) != 2 {
		return cid.Undef, ErrValue
	}
	return cid.Decode(segs[1])
}

// newer says whether a should replace b as the record of a name: a higher
// sequence, or the same sequence and a later validity.
func newer(a, b *Record) bool {
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	return a.EOL.After(b.EOL)
}
