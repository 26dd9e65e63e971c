package sched

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func newTest(t *testing.T, cfg Config, seed uint64) *Scheduler {
	t.Helper()
	s, err := New(cfg, nil, rand.New(rand.NewPCG(seed, 0)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConfig(t *testing.T) {
	bad := []struct {
		name string
		cfg  Config
	}{
		{"no chunks", Config{ChunkSize: 1}},
		{"too many chunks", Config{Chunks: MaxChunks + 1, ChunkSize: 1}},
		{"no chunk size", Config{Chunks: 1}},
		{"huge chunk size", Config{Chunks: 1, ChunkSize: MaxChunkSize + 1}},
		{"negative window", Config{Chunks: 1, ChunkSize: 1, MinWindow: -1}},
		{"min above max", Config{Chunks: 1, ChunkSize: 1, MinWindow: 8, MaxWindow: 4}},
		{"huge window", Config{Chunks: 1, ChunkSize: 1, MaxWindow: MaxWindowLimit + 1}},
		{"negative timeout", Config{Chunks: 1, ChunkSize: 1, RequestTimeout: -time.Second}},
		{"negative in flight", Config{Chunks: 1, ChunkSize: 1, InFlight: -time.Second}},
		{"negative strikes", Config{Chunks: 1, ChunkSize: 1, MaxStrikes: -1}},
		{"too many duplicates", Config{Chunks: 1, ChunkSize: 1, EndgameDup: MaxEndgameDup + 1}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, nil, rand.New(rand.NewPCG(1, 1))); !errors.Is(err, ErrConfig) {
				t.Fatalf("New = %v, want ErrConfig", err)
			}
		})
	}
	if _, err := New(Config{Chunks: 1, ChunkSize: 1}, nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("nil rng: %v, want ErrConfig", err)
	}
	if _, err := New(Config{Chunks: 9, ChunkSize: 1}, []byte{0xff}, rand.New(rand.NewPCG(1, 1))); !errors.Is(err, ErrBitfield) {
		t.Fatalf("short resume bitfield: %v, want ErrBitfield", err)
	}
	s := newTest(t, Config{Chunks: 1, ChunkSize: 1}, 1)
	want := Config{Chunks: 1, ChunkSize: 1, MinWindow: DefaultMinWindow, MaxWindow: DefaultMaxWindow, InFlight: DefaultInFlight,
		RequestTimeout: DefaultRequestTimeout, MaxStrikes: DefaultMaxStrikes, EndgameDup: DefaultEndgameDup}
	if got := s.Config(); got.SizeOf != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("defaults: %+v, want %+v", got, want)
	}
	// What is given stays (the swarm reads its request timeout here).
	if got := newTest(t, Config{Chunks: 1, ChunkSize: 1, RequestTimeout: 3 * time.Second}, 1).Config().RequestTimeout; got != 3*time.Second {
		t.Fatalf("RequestTimeout 3s became %v", got)
	}
}

