package wire

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/integrity"
)

// Msg is one message of the protocol. The concrete types are *Hello,
// *HaveAll, *HaveNone, *HaveBitfield, *Have, *Want, *Cancel, *DontHave,
// *Block, *WantNode, *Node, *NodeMissing, *Error, *Choke, *Unchoke,
// *NotInterested and *InOrder; the interface is sealed
// so that every Msg is one the Writer can encode.
type Msg interface {
	// Type returns the message's type byte.
	Type() Type
	isMsg()
}

// Hello is the first message on a stream, sent by the side that opened it:
// the root the session is about and what the opener knows of it.
type Hello struct {
	// Version is the protocol version the opener speaks (Version).
	Version uint64
	// Root is the CID of the root: CIDv1, dag-pb or raw, sha2-256.
	Root cid.Cid
	// Chunks is the number of chunks of the root, or 0 if the opener does
	// not know it yet (it has not fetched the DAG).
	Chunks uint64
}

// HaveAll says that the sender has every chunk of the root (and every
// DAG node: a peer that has the root has its blocks).
type HaveAll struct{}

// HaveNone says that the sender has no chunk of the root yet.
type HaveNone struct{}

// Choke says that the sender has dropped every WANT of the receiver it had
// not answered and will drop the ones that arrive until it sends Unchoke:
// it is serving other peers for now. The receiver forgets its unanswered
// requests (a BLOCK already sent for one may still arrive) and sends no WANT
// until Unchoke.
type Choke struct{}

// Unchoke says that the sender answers WANTs again. A session begins
// unchoked.
type Unchoke struct{}

// NotInterested says that the sender (the fetching side) wants no chunk of
// the receiver for now, so that an upload slot it was just given can go to
// another peer. Its next WANT says otherwise.
type NotInterested struct{}

// InOrder (protocol 2.1 on, ProtocolID) says that the sender (the fetching
// side) reads the root's chunks in the order it asks for them and waits on
// each: a streaming reader. The receiver serves its WANTs in the order they
// come, and holds none back for another peer that has the chunk. It is
// sent once per session, at most, right after HELLO; a seek or a longer
// read-ahead changes nothing.
type InOrder struct{}

// HaveBitfield says which chunks of the root the sender has, in the
// encoding of package bitfield (the one codec of it): chunk i is present
// when bit 0x80>>(i%8) of Bits[i/8] is set, most significant bit first, as
// in BitTorrent.
//
// The decoder cannot know the root's chunk count, so it checks only the size
// limit; the receiver must call Validate with the chunk count before using
// the bits.
type HaveBitfield struct {
	Bits []byte
}

// Validate checks m against a root of chunks chunks: Bits must be exactly
// ceil(chunks/8) bytes long and have no bit set at or past index chunks. The
// error wraps ErrMalformed. It does not block and is safe for concurrent use.
func (m *HaveBitfield) Validate(chunks uint64) error {
	if chunks > MaxBitfieldChunks {
		return malformed("HAVE_BITFIELD for %d chunks, more than %d", chunks, MaxBitfieldChunks)
	}
	if err := bitfield.Validate(int64(chunks), m.Bits); err != nil {
		return malformed("HAVE_BITFIELD for %d chunks: %w", chunks, err)
	}
	return nil
}

// Has reports whether the bit of chunk i is set; false when i is past the
// end of Bits.
func (m *HaveBitfield) Has(i uint64) bool {
	return i < 1<<62 && bitfield.Get(m.Bits, int64(i))
}

// Have announces one more chunk the sender has (a peer still downloading
// tells its sessions each chunk it verifies).
type Have struct {
	Index uint64
}

// Want requests chunks by index. Replies (BLOCK or DONT_HAVE) may come in
// any order. Between 1 and MaxWant indices.
type Want struct {
	Indices []uint64
}

// Cancel withdraws earlier WANTs (in endgame, when another peer delivered
// first). Between 1 and MaxWant indices.
type Cancel struct {
	Indices []uint64
}

// DontHave answers a WANT for chunks the sender does not have (or will not
// send). Between 1 and MaxWant indices.
type DontHave struct {
	Indices []uint64
}

// Block carries one chunk, at most MaxBlockSize bytes. The receiver must
// verify Data against the chunk's CID from the DAG: the decoder does
// not hash.
type Block struct {
	Index uint64
	Data  []byte
}

// WantNode requests a block of the root's DAG (not a chunk) by CID.
type WantNode struct {
	CID cid.Cid
}

