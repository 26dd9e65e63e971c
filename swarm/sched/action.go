package sched

import "fmt"

// Kind says what an Action asks the caller to do.
type Kind uint8

// The kinds of Action.
const (
	// Request asks the caller to send WANT Index to Peer. The request
	// counts against Peer's window until the block arrives (BlockVerified,
	// BlockBad, BlockWriteFailed), Peer says DONT_HAVE, the scheduler
	// cancels it, or Peer leaves.
	Request Kind = iota + 1
	// Cancel asks the caller to send CANCEL Index to Peer: the request is
	// no longer wanted (another copy arrived, or it timed out). The
	// scheduler has already forgotten it; a block that still arrives is
	// reported as usual and counted as a duplicate if the chunk is done.
	Cancel
	// Ban says Peer must be disconnected and not used again by this
	// download; Reason says why. Its requests are already forgotten and
	// no Cancel is emitted for them.
	Ban
	// Done says every chunk is verified. It is emitted once.
	Done
)

func (k Kind) String() string {
	switch k {
	case Request:
		return "request"
	case Cancel:
		return "cancel"
	case Ban:
		return "ban"
	case Done:
		return "done"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Action is one decision of the scheduler for the caller to carry out.
// Peer is empty for Done; Index is meaningful for Request and Cancel;
// Reason for Ban.
type Action struct {
	Kind   Kind
	Peer   PeerID
	Index  int64
	Reason string
}

func (a Action) String() string {
	switch a.Kind {
	case Request, Cancel:
		return fmt.Sprintf("%s %s %d", a.Kind, a.Peer, a.Index)
	case Ban:
		return fmt.Sprintf("ban %s: %s", a.Peer, a.Reason)
	}
	return a.Kind.String()
}