func TestBitfieldWire(t *testing.T) {
	tests := []struct {
		n    int32
		wire []byte
		bits []int32 // set, in order; nil with err
		err  bool
	}{
		{1, []byte{0x80}, []int32{0}, false},
		{1, []byte{0x40}, nil, true}, // spare bit
		{8, []byte{0x01}, []int32{7}, false},
		{9, []byte{0x00, 0x80}, []int32{8}, false},
		{9, []byte{0x00, 0x40}, nil, true},
		{10, []byte{0x80, 0x40}, []int32{0, 9}, false},
		{10, []byte{0xff}, nil, true}, // short
		{10, []byte{0xff, 0xc0, 0x00}, nil, true},
		{16, []byte{0xa5, 0x5a}, []int32{0, 2, 5, 7, 9, 11, 12, 14}, false},
		{70, append(make([]byte, 8), 0x04), []int32{69}, false},
		{70, append(make([]byte, 8), 0x02), nil, true},
	}
	for _, tt := range tests {
		b, err := parseWire(tt.n, tt.wire)
		if tt.err {
			if !errors.Is(err, ErrBitfield) {
				t.Errorf("parseWire(%d, % x) = %v, want ErrBitfield", tt.n, tt.wire, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseWire(%d, % x): %v", tt.n, tt.wire, err)
			continue
		}
		var got []int32
		b.each(func(i int32) { got = append(got, i) })
		if !slices.Equal(got, tt.bits) {
			t.Errorf("parseWire(%d, % x) = %v, want %v", tt.n, tt.wire, got, tt.bits)
		}
		if w := b.wire(tt.n); !slices.Equal(w, tt.wire) {
			t.Errorf("wire(%d) = % x, want % x", tt.n, w, tt.wire)
		}
	}
}

func TestNextAnd(t *testing.T) {
	a, b := newBitfield(300), newBitfield(300)
	for _, i := range []int32{3, 64, 130, 299} {
		a.set(i)
	}
	for _, i := range []int32{64, 299} {
		b.set(i)
	}
	tests := []struct {
		from, to int32
		b        bitfield
		budget   int
		want     int32
		ok, exh  bool
	}{
		{0, 300, nil, 10, 3, true, false},
		{4, 300, nil, 10, 64, true, false},
		{0, 300, b, 10, 64, true, false},
		{65, 300, b, 10, 299, true, false},
		{65, 299, b, 10, 0, false, false},
		{65, 300, b, 2, 0, false, true},
		{131, 299, nil, 10, 0, false, false},
		{5, 5, nil, 10, 0, false, false},
	}
	for _, tt := range tests {
		i, ok, exh := nextAnd(a, tt.b, tt.from, tt.to, tt.budget)
		if i != tt.want || ok != tt.ok || exh != tt.exh {
			t.Errorf("nextAnd(%d, %d, budget %d) = %d %v %v, want %d %v %v", tt.from, tt.to, tt.budget, i, ok, exh, tt.want, tt.ok, tt.exh)
		}
	}
}

// requests returns the chunks requested in as, in order.
func requests(as []Action, of PeerID) []int64 {
	var out []int64
	for _, a := range as {
		if a.Kind == Request && (of == "" || a.Peer == of) {
			out = append(out, a.Index)
		}
	}
	return out
}

func TestTieBreakIsSeeded(t *testing.T) {
	order := func(seed uint64) string {
		s := newTest(t, Config{Chunks: 1024, ChunkSize: 1, MinWindow: 8, MaxWindow: 8}, seed)
		s.step(Event{Kind: PeerJoined, Peer: "A", Time: epoch})
		if err := s.step(Event{Kind: HaveAll, Peer: "A", Time: epoch}); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(requests(s.pending(), "A"))
	}
	seen := map[string]bool{}
	for seed := range uint64(20) {
		a, b := order(seed), order(seed)
		if a != b {
			t.Fatalf("seed %d: %s then %s", seed, a, b)
		}
		seen[a] = true
	}
	if len(seen) < 20 {
		t.Fatalf("20 seeds gave %d orders", len(seen))
	}
}

// TestRarestFirst: every pick, for a seeder or for a partial peer, is a
// chunk of the least availability among the pickable chunks that the peer
// has. (Below probeBudget chunks the partial peers' search is exhaustive.)
func TestRarestFirst(t *testing.T) {
	for seed := range uint64(10) {
		r := rand.New(rand.NewPCG(seed, 5))
		const n = 200
		s := newTest(t, Config{Chunks: n, ChunkSize: 1}, seed)
		s.step(Event{Kind: Pause, Time: epoch}) // announcements only: picks are made below
		var ps []*peer
		for k := range 6 {
			id := PeerID(fmt.Sprint("P", k))
			s.step(Event{Kind: PeerJoined, Peer: id, Time: epoch})
			b := newBitfield(n)
			for i := range int32(n) {
				if r.IntN(4) > 0 {
					b.set(i)
				}
			}
			if err := s.step(Event{Kind: HaveBitfield, Peer: id, Bits: b.wire(n), Time: epoch}); err != nil {
				t.Fatal(err)
			}
			ps = append(ps, s.peers[id])
		}
		s.step(Event{Kind: PeerJoined, Peer: "S", Time: epoch})
		if err := s.step(Event{Kind: HaveAll, Peer: "S", Time: epoch}); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, s.peers["S"])
		for step := 0; s.bk.n > 0; step++ {
			p := ps[step%len(ps)]
			i, ok, _ := s.pickRarest(p)
			least := int32(-1)
			for c := range int32(n) {
				if s.state[c] == stMissing && p.has(c) && (least < 0 || s.bk.avail[c] < least) {
					least = s.bk.avail[c]
				}
			}
			if !ok {
				if least >= 0 {
					t.Fatalf("seed %d: %s found nothing, but has a pickable chunk", seed, p.id)
				}
				continue
			}
			if !p.has(i) || s.state[i] != stMissing {
				t.Fatalf("seed %d: %s picked %d (has %v, state %d)", seed, p.id, i, p.has(i), s.state[i])
			}
			if s.bk.avail[i] != least {
				t.Fatalf("seed %d: %s picked %d of availability %d, least is %d", seed, p.id, i, s.bk.avail[i], least)
			}
			s.request(p, i, epoch)
			if err := s.check(false); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestEventErrors(t *testing.T) {
	s := newTest(t, Config{Chunks: 4, ChunkSize: 1}, 1)
	s.step(Event{Kind: PeerJoined, Peer: "A", Time: epoch})
	unknown := map[string]error{
		"HaveAll":          s.step(Event{Kind: HaveAll, Peer: "Z", Time: epoch}),
		"HaveBitfield":     s.step(Event{Kind: HaveBitfield, Peer: "Z", Bits: []byte{0xf0}, Time: epoch}),
		"Have":             s.step(Event{Kind: Have, Peer: "Z", Index: 0, Time: epoch}),
		"DontHave":         s.step(Event{Kind: DontHave, Peer: "Z", Index: 0, Time: epoch}),
		"BlockVerified":    s.step(Event{Kind: BlockVerified, Peer: "Z", Index: 0, Time: epoch}),
		"BlockBad":         s.step(Event{Kind: BlockBad, Peer: "Z", Index: 0, Time: epoch}),
		"BlockWriteFailed": s.step(Event{Kind: BlockWriteFailed, Peer: "Z", Index: 0, Time: epoch}),
		"Misbehaved":       s.step(Event{Kind: Misbehaved, Peer: "Z", Reason: "x", Time: epoch}),
	}
	for name, err := range unknown {
		if !errors.Is(err, ErrUnknownPeer) {
			t.Errorf("%s of unknown peer: %v, want ErrUnknownPeer", name, err)
		}
	}
	for _, i := range []int64{-1, 4, 1 << 40} {
		for name, err := range map[string]error{
			"Have":             s.step(Event{Kind: Have, Peer: "A", Index: i, Time: epoch}),
			"DontHave":         s.step(Event{Kind: DontHave, Peer: "A", Index: i, Time: epoch}),
			"BlockVerified":    s.step(Event{Kind: BlockVerified, Peer: "A", Index: i, Time: epoch}),
			"BlockBad":         s.step(Event{Kind: BlockBad, Peer: "A", Index: i, Time: epoch}),
			"BlockWriteFailed": s.step(Event{Kind: BlockWriteFailed, Peer: "A", Index: i, Time: epoch}),
		} {
			if !errors.Is(err, ErrIndex) {
				t.Errorf("%s(%d): %v, want ErrIndex", name, i, err)
			}
		}
	}
	if err := s.step(Event{Kind: HaveBitfield, Peer: "A", Bits: []byte{0xf8}, Time: epoch}); !errors.Is(err, ErrBitfield) {
		t.Errorf("spare bits: %v, want ErrBitfield", err)
	}
	if len(s.pending()) != 0 || s.Stats().Peers[0].Strikes != 0 {
		t.Errorf("refused events changed the state: %+v", s.Stats())
	}
	if err := s.check(true); err != nil {
		t.Fatal(err)
	}
}

func TestActionsDrain(t *testing.T) {
	s := newTest(t, Config{Chunks: 4, ChunkSize: 1, MinWindow: 4}, 1)
	s.step(Event{Kind: PeerJoined, Peer: "A", Time: epoch})
	if err := s.step(Event{Kind: HaveAll, Peer: "A", Time: epoch}); err != nil {
		t.Fatal(err)
	}
	as := s.pending()
	if got := requests(as, "A"); len(got) != 4 {
		t.Fatalf("requests %v, want 4", got)
	}
	if again := s.pending(); len(again) != 0 {
		t.Fatalf("second Actions = %v, want none", again)
	}
	for _, i := range requests(as, "A") {
		if err := s.step(Event{Kind: BlockVerified, Peer: "A", Index: i, Time: epoch.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	as = s.pending()
	if len(as) != 1 || as[0].Kind != Done || as[0].String() != "done" || !s.Done() {
		t.Fatalf("after the last block: %v (done %v), want [done]", as, s.Done())
	}
	for i := range int64(4) {
		if !s.Verified(i) {
			t.Fatalf("chunk %d not verified", i)
		}
	}
}

func TestBanReasonAndStats(t *testing.T) {
	s := newTest(t, Config{Chunks: 8, ChunkSize: 10, MaxStrikes: 2}, 1)
	for _, id := range []PeerID{"B", "A"} {
		s.step(Event{Kind: PeerJoined, Peer: id, Time: epoch})
		if err := s.step(Event{Kind: HaveAll, Peer: id, Time: epoch}); err != nil {
			t.Fatal(err)
		}
	}
	a := requests(s.pending(), "A")
	if err := s.step(Event{Kind: Misbehaved, Peer: "A", Reason: "malformed WANT", Time: epoch}); err != nil {
		t.Fatal(err)
	}
	if err := s.step(Event{Kind: BlockBad, Peer: "A", Index: a[0], Time: epoch}); err != nil {
		t.Fatal(err)
	}
	as := s.pending()
	var ban *Action
	for k := range as {
		if as[k].Kind == Ban {
			ban = &as[k]
		}
	}
	if ban == nil || ban.Peer != "A" || !strings.Contains(ban.Reason, "bad block") || !strings.Contains(ban.Reason, "2 of 2") {
		t.Fatalf("actions %v, want a ban of A for a bad block, strike 2 of 2", as)
	}
	if !s.Banned("A") || s.Banned("B") || s.Banned("nobody") {
		t.Fatal("Banned is wrong")
	}
	st := s.Stats()
	if len(st.Peers) != 2 || st.Peers[0].Peer != "A" || st.Peers[1].Peer != "B" {
		t.Fatalf("peers not sorted: %+v", st.Peers)
	}
	if !st.Peers[0].Banned || st.Peers[0].Strikes != 2 || st.Bans != 1 || st.BadBlocks != 1 || st.Strikes != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDeterministic: the same events give the same actions.
func TestDeterministic(t *testing.T) {
	spec := func() simSpec {
		r := rand.New(rand.NewPCG(42, 0))
		ps := seeders(5, 2e6, func(int) time.Duration { return time.Duration(1+r.IntN(50)) * time.Millisecond })
		ps[1].bad, ps[2].stall, ps[3].leaveAt = true, true, 300*time.Millisecond
		ps[4].have = make([]bool, 200)
		for i := range ps[4].have {
			ps[4].have[i] = r.IntN(2) == 0
		}
		return simSpec{chunks: 200, size: 64 << 10, seed: 42, peers: ps, tick: 50 * time.Millisecond, seek: true,
			cfg: Config{RequestTimeout: 500 * time.Millisecond}}
	}
	a, b := runSim(t, spec()), runSim(t, spec())
	if a != b {
		t.Fatalf("two runs differ:\n%v\n%v", a, b)
	}
	if a.digest == 0 {
		t.Fatal("no actions digested")
	}
}

// TestUseful: a peer is useful while it has a chunk that is not verified,
// whatever else it has. Random HAVEs, DONT_HAVEs, blocks, joins and leaves
// over chunks that span several words; after each, Useful must agree with
// a plain model of what every peer has.
func TestUseful(t *testing.T) {
	const chunks = 150
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 9))
		s := newTest(t, Config{Chunks: chunks, ChunkSize: 1}, seed)
		now := epoch
		ids := []PeerID{"A", "B", "C", "D"}
		has := map[PeerID]map[int64]bool{}
		got := map[int64]bool{}
		for step := range 400 {
			now = now.Add(time.Millisecond)
			id := ids[r.IntN(len(ids))]
			i := int64(r.IntN(chunks))
			var what string
			switch k := r.IntN(20); {
			case has[id] == nil || k == 0:
				what = "join"
				s.step(Event{Kind: PeerJoined, Peer: id, Time: now})
				if has[id] == nil {
					has[id] = map[int64]bool{}
				}
			case k == 1:
				what = "leave"
				s.step(Event{Kind: PeerLeft, Peer: id, Time: now})
				delete(has, id)
			case k == 2 && r.IntN(4) == 0:
				what = "have all"
				s.step(Event{Kind: HaveAll, Peer: id, Time: now})
				for j := range int64(chunks) {
					has[id][j] = true
				}
			case k < 6:
				what = fmt.Sprintf("dont have %d", i)
				s.step(Event{Kind: DontHave, Peer: id, Index: i, Time: now})
				delete(has[id], i)
			case k < 12:
				what = fmt.Sprintf("block %d", i)
				s.step(Event{Kind: BlockVerified, Peer: id, Index: i, Time: now})
				got[i] = true
			default:
				what = fmt.Sprintf("have %d", i)
				s.step(Event{Kind: Have, Peer: id, Index: i, Time: now})
				has[id][i] = true
			}
			s.pending()
			for _, p := range ids {
				want := false
				for j := range has[p] {
					if !got[j] {
						want = true
						break
					}
				}
				if g := s.Useful(p); g != want {
					t.Fatalf("seed %d step %d (%s %s): Useful(%s) = %v, want %v", seed, step, id, what, p, g, want)
				}
			}
		}
	}
	s := newTest(t, Config{Chunks: 2, ChunkSize: 1}, 1)
	if s.Useful("nobody") {
		t.Error("an unknown peer is useful")
	}
	s.step(Event{Kind: PeerJoined, Peer: "A", Time: epoch})
	s.step(Event{Kind: HaveAll, Peer: "A", Time: epoch})
	s.step(Event{Kind: BlockVerified, Peer: "A", Index: 0, Time: epoch})
	s.step(Event{Kind: BlockVerified, Peer: "A", Index: 1, Time: epoch})
	if s.Useful("A") {
		t.Error("a seeder is useful to a download that is done")
	}
}

// TestSpecBitfield feeds the HAVE_BITFIELD example of the protocol spec
// (swarm/wire/doc.go, read as text) through the scheduler's decoder: the
// spec says its bytes mean chunks 0, 2 and 9 of 10, so a peer written from
// the spec must be understood, not refused.
func TestSpecBitfield(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "wire", "doc.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^//\tHAVE_BITFIELD\{[^}]*\}\s+03 04 ([0-9a-f]{2}) ([0-9a-f]{2})$`).FindSubmatch(src)
	if m == nil {
		t.Fatal("no HAVE_BITFIELD example of two bytes in the spec")
	}
	wire, err := hex.DecodeString(string(m[1]) + string(m[2]))
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseWire(10, wire)
	if err != nil {
		t.Fatalf("the spec's bitfield % x for 10 chunks is refused: %v", wire, err)
	}
	if !bytes.Contains(src, []byte("chunks 0, 2 and 9 present of 10")) {
		t.Fatal("the spec no longer says what its example means; update this test with it")
	}
	var got []int32
	b.each(func(i int32) { got = append(got, i) })
	if !slices.Equal(got, []int32{0, 2, 9}) {
		t.Errorf("the spec's bitfield % x decodes to chunks %v, the spec says [0 2 9]", wire, got)
	}
	s := newTest(t, Config{Chunks: 10, ChunkSize: 1024}, 1)
	s.step(Event{Kind: PeerJoined, Peer: "A", Time: epoch})
	if err := s.step(Event{Kind: HaveBitfield, Peer: "A", Bits: wire, Time: epoch}); err != nil {
		t.Fatalf("HaveBitfield of the spec's example: %v", err)
	}
}

// TestStep: Step returns what is pending (the Done of a download resumed
// with every chunk, on the first event), refuses an event of no known
// kind with ErrEvent and changes nothing, and every kind's text form reads
// back as the same event.
func TestStep(t *testing.T) {
	s, err := New(Config{Chunks: 3, ChunkSize: 1}, []byte{0xe0}, rand.New(rand.NewPCG(1, 0)))
	if err != nil {
		t.Fatal(err)
	}
	as, err := s.Step(Event{Kind: Tick, Time: epoch})
	if err != nil || len(as) != 1 || as[0].Kind != Done {
		t.Fatalf("first Step of a download with every chunk: %v, %v; want [done]", as, err)
	}
	for _, k := range []EventKind{0, maxEventKind + 1, 255} {
		as, err := s.Step(Event{Kind: k, Peer: "A", Time: epoch})
		if !errors.Is(err, ErrEvent) || len(as) != 0 {
			t.Errorf("Step of kind %d: %v, %v; want ErrEvent and no action", k, as, err)
		}
		if _, err := (Event{Kind: k}).MarshalText(); !errors.Is(err, ErrTranscript) {
			t.Errorf("MarshalText of kind %d: %v, want ErrTranscript", k, err)
		}
	}
	at := epoch.Add(time.Second)
	for k := EventKind(1); k <= maxEventKind; k++ {
		e := Event{Kind: k, Time: at}
		switch k {
		case Tick, Pause, Resume:
		case Prioritize:
			e.Index, e.To = 3, 9
		default:
			e.Peer = "QmPeer"
			switch k {
			case HaveBitfield:
				e.Bits = []byte{0xa0}
			case Misbehaved:
				e.Reason = "a \"quoted\"\nreason"
			case Have, DontHave, BlockVerified, BlockBad, BlockWriteFailed:
				e.Index = 7
			}
		}
		back, err := ParseEvent(e.String(), at)
		if err != nil || !sameEvent(back, e) {
			t.Errorf("%v: %q reads back as %+v, %v", k, e.String(), back, err)
		}
	}
	if _, err := (Event{Kind: Have, Peer: "two words"}).MarshalText(); !errors.Is(err, ErrTranscript) {
		t.Errorf("a peer ID with a space: %v, want ErrTranscript", err)
	}
}
