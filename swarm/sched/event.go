package sched

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EventKind says what an Event reports.
type EventKind uint8

// The kinds of Event. Each names what the caller saw; the comment says
// which fields of the Event it uses besides Kind and Time, and what the
// scheduler does with it.
const (
	// PeerJoined (Peer) adds Peer as a possible source. It has nothing
	// until it sends HAVE (HaveAll, HaveBitfield, Have). Joining again is
	// a no-op; a banned peer stays banned.
	PeerJoined EventKind = iota + 1
	// PeerLeft (Peer) forgets Peer: its outstanding requests go back to
	// the pool (no Cancel is emitted: the connection is gone) and are given
	// to other peers. A banned peer's record is kept so that it stays
	// banned if it comes back.
	PeerLeft
	// HaveAll (Peer) records that Peer has every chunk (HAVE all).
	HaveAll
	// HaveBitfield (Peer, Bits) records that Peer has the chunks set in
	// Bits, the HAVE bitfield: ⌈Chunks/8⌉ bytes, chunk i in byte i/8 under
	// mask 0x80>>(i%8), spare bits zero. Bits add to what Peer had. A
	// bitfield of another length or with spare bits set is refused with an
	// error wrapping ErrBitfield and changes nothing (the caller should
	// treat it as a protocol violation, see Misbehaved).
	HaveBitfield
	// Have (Peer, Index) records that Peer has chunk Index (a single HAVE).
	Have
	// DontHave (Peer, Index) records that Peer does not have chunk Index
	// after all (DONT_HAVE); a request of it to Peer is dropped and the
	// chunk goes to another peer. It is not a strike: files change under
	// sharers.
	DontHave
	// BlockVerified (Peer, Index) records that chunk Index arrived from
	// Peer, matched its CID and was stored. Other requests of it are
	// cancelled (Cancel actions) and Peer gets its next request. A block
	// for a chunk already verified counts as a duplicate; one from a
	// banned peer is ignored. When the last chunk is verified, Done is
	// emitted.
	BlockVerified
	// BlockBad (Peer, Index) records that the bytes Peer sent for chunk
	// Index did not match its CID. Each chunk comes from one peer, so Peer
	// is struck; at MaxStrikes it is banned (a Ban action) and all its
	// requests go to other peers. The chunk is requested again, from
	// another peer if one has it.
	BlockBad
	// BlockWriteFailed (Peer, Index) records that chunk Index arrived from
	// Peer and matched its CID but could not be stored (disk full, I/O
	// error). Peer is not blamed (its throughput is credited); the chunk
	// goes back to the pool. The caller should Pause if the failure will
	// repeat.
	BlockWriteFailed
	// Misbehaved (Peer, Reason) strikes Peer for a protocol violation the
	// caller detected (a malformed message, a refused bitfield), and bans
	// it at MaxStrikes.
	Misbehaved
	// Choke (Peer) records that Peer will not answer requests for now
	// (CHOKE: it serves other peers): its outstanding requests are dropped
	// without a Cancel (Peer has dropped them too) and without a penalty,
	// and their chunks go to other peers. Peer gets no request until
	// Unchoke; what it has still counts for rarity. A block it sent before
	// the CHOKE may still arrive and is used as any late block. Choking a
	// choked peer is a no-op.
	Choke
	// Unchoke (Peer) records that Peer answers requests again (UNCHOKE):
	// it is given requests at once. Unchoking an unchoked peer is a no-op.
	Unchoke
	// Tick times out the requests that are overdue: each is cancelled (a
	// Cancel action) and its chunk goes to another peer; each peer that
	// timed out has its window and rate estimate halved (once per Tick)
	// and is held to one request until it delivers. Tick also lets idle
	// peers reconsider duplicating slow requests. Send one every 100 ms or
	// so.
	Tick
	// Prioritize (Index, To) asks for chunks [Index, To) before any other,
	// in index order, for streaming reads; a later one replaces the range
	// (a seek) and an empty range (Index ≥ To) clears it. The range is
	// clamped to the file. Chunks of the range held by a slow peer are
	// duplicated to faster idle peers as in endgame.
	//
	// A seek (a range that does not start at the first chunk of the last
	// one not yet verified, or right after the last one when every chunk
	// of it is) must not wait behind a pipeline of other chunks: each peer that
	// could send a chunk of the new range, but not among the oldest
	// quarter of its window of requests (at least one; those are likely on
	// the wire already), gives up every request but that quarter (Cancel
	// actions), and its window is filled again with the range first. A
	// range that moves forward as a reader reads cancels nothing.
	Prioritize
	// Pause stops new requests (outstanding ones stay and their events
	// are handled), e.g. while the disk is full.
	Pause
	// Resume undoes Pause.
	Resume

	maxEventKind = Resume
)

