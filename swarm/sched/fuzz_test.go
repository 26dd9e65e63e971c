package sched

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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
		pr := NewPrinter(epoch)
		var pa Parser
		for k := 2; k+2 < len(data); k += 3 {
			op, id, arg := data[k]%18, ids[data[k+1]%4], data[k+2]
			i := int64(arg) % n
			e := Event{Peer: id, Index: i, Time: now}
			switch op {
			case 0:
				e = Event{Kind: PeerJoined, Peer: id, Time: now}
			case 1:
				e = Event{Kind: PeerLeft, Peer: id, Time: now}
			case 2:
				e = Event{Kind: HaveAll, Peer: id, Time: now}
			case 3:
				e.Kind = Have
			case 4:
				b := newBitfield(int32(n))
				r := rand.New(rand.NewPCG(uint64(arg), 1))
				for j := range int32(n) {
					if r.IntN(2) == 0 {
						b.set(j)
					}
				}
				e = Event{Kind: HaveBitfield, Peer: id, Bits: b.wire(int32(n)), Time: now}
			case 5:
				e.Kind = DontHave
			case 6, 7, 8:
				// Answer the arg-th outstanding request of the peer, if any.
				if p := s.peers[id]; p != nil && len(p.out) > 0 {
					e.Index = int64(sortedKeys(p.out)[int(arg)%len(p.out)])
				}
				e.Kind = [...]EventKind{BlockVerified, BlockBad, BlockWriteFailed}[op-6]
			case 9:
				now = now.Add(time.Duration(arg) * time.Millisecond)
				e = Event{Kind: Tick, Time: now}
			case 10:
				now = now.Add(time.Duration(arg) * time.Millisecond)
				e = Event{} // the clock only
			case 11:
				e = Event{Kind: Prioritize, Index: i, To: i + int64(arg%8), Time: now}
			case 12:
				e = Event{Kind: Pause, Time: now}
			case 13:
				e = Event{Kind: Resume, Time: now}
			case 14:
				e = Event{Kind: Misbehaved, Peer: id, Reason: "fuzz", Time: now}
			case 15:
				e.Kind = BlockVerified
			case 16:
				e = Event{Kind: Choke, Peer: id, Time: now}
			case 17:
				e = Event{Kind: Unchoke, Peer: id, Time: now}
			}
			var acts []Action
			if e.Kind != 0 {
				acts, _ = s.Step(e)
				// The event reads back from its transcript line.
				text, err := pr.AppendEvent(nil, e)
				if err != nil {
					t.Fatalf("op %d: printing %v: %v", k/3, e, err)
				}
				var got []Event
				for line := range strings.Lines(string(text)) {
					evs, err := pa.Parse(line)
					if err != nil {
						t.Fatalf("op %d: parsing %q: %v", k/3, text, err)
					}
					got = append(got, evs...)
				}
				if len(got) != 1 || !sameEvent(got[0], e) {
					t.Fatalf("op %d: %+v printed as %q reads back as %+v", k/3, e, text, got)
				}
			}
			if err := checkActions(s, acts); err != nil {
				t.Fatalf("op %d (%d %s %d): %v", k/3, op, id, arg, err)
			}
			if err := s.check(true); err != nil {
				t.Fatalf("op %d (%d %s %d): %v", k/3, op, id, arg, err)
			}
		}
	}
}

