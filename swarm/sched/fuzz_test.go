package sched

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"testing"
	"time"
)

// FuzzParseWire: any bytes for any chunk count either decode to a bitfield
// that encodes back to the same bytes, or are refused with ErrBitfield.
func FuzzParseWire(f *testing.F) {
	f.Add(uint16(10), []byte{0x80, 0x40})
	f.Add(uint16(8), []byte{0xff})
	f.Add(uint16(9), []byte{0xff, 0xff})
	f.Add(uint16(70), make([]byte, 9))
	f.Fuzz(func(t *testing.T, n uint16, wire []byte) {
		chunks := int32(n%4096) + 1
		b, err := parseWire(chunks, wire)
		if err != nil {
			if !errors.Is(err, ErrBitfield) {
				t.Fatalf("error %v does not wrap ErrBitfield", err)
			}
			if len(wire) == (int(chunks)+7)/8 && (chunks%8 == 0 || wire[len(wire)-1]&(0xff>>(chunks%8)) == 0) {
				t.Fatalf("refused a well-formed bitfield: %v", err)
			}
			return
		}
		if got := b.wire(chunks); string(got) != string(wire) {
			t.Fatalf("round trip % x -> % x", wire, got)
		}
		ones := 0
		for _, c := range wire {
			ones += bits.OnesCount8(c)
		}
		if b.count() != int64(ones) {
			t.Fatalf("count %d, want %d", b.count(), ones)
		}
	})
}

// FuzzEvents drives a small Scheduler with an arbitrary sequence of events
// (3 bytes each: operation, peer, argument) and checks its invariants and
// every action after each one: requests only go to connected, unbanned
// peers that have the chunk, never for a verified chunk, never beyond the
// peer's window.
func FuzzEvents(f *testing.F) {
	f.Add([]byte{7, 0x21, 0, 0, 0, 0, 2, 0, 0, 6, 0, 1, 6, 1, 1, 7, 0, 2})
	f.Add([]byte{3, 0x00, 0, 0, 0, 0, 1, 0, 2, 1, 0, 2, 6, 0, 9, 7, 0, 1, 9, 0, 200, 9, 0, 200})
	f.Add([]byte{40, 0xff, 0, 1, 0, 0, 2, 0, 2, 2, 2, 6, 2, 3, 3, 1, 4, 10, 20, 11, 0, 0, 8, 1, 5})
	f.Fuzz(runEvents)
}

func runEvents(t *testing.T, data []byte) {
	{
		if len(data) < 2 {
			return
		}
		n := int64(data[0]%40) + 1
		c := data[1]
		cfg := Config{
			Chunks: n, ChunkSize: 1 << 10,
			MinWindow: int(c&3) + 1, MaxWindow: int(c&3) + 1 + int(c>>2&7),
			EndgameDup: int(c>>5&3) + 1, MaxStrikes: int(c>>7) + 1,
			RequestTimeout: 100 * time.Millisecond,
		}
		s, err := New(cfg, nil, rand.New(rand.NewPCG(uint64(len(data)), 0)))
		if err != nil {
			t.Fatal(err)
		}
		now := epoch
		ids := []PeerID{"A", "B", "C", "D"}
		for k := 2; k+2 < len(data); k += 3 {
			op, id, arg := data[k]%18, ids[data[k+1]%4], data[k+2]
			i := int64(arg) % n
			switch op {
			case 0:
				s.PeerJoined(id, now)
			case 1:
				s.PeerLeft(id, now)
			case 2:
				_ = s.HaveAll(id, now)
			case 3:
				_ = s.Have(id, i, now)
			case 4:
				b := newBitfield(int32(n))
				r := rand.New(rand.NewPCG(uint64(arg), 1))
				for j := range int32(n) {
					if r.IntN(2) == 0 {
						b.set(j)
					}
				}
				_ = s.HaveBitfield(id, b.wire(int32(n)), now)
			case 5:
				_ = s.DontHave(id, i, now)
			case 6, 7, 8:
				// Answer the arg-th outstanding request of the peer, if any.
				if p := s.peers[id]; p != nil && len(p.out) > 0 {
					i = int64(sortedKeys(p.out)[int(arg)%len(p.out)])
				}
				switch op {
				case 6:
					_ = s.BlockVerified(id, i, now)
				case 7:
					_ = s.BlockBad(id, i, now)
				case 8:
					_ = s.BlockWriteFailed(id, i, now)
				}
			case 9:
				now = now.Add(time.Duration(arg) * time.Millisecond)
				s.Tick(now)
			case 10:
				now = now.Add(time.Duration(arg) * time.Millisecond)
			case 11:
				s.Prioritize(i, i+int64(arg%8), now)
			case 12:
				s.Pause(now)
			case 13:
				s.Resume(now)
			case 14:
				_ = s.Misbehaved(id, "fuzz", now)
			case 15:
				_ = s.BlockVerified(id, i, now)
			case 16:
				_ = s.Choke(id, now)
			case 17:
				_ = s.Unchoke(id, now)
			}
			if err := checkActions(s, s.Actions()); err != nil {
				t.Fatalf("op %d (%d %s %d): %v", k/3, op, id, arg, err)
			}
			if err := s.check(true); err != nil {
				t.Fatalf("op %d (%d %s %d): %v", k/3, op, id, arg, err)
			}
		}
	}
}

func checkActions(s *Scheduler, as []Action) error {
	got := map[*peer]bool{}
	for _, a := range as {
		switch a.Kind {
		case Request:
			p := s.peers[a.Peer]
			switch {
			case p == nil || p.banned:
				return fmt.Errorf("%v: peer gone or banned", a)
			case !p.has(int32(a.Index)):
				return fmt.Errorf("%v: peer lacks the chunk", a)
			case s.Verified(a.Index):
				return fmt.Errorf("%v: chunk verified", a)
			}
			got[p] = true
		case Done:
			if !s.Done() {
				return fmt.Errorf("done before the end")
			}
		}
	}
	for p := range got {
		if len(p.out) > p.effWindow() {
			return fmt.Errorf("%s: %d requests, window %d", p.id, len(p.out), p.effWindow())
		}
	}
	return nil
}