// Node carries a block of the root's DAG, at most MaxNodeSize bytes. The receiver
// must verify Data against CID: the decoder does not hash.
type Node struct {
	CID  cid.Cid
	Data []byte
}

// NodeMissing answers a WANT_NODE for a block the sender does not have.
type NodeMissing struct {
	CID cid.Cid
}

// Error is the last message its sender writes before closing the stream: a
// code and a human-readable reason of at most MaxErrorMsg bytes of UTF-8. It
// is also an error, so that a session can return what its peer said.
type Error struct {
	Code ErrCode
	Msg  string
}

// NewError returns an ERROR message with msg made fit to send: invalid UTF-8
// replaced and the text cut, at a rune boundary, to MaxErrorMsg bytes.
func NewError(code ErrCode, msg string) *Error {
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	if len(msg) > MaxErrorMsg {
		cut := MaxErrorMsg
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	return &Error{Code: code, Msg: msg}
}

// Error formats e as "wire: peer error: <code>: <msg>".
func (e *Error) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("wire: peer error: %v", e.Code)
	}
	return fmt.Sprintf("wire: peer error: %v: %q", e.Code, e.Msg)
}

// Type implements Msg.
func (*Hello) Type() Type { return TypeHello }

// Type implements Msg.
func (*HaveAll) Type() Type { return TypeHaveAll }

// Type implements Msg.
func (*HaveNone) Type() Type { return TypeHaveNone }

// Type implements Msg.
func (*HaveBitfield) Type() Type { return TypeHaveBitfield }

// Type implements Msg.
func (*Have) Type() Type { return TypeHave }

// Type implements Msg.
func (*Want) Type() Type { return TypeWant }

// Type implements Msg.
func (*Cancel) Type() Type { return TypeCancel }

// Type implements Msg.
func (*DontHave) Type() Type { return TypeDontHave }

// Type implements Msg.
func (*Block) Type() Type { return TypeBlock }

// Type implements Msg.
func (*WantNode) Type() Type { return TypeWantNode }

// Type implements Msg.
func (*Node) Type() Type { return TypeNode }

// Type implements Msg.
func (*NodeMissing) Type() Type { return TypeNodeMissing }

// Type implements Msg.
func (*Error) Type() Type { return TypeError }

// Type implements Msg.
func (*Choke) Type() Type { return TypeChoke }

// Type implements Msg.
func (*Unchoke) Type() Type { return TypeUnchoke }

// Type implements Msg.
func (*NotInterested) Type() Type { return TypeNotInterested }

// Type implements Msg.
func (*InOrder) Type() Type { return TypeInOrder }

func (*Hello) isMsg()         {}
func (*HaveAll) isMsg()       {}
func (*HaveNone) isMsg()      {}
func (*HaveBitfield) isMsg()  {}
func (*Have) isMsg()          {}
func (*Want) isMsg()          {}
func (*Cancel) isMsg()        {}
func (*DontHave) isMsg()      {}
func (*Block) isMsg()         {}
func (*WantNode) isMsg()      {}
func (*Node) isMsg()          {}
func (*NodeMissing) isMsg()   {}
func (*Error) isMsg()         {}
func (*Choke) isMsg()         {}
func (*Unchoke) isMsg()       {}
func (*NotInterested) isMsg() {}
func (*InOrder) isMsg()       {}

