// Package ticket encodes what a fetcher needs to get a share without any
// DHT: the root and the sharer's peer ID and addresses, in one string that
// survives copy and paste (lower-case letters and digits only).
//
// A ticket reads "peer1" followed by the unpadded lower-case base32 of:
//
//	byte     format version (1)
//	uvarint  length of the root CID, then its binary form (CIDv1 dag-pb or raw, sha2-256)
//	uvarint  length of the peer ID, then its binary form
//	uvarint  number of addresses (at most MaxAddrs)
//	each:    uvarint length, then the binary multiaddr
//
// A ticket of a name (Name set) is format version 2: the same fields, then
//
//	uvarint  length of the name's key hash (as a peer ID), then its binary form
//
// and its root is the version the name pointed at when the ticket was made:
// a fetcher resolves the name (asking the provider first) for the latest.
// A ticket without a name stays version 1, which every peer reads.
//
// Parse is hostile by default: the text length, every length and count are
// checked before anything is allocated for them.
package ticket

import (
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/integrity"
)

// Prefix starts every ticket.
const Prefix = "peer1"

// Limits on what a ticket may hold.
const (
	MaxAddrs    = 16
	MaxAddrLen  = 256
	MaxLen      = 8192 // characters of text
	version     = 1
	versionName = 2 // with a name
)

// ErrInvalid is wrapped by every Parse error.
var ErrInvalid = errors.New("ticket: invalid")

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Ticket is a root and a peer that provides it, and optionally the name
// (an IPNS name's key hash, in peer ID form) that pointed at the root.
type Ticket struct {
	Root     cid.Cid
	Provider peer.AddrInfo
	Name     peer.ID // "" for a ticket of a root alone
}

// String encodes t. Addresses beyond MaxAddrs are left out.
func (t Ticket) String() string {
	var b []byte
	if t.Name != "" {
		b = append(b, versionName)
	} else {
		b = append(b, version)
	}
	b = appendBytes(b, t.Root.Bytes())
	b = appendBytes(b, []byte(t.Provider.ID))
	addrs := t.Provider.Addrs
	var keep [][]byte
	for _, a := range addrs {
		if len(keep) == MaxAddrs {
			break
		}
		if ab := a.Bytes(); len(ab) <= MaxAddrLen {
			keep = append(keep, ab)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(keep)))
	for _, ab := range keep {
		b = appendBytes(b, ab)
	}
	if t.Name != "" {
		b = appendBytes(b, []byte(t.Name))
	}
	return Prefix + enc.EncodeToString(b)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// Looks reports whether s has the form of a ticket (it may still not parse).
func Looks(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), Prefix) }

// Parse decodes a ticket. Surrounding white space is ignored.
func Parse(s string) (Ticket, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxLen {
		return Ticket{}, fmt.Errorf("%w: %d characters, more than %d", ErrInvalid, len(s), MaxLen)
	}
	if !strings.HasPrefix(s, Prefix) {
		return Ticket{}, fmt.Errorf("%w: does not start with %q", ErrInvalid, Prefix)
	}
	raw, err := enc.DecodeString(s[len(Prefix):])
	if err != nil {
		return Ticket{}, fmt.Errorf("%w: not base32 (was it cut short when copied?): %v", ErrInvalid, err)
	}
	d := decoder{b: raw}
	v := d.byte()
	if d.err == nil && v != version && v != versionName {
		return Ticket{}, fmt.Errorf("%w: version %d, this peer reads versions %d and %d (upgrade peer)", ErrInvalid, v, version, versionName)
	}
	rootB := d.bytes(64)
	idB := d.bytes(128)
	n := d.uvarint()
	if d.err == nil && n > MaxAddrs {
		return Ticket{}, fmt.Errorf("%w: %d addresses, at most %d", ErrInvalid, n, MaxAddrs)
	}
	var t Ticket
	for i := uint64(0); i < n && d.err == nil; i++ {
		ab := d.bytes(MaxAddrLen)
		if d.err != nil {
			break
		}
		a, err := ma.NewMultiaddrBytes(ab)
		if err != nil {
			return Ticket{}, fmt.Errorf("%w: address %d: %v", ErrInvalid, i, err)
		}
		t.Provider.Addrs = append(t.Provider.Addrs, a)
	}
	var nameB []byte
	if v == versionName && d.err == nil {
		nameB = d.bytes(128)
	}
	if d.err != nil {
		return Ticket{}, fmt.Errorf("%w: %v (was it cut short when copied?)", ErrInvalid, d.err)
	}
	if len(d.b) != 0 {
		return Ticket{}, fmt.Errorf("%w: %d bytes after the end", ErrInvalid, len(d.b))
	}
	if t.Root, err = cid.Cast(rootB); err != nil {
		return Ticket{}, fmt.Errorf("%w: root: %v", ErrInvalid, err)
	}
	if err := integrity.Check(t.Root); err != nil { // dag-pb, or raw for a file of one chunk
		return Ticket{}, fmt.Errorf("%w: root: %w", ErrInvalid, err)
	}
	if t.Provider.ID, err = peer.IDFromBytes(idB); err != nil {
		return Ticket{}, fmt.Errorf("%w: peer ID: %v", ErrInvalid, err)
	}
	if v == versionName {
		if t.Name, err = peer.IDFromBytes(nameB); err != nil {
			return Ticket{}, fmt.Errorf("%w: name: %v", ErrInvalid, err)
		}
	}
	return t, nil
}

// decoder reads the binary form; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errors.New("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad length")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(limit int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(d.b)) {
		d.err = fmt.Errorf("a field of %d bytes, limit %d, %d left", n, limit, len(d.b))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