func (k EventKind) String() string {
	switch k {
	case PeerJoined:
		return "PeerJoined"
	case PeerLeft:
		return "PeerLeft"
	case HaveAll:
		return "HaveAll"
	case HaveBitfield:
		return "HaveBitfield"
	case Have:
		return "Have"
	case DontHave:
		return "DontHave"
	case BlockVerified:
		return "BlockVerified"
	case BlockBad:
		return "BlockBad"
	case BlockWriteFailed:
		return "BlockWriteFailed"
	case Misbehaved:
		return "Misbehaved"
	case Choke:
		return "Choke"
	case Unchoke:
		return "Unchoke"
	case Tick:
		return "Tick"
	case Prioritize:
		return "Prioritize"
	case Pause:
		return "Pause"
	case Resume:
		return "Resume"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// verb returns the first word of the kind's text form.
func (k EventKind) verb() string {
	switch k {
	case PeerJoined:
		return "join"
	case PeerLeft:
		return "leave"
	case HaveAll, Have:
		return "have"
	case HaveBitfield:
		return "bitfield"
	case DontHave:
		return "donthave"
	case BlockVerified, BlockBad, BlockWriteFailed:
		return "block"
	case Misbehaved:
		return "misbehave"
	case Choke:
		return "choke"
	case Unchoke:
		return "unchoke"
	case Tick:
		return "tick"
	case Prioritize:
		return "prio"
	case Pause:
		return "pause"
	case Resume:
		return "resume"
	}
	return ""
}

// Event is one thing the caller tells the Scheduler (see Step): the kind
// says which of the other fields count (see the kinds' comments); the rest
// are zero. Time is the caller's clock when it happened; the scheduler's
// time never goes backwards, so an earlier Time counts as the latest seen.
type Event struct {
	Kind   EventKind
	Time   time.Time
	Peer   PeerID
	Index  int64  // the chunk; for Prioritize, the first of the range
	To     int64  // Prioritize: the end of the range, excluded
	Bits   []byte // HaveBitfield: the wire bitfield
	Reason string // Misbehaved
}

// Step hands the scheduler one event and returns the decisions it took,
// in order (with any not yet returned, such as the Done of a resumed
// download that had every chunk). The caller owns the slice.
//
// The error says why an event was refused: it wraps ErrUnknownPeer for a
// peer that has not joined (or has left), ErrIndex for a chunk index out of
// range, ErrBitfield for a malformed HAVE bitfield, ErrEvent for an unknown
// kind. A refused event changes nothing, but the actions returned must
// still be carried out. Events of a banned peer are ignored with no error.
func (s *Scheduler) Step(e Event) ([]Action, error) {
	var err error
	switch e.Kind {
	case PeerJoined:
		s.peerJoined(e.Peer, e.Time)
	case PeerLeft:
		s.peerLeft(e.Peer, e.Time)
	case HaveAll:
		err = s.haveAll(e.Peer, e.Time)
	case HaveBitfield:
		err = s.haveBitfield(e.Peer, e.Bits, e.Time)
	case Have:
		err = s.have(e.Peer, e.Index, e.Time)
	case DontHave:
		err = s.dontHave(e.Peer, e.Index, e.Time)
	case BlockVerified:
		err = s.blockVerified(e.Peer, e.Index, e.Time)
	case BlockBad:
		err = s.blockBad(e.Peer, e.Index, e.Time)
	case BlockWriteFailed:
		err = s.blockWriteFailed(e.Peer, e.Index, e.Time)
	case Misbehaved:
		err = s.misbehaved(e.Peer, e.Reason, e.Time)
	case Choke:
		err = s.choke(e.Peer, e.Time)
	case Unchoke:
		err = s.unchoke(e.Peer, e.Time)
	case Tick:
		s.tick(e.Time)
	case Prioritize:
		s.prioritize(e.Index, e.To, e.Time)
	case Pause:
		s.pause(e.Time)
	case Resume:
		s.resume(e.Time)
	default:
		err = fmt.Errorf("%w: kind %d", ErrEvent, e.Kind)
	}
	return s.drain(), err
}

// String returns the event's text form, the line of a transcript (see
// Printer) without its time: "join P", "leave P", "have P all", "have P I",
// "bitfield P HEX" ("-" for no bytes), "donthave P I", "block P I
// ok|bad|fail", "misbehave P REASON", "choke P", "unchoke P", "tick",
// "prio FROM TO" ("prio off" for 0 0), "pause", "resume". A Reason that is
// not plain words parted by single spaces is quoted as Go quotes strings.
// An event that has no text form (an unknown kind, a peer ID that is empty
// or holds white space) prints as an error; MarshalText refuses it.
func (e Event) String() string {
	b, err := e.AppendText(nil)
	if err != nil {
		return fmt.Sprintf("!(%v)", err)
	}
	return string(b)
}

// MarshalText returns e's text form (see String) or an error wrapping
// ErrTranscript if it has none. Time is not part of it: a Printer writes
// the time between events.
func (e Event) MarshalText() ([]byte, error) { return e.AppendText(nil) }

// AppendText appends e's text form (see String) to b.
func (e Event) AppendText(b []byte) ([]byte, error) {
	if e.Kind < 1 || e.Kind > maxEventKind {
		return b, fmt.Errorf("%w: event kind %d", ErrTranscript, e.Kind)
	}
	b = append(b, e.Kind.verb()...)
	switch e.Kind {
	case Tick, Pause, Resume:
		return b, nil
	case Prioritize:
		if e.Index == 0 && e.To == 0 {
			return append(b, " off"...), nil
		}
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.Index, 10)
		b = append(b, ' ')
		return strconv.AppendInt(b, e.To, 10), nil
	}
	if !plainPeer(e.Peer) {
		return b, fmt.Errorf("%w: peer ID %q is empty or holds white space", ErrTranscript, e.Peer)
	}
	b = append(b, ' ')
	b = append(b, e.Peer...)
	switch e.Kind {
	case HaveAll:
		b = append(b, " all"...)
	case HaveBitfield:
		b = append(b, ' ')
		if len(e.Bits) == 0 {
			b = append(b, '-')
		} else {
			b = hex.AppendEncode(b, e.Bits)
		}
	case Have, DontHave, BlockVerified, BlockBad, BlockWriteFailed:
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.Index, 10)
		switch e.Kind {
		case BlockVerified:
			b = append(b, " ok"...)
		case BlockBad:
			b = append(b, " bad"...)
		case BlockWriteFailed:
			b = append(b, " fail"...)
		}
	case Misbehaved:
		b = append(b, ' ')
		if plainReason(e.Reason) {
			b = append(b, e.Reason...)
		} else {
			b = strconv.AppendQuote(b, e.Reason)
		}
	}
	return b, nil
}

// plainPeer reports whether id can stand as one word of a line.
func plainPeer(id PeerID) bool {
	f := strings.Fields(string(id))
	return len(f) == 1 && f[0] == string(id)
}

// plainReason reports whether r reads back unquoted: words parted by
// single spaces, not starting with a quote.
func plainReason(r string) bool {
	return r != "" && r[0] != '"' && strings.Join(strings.Fields(r), " ") == r
}

// ParseEvent parses one event's text form (see String) at time now. A line
// of a transcript may also be "wait D", "tick D", or name several peers or
// chunks at once ("join A B", "have A 0-3,7"): a Parser reads those.
func ParseEvent(line string, now time.Time) (Event, error) {
	p := Parser{now: now, started: true}
	evs, err := p.Parse(line)
	switch {
	case err != nil:
		return Event{}, err
	case len(evs) != 1 || p.now != now:
		return Event{}, fmt.Errorf("%w: %q is not one event", ErrTranscript, line)
	}
	return evs[0], nil
}