// encode appends to b the type byte and the payload of m, all but a trailing
// byte string (Block.Data, Node.Data, HaveBitfield.Bits) that it returns as
// tail for the caller to write without copying. It checks every limit first
// and appends nothing when m is invalid.
//
// It is one type switch with no method call on m, so that m does not escape:
// a caller's &Block{...} stays on its stack.
func encode(b []byte, m Msg) (head, tail []byte, err error) {
	switch m := m.(type) {
	case *Hello:
		if m == nil {
			break
		}
		if err := checkCID(TypeHello, m.Root); err != nil {
			return b, nil, err
		}
		b = append(b, byte(TypeHello))
		b = appendUvarint(b, m.Version)
		b = appendCID(b, m.Root)
		return appendUvarint(b, m.Chunks), nil, nil
	case *HaveAll:
		if m != nil {
			return append(b, byte(TypeHaveAll)), nil, nil
		}
	case *HaveNone:
		if m != nil {
			return append(b, byte(TypeHaveNone)), nil, nil
		}
	case *Choke:
		if m != nil {
			return append(b, byte(TypeChoke)), nil, nil
		}
	case *Unchoke:
		if m != nil {
			return append(b, byte(TypeUnchoke)), nil, nil
		}
	case *NotInterested:
		if m != nil {
			return append(b, byte(TypeNotInterested)), nil, nil
		}
	case *InOrder:
		if m != nil {
			return append(b, byte(TypeInOrder)), nil, nil
		}
	case *HaveBitfield:
		if m == nil {
			break
		}
		if len(m.Bits) > maxPayload(TypeHaveBitfield) {
			return b, nil, tooLarge("HAVE_BITFIELD of %d bytes exceeds %d", len(m.Bits), maxPayload(TypeHaveBitfield))
		}
		return append(b, byte(TypeHaveBitfield)), m.Bits, nil
	case *Have:
		if m == nil {
			break
		}
		return appendUvarint(append(b, byte(TypeHave)), m.Index), nil, nil
	case *Want:
		if m == nil {
			break
		}
		return appendIndices(b, TypeWant, m.Indices)
	case *Cancel:
		if m == nil {
			break
		}
		return appendIndices(b, TypeCancel, m.Indices)
	case *DontHave:
		if m == nil {
			break
		}
		return appendIndices(b, TypeDontHave, m.Indices)
	case *Block:
		if m == nil {
			break
		}
		if len(m.Data) > MaxBlockSize {
			return b, nil, tooLarge("BLOCK of %d bytes exceeds %d", len(m.Data), MaxBlockSize)
		}
		return appendUvarint(append(b, byte(TypeBlock)), m.Index), m.Data, nil
	case *WantNode:
		if m == nil {
			break
		}
		if err := checkCID(TypeWantNode, m.CID); err != nil {
			return b, nil, err
		}
		return appendCID(append(b, byte(TypeWantNode)), m.CID), nil, nil
	case *Node:
		if m == nil {
			break
		}
		if err := checkCID(TypeNode, m.CID); err != nil {
			return b, nil, err
		}
		if len(m.Data) > MaxNodeSize {
			return b, nil, tooLarge("NODE of %d bytes exceeds %d", len(m.Data), MaxNodeSize)
		}
		return appendCID(append(b, byte(TypeNode)), m.CID), m.Data, nil
	case *NodeMissing:
		if m == nil {
			break
		}
		if err := checkCID(TypeNodeMissing, m.CID); err != nil {
			return b, nil, err
		}
		return appendCID(append(b, byte(TypeNodeMissing)), m.CID), nil, nil
	case *Error:
		if m == nil {
			break
		}
		if err := checkErrorMsg(m.Msg); err != nil {
			return b, nil, err
		}
		b = appendUvarint(append(b, byte(TypeError)), uint64(m.Code))
		return append(b, m.Msg...), nil, nil
	}
	return b, nil, errNilMsg
}

// errNilMsg is returned for a nil message; it names no type so that encode
// passes m to no function that could make it escape.
var errNilMsg = errors.New("wire: nil message")

func appendIndices(b []byte, t Type, indices []uint64) (head, tail []byte, err error) {
	if len(indices) == 0 {
		return b, nil, malformed("%v of no index", t)
	}
	if len(indices) > MaxWant {
		return b, nil, tooLarge("%v of %d indices exceeds %d", t, len(indices), MaxWant)
	}
	b = appendUvarint(append(b, byte(t)), uint64(len(indices)))
	for _, i := range indices {
		b = appendUvarint(b, i)
	}
	return b, nil, nil
}

// checkCID checks that c is a CID of a DAG peer can verify: dag-pb or raw,
// sha2-256.
func checkCID(t Type, c cid.Cid) error {
	if err := integrity.Check(c); err != nil {
		return fmt.Errorf("%w: %v CID: %w", ErrMalformed, t, err)
	}
	return nil
}

// appendCID appends the length-prefixed binary form of c, which passed
// checkCID.
func appendCID(b []byte, c cid.Cid) []byte {
	s := c.KeyString() // the binary form, without the copy Bytes makes
	return append(appendUvarint(b, uint64(len(s))), s...)
}

func checkErrorMsg(s string) error {
	if len(s) > MaxErrorMsg {
		return tooLarge("ERROR text of %d bytes exceeds %d", len(s), MaxErrorMsg)
	}
	if !utf8.ValidString(s) {
		return malformed("ERROR text is not UTF-8")
	}
	return nil
}