// sameEvent reports whether a and b are the same event; no bytes and
// empty bytes are the same bitfield.
func sameEvent(a, b Event) bool {
	return a.Kind == b.Kind && a.Time.Equal(b.Time) && a.Peer == b.Peer && a.Index == b.Index &&
		a.To == b.To && bytes.Equal(a.Bits, b.Bits) && a.Reason == b.Reason
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

// FuzzTranscriptText: the event lines of any text that the Parser reads
// print back (Printer) as lines that read as the same events at the same
// times, and print again to the same bytes; each event's own text form
// (String) reads back with ParseEvent. A line refused leaves the clock as
// it was.
func FuzzTranscriptText(f *testing.F) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("misbehave A \"a\\nb\"\nmisbehave B  two   words \nwait 2562047h47m16.854775807s\nwait 1ns\ntick 1.5ms\nprio 0 0\nprio -1 9\nhave A -5,2-3\n")
	f.Fuzz(func(t *testing.T, in string) {
		var p Parser
		var evs []Event
		for line := range strings.Lines(in) {
			before := p.Now()
			got, err := p.Parse(line)
			if err != nil {
				if !errors.Is(err, ErrTranscript) {
					t.Fatalf("%q: error %v does not wrap ErrTranscript", line, err)
				}
				if !p.Now().Equal(before) {
					t.Fatalf("%q: refused, but moved the clock from %v to %v", line, before, p.Now())
				}
				continue
			}
			evs = append(evs, got...)
			if len(evs) > 1<<12 {
				return // a range of a million indices: enough
			}
		}
		print := func(evs []Event) []byte {
			pr := NewPrinter(epoch)
			var b []byte
			for _, e := range evs {
				var err error
				if b, err = pr.AppendEvent(b, e); err != nil {
					t.Fatalf("printing %+v: %v", e, err)
				}
				{
					s := e.String()
					back, err := ParseEvent(s, e.Time)
					if err != nil || !sameEvent(back, e) {
						t.Fatalf("%+v: String %q reads back as %+v, %v", e, s, back, err)
					}
				}
			}
			return b
		}
		text := print(evs)
		var q Parser
		var again []Event
		for line := range strings.Lines(string(text)) {
			got, err := q.Parse(line)
			if err != nil {
				t.Fatalf("printed line %q: %v", line, err)
			}
			again = append(again, got...)
		}
		if len(again) != len(evs) {
			t.Fatalf("%d events printed as\n%s\nread back as %d", len(evs), text, len(again))
		}
		for k := range evs {
			if !sameEvent(evs[k], again[k]) {
				t.Fatalf("event %d: %+v printed as\n%s\nreads back as %+v", k, evs[k], text, again[k])
			}
		}
		if text2 := print(again); string(text2) != string(text) {
			t.Fatalf("printed twice differs:\n%s\nthen\n%s", text, text2)
		}
	})
}

// FuzzHeader: a "new" line that ParseHeader reads prints back (String) as
// one that reads as the same Header and prints the same.
func FuzzHeader(f *testing.F) {
	f.Add("new chunks=16 size=1024 min=4 max=4 have=0-7 seed=2")
	f.Add("new chunks=4 size=1024 sizes=1024*3,7*1 seed=9 seq=18446744073709551615 inflight=20ms timeout=1s strikes=2 dup=1")
	f.Fuzz(func(t *testing.T, line string) {
		h, err := ParseHeader(line)
		if err != nil {
			if !errors.Is(err, ErrTranscript) {
				t.Fatalf("%q: error %v does not wrap ErrTranscript", line, err)
			}
			return
		}
		s := h.String()
		h2, err := ParseHeader(s)
		if err != nil {
			t.Fatalf("%q printed as %q: %v", line, s, err)
		}
		if s2 := h2.String(); s2 != s || !reflect.DeepEqual(h, h2) {
			t.Fatalf("%q printed as %q reads back as %+v (printed %q), want %+v", line, s, h2, s2, h)
		}
		// A small one makes the Scheduler it describes, or says why not;
		// its chunks have the sizes the runs give.
		if h.Config.Chunks > 4096 {
			return
		}
		sch, err := h.New()
		if err != nil {
			if !errors.Is(err, ErrConfig) && !errors.Is(err, ErrBitfield) {
				t.Fatalf("%q: New: %v wraps neither ErrConfig nor ErrBitfield", line, err)
			}
			return
		}
		var want []int
		for _, r := range h.Sizes {
			for range r.Count {
				want = append(want, r.Size)
			}
		}
		for i := range int32(h.Config.Chunks) {
			if len(want) > 0 && sch.size(i) != want[i] {
				t.Fatalf("%q: chunk %d has %d bytes, want %d", line, i, sch.size(i), want[i])
			}
		}
		if got := NewHeader(sch.cfg, h.Have, h.Seed, h.Seq); got.String() != NewHeader(sch.cfg, h2.Have, h2.Seed, h2.Seq).String() {
			t.Fatalf("%q: NewHeader differs", line)
		}
	})
}
