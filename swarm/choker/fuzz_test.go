package choker

import (
	"testing"
	"time"
)

// FuzzEvents feeds the choker any sequence of events, three bytes each
// (kind, session, argument), and checks its invariants after every one:
// no more holders than slots, nobody waiting beside a free slot, a Tick due
// while anyone waits, a choked session with no requests (a quiet one keeps
// them), and every action about a session that is known; a quiet session
// (joined with an odd argument) is never told Choke nor has requests
// dropped, and a session that is not quiet is never told Hold.
func FuzzEvents(f *testing.F) {
	f.Add([]byte{1, 0, 1, 1, 1, 1, 3, 0, 0, 4, 0, 0, 3, 0, 0, 4, 0, 0})
	f.Add([]byte{7, 2, 255, 1, 0, 1, 1, 1, 1, 1, 2, 1, 8, 0, 200, 6, 0, 0})
	f.Add([]byte{0, 1, 1, 0, 2, 0, 1, 1, 2, 1, 2, 3, 2, 1, 0, 4, 1, 0, 3, 1, 0, 4, 1, 0, 8, 0, 20, 6, 1, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		c := New(Config{Slots: 2, TurnBlocks: 2})
		now := epoch
		joined := map[SessionID]bool{}
		quiet := map[SessionID]bool{}
		for k := 0; k+2 < len(ops); k += 3 {
			kind := Kind(ops[k] % 9)
			s := SessionID(ops[k+1] % 6)
			arg := int(ops[k+2])
			ev := Event{Kind: kind, At: now, Session: s, Peer: PeerID(rune('A' + s%4)), N: arg%5 + 1, Quiet: arg%2 == 1}
			if kind == Tick {
				now = now.Add(time.Duration(arg) * 50 * time.Millisecond)
				ev.At = now
			}
			if kind == Credit {
				ev.N = arg << 10
			}
			for _, a := range c.Step(ev) {
				if a.Kind != Drop && !joined[a.Session] {
					t.Fatalf("event %d %v: %v for a session that is not there", k/3, kind, a)
				}
				if a.Kind == Queue && (kind != Want || a.N != ev.N) {
					t.Fatalf("event %d %v: %v", k/3, kind, a)
				}
				if quiet[a.Session] && (a.Kind == Choke || a.Kind == Drop) || !quiet[a.Session] && a.Kind == Hold {
					t.Fatalf("event %d %v: %v for a session with quiet=%v", k/3, kind, a, quiet[a.Session])
				}
			}
			switch kind {
			case Join:
				if !joined[s] {
					quiet[s] = ev.Quiet
				}
				joined[s] = true
			case Leave:
				delete(joined, s)
				delete(quiet, s)
			}
			if err := c.invariants(); err != nil {
				t.Fatalf("event %d %v: %v", k/3, kind, err)
			}
		}
	})
}