// decode parses the payload p of a message of type t, which maxPayload knows.
// Byte slices in the result alias p.
func decode(t Type, p []byte) (Msg, error) {
	d := decoder{t: t, p: p}
	var m Msg
	switch t {
	case TypeHello:
		m = &Hello{Version: d.uvarint("version"), Root: d.cid(), Chunks: d.uvarint("chunk count")}
	case TypeHaveAll:
		m = &HaveAll{}
	case TypeHaveNone:
		m = &HaveNone{}
	case TypeChoke:
		m = &Choke{}
	case TypeUnchoke:
		m = &Unchoke{}
	case TypeNotInterested:
		m = &NotInterested{}
	case TypeInOrder:
		m = &InOrder{}
	case TypeHaveBitfield:
		m = &HaveBitfield{Bits: d.rest()}
	case TypeHave:
		m = &Have{Index: d.uvarint("index")}
	case TypeWant:
		m = &Want{Indices: d.indices()}
	case TypeCancel:
		m = &Cancel{Indices: d.indices()}
	case TypeDontHave:
		m = &DontHave{Indices: d.indices()}
	case TypeBlock:
		b := &Block{Index: d.uvarint("index"), Data: d.rest()}
		if d.err == nil && len(b.Data) > MaxBlockSize {
			return nil, tooLarge("BLOCK of %d bytes exceeds %d", len(b.Data), MaxBlockSize)
		}
		m = b
	case TypeWantNode:
		m = &WantNode{CID: d.cid()}
	case TypeNode:
		n := &Node{CID: d.cid(), Data: d.rest()}
		if d.err == nil && len(n.Data) > MaxNodeSize {
			return nil, tooLarge("NODE of %d bytes exceeds %d", len(n.Data), MaxNodeSize)
		}
		m = n
	case TypeNodeMissing:
		m = &NodeMissing{CID: d.cid()}
	case TypeError:
		code := d.uvarint("error code")
		if d.err == nil && code > 0xffff {
			return nil, malformed("ERROR code %d exceeds 16 bits", code)
		}
		e := &Error{Code: ErrCode(code), Msg: string(d.rest())}
		if d.err == nil {
			if err := checkErrorMsg(e.Msg); err != nil {
				return nil, err
			}
		}
		m = e
	default:
		return nil, fmt.Errorf("%w: type byte %#02x", ErrUnknownType, uint8(t))
	}
	if d.err == nil && len(d.p) != 0 {
		d.err = malformed("%v has %d trailing bytes", t, len(d.p))
	}
	if d.err != nil {
		return nil, d.err
	}
	return m, nil
}

// decoder consumes a payload field by field; the first error sticks and
// later fields read as zero.
type decoder struct {
	t   Type
	p   []byte
	err error
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	x, n, err := uvarint(d.p)
	if err != nil {
		d.err = malformed("%v %s: %v", d.t, field, err)
		return 0
	}
	d.p = d.p[n:]
	return x
}

func (d *decoder) rest() []byte {
	if d.err != nil {
		return nil
	}
	r := d.p
	d.p = d.p[len(d.p):]
	return r
}

func (d *decoder) cid() cid.Cid {
	n := d.uvarint("CID length")
	if d.err != nil {
		return cid.Undef
	}
	if n > MaxCIDSize || n > uint64(len(d.p)) {
		d.err = malformed("%v CID of %d bytes in %d", d.t, n, len(d.p))
		return cid.Undef
	}
	c, err := cid.Cast(d.p[:n])
	if err != nil {
		d.err = fmt.Errorf("%w: %v CID: %w", ErrMalformed, d.t, err)
		return cid.Undef
	}
	if err := checkCID(d.t, c); err != nil {
		d.err = err
		return cid.Undef
	}
	d.p = d.p[n:]
	return c
}

func (d *decoder) indices() []uint64 {
	n := d.uvarint("index count")
	if d.err != nil {
		return nil
	}
	if n == 0 {
		d.err = malformed("%v of no index", d.t)
		return nil
	}
	if n > MaxWant {
		d.err = tooLarge("%v of %d indices exceeds %d", d.t, n, MaxWant)
		return nil
	}
	if n > uint64(len(d.p)) { // every index takes at least one byte
		d.err = malformed("%v of %d indices in %d bytes", d.t, n, len(d.p))
		return nil
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = d.uvarint("index")
	}
	if d.err != nil {
		return nil
	}
	return out
}
