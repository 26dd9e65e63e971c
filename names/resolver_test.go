package names

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/peer-project/peer/internal/bubble"
	"go.uber.org/goleak"
)

// refusal is one OnRefused report.
type refusal struct {
	peer peer.ID
	name Name
	err  error
}

type testNet struct {
	t       *testing.T
	mn      mocknet.Mocknet
	hosts   []host.Host
	rs      []*Resolver
	refused []chan refusal
}

// newTestNet makes n hosts on mocknet, each with a Resolver, with the
// given one-way latency on every link. Links and connections are the
// caller's (link, connect).
func newTestNet(t *testing.T, n int, latency time.Duration, cfg Config) *testNet {
	t.Helper()
	tn := &testNet{t: t, mn: mocknet.New()}
	tn.mn.SetLinkDefaults(mocknet.LinkOptions{Latency: latency})
	t.Cleanup(func() {
		for _, r := range tn.rs {
			r.Close()
		}
		tn.mn.Close()
	})
	for range n {
		h, err := tn.mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan refusal, 64)
		c := cfg
		c.Host = h
		c.OnRefused = func(p peer.ID, name Name, err error) {
			select {
			case ch <- refusal{p, name, err}:
			default:
			}
		}
		r, err := NewResolver(c)
		if err != nil {
			t.Fatal(err)
		}
		tn.hosts = append(tn.hosts, h)
		tn.rs = append(tn.rs, r)
		tn.refused = append(tn.refused, ch)
	}
	return tn
}

func (tn *testNet) connect(i, j int) {
	tn.t.Helper()
	if _, err := tn.mn.LinkPeers(tn.hosts[i].ID(), tn.hosts[j].ID()); err != nil {
		tn.t.Fatal(err)
	}
	if _, err := tn.mn.ConnectPeers(tn.hosts[i].ID(), tn.hosts[j].ID()); err != nil {
		tn.t.Fatal(err)
	}
}

// recv waits for a record on c. The timeout is a guard against a hang,
// virtual in a bubble.
func recv(t *testing.T, c <-chan *Record) *Record {
	t.Helper()
	return recvWithin(t, c, 30*time.Second)
}

func recvWithin(t *testing.T, c <-chan *Record, d time.Duration) *Record {
	t.Helper()
	select {
	case rec, ok := <-c:
		if !ok {
			t.Fatal("subscription closed")
		}
		return rec
	case <-time.After(d):
		t.Fatalf("no record within %v", d)
	}
	return nil
}

// recvSeq waits until c gives a record of sequence seq.
func recvSeq(t *testing.T, c <-chan *Record, seq uint64) *Record {
	t.Helper()
	for {
		rec := recv(t, c)
		if rec.Seq == seq {
			return rec
		}
		if rec.Seq > seq {
			t.Fatalf("got sequence %d, waiting for %d", rec.Seq, seq)
		}
	}
}

func nextRefusal(t *testing.T, c <-chan refusal) refusal {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no refusal reported within 30 s")
	}
	return refusal{}
}

// publishFollow: A publishes, B and C follow; a new record reaches both
// by push. It returns how long the push of the second record took to
// reach B and C.
func publishFollow(t *testing.T, latency time.Duration) (toB, toC time.Duration) {
	tn := newTestNet(t, 3, latency, Config{})
	tn.connect(0, 1)
	tn.connect(0, 2)
	tn.connect(1, 2)
	sk, name := newKey(t)
	a, b, c := tn.rs[0], tn.rs[1], tn.rs[2]

	if err := a.Publish(mustRecord(t, sk, "v1", 1, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	subB, err := b.Follow(name)
	if err != nil {
		t.Fatal(err)
	}
	subC, err := c.Follow(name)
	if err != nil {
		t.Fatal(err)
	}
	if rec := recvSeq(t, subB.C, 1); rec.Root != rootOfBytes("v1") {
		t.Fatalf("B resolved %s to %s", name, rec.Root)
	}
	recvSeq(t, subC.C, 1)

	t0 := time.Now()
	v2 := mustRecord(t, sk, "v2", 2, time.Now().Add(time.Hour))
	if err := a.Publish(v2); err != nil {
		t.Fatal(err)
	}
	if rec := recvSeq(t, subB.C, 2); rec.Root != rootOfBytes("v2") {
		t.Fatalf("B got root %s, want v2", rec.Root)
	}
	toB = time.Since(t0)
	recvSeq(t, subC.C, 2)
	toC = time.Since(t0)
	if best, ok := b.Best(name); !ok || best.Seq != 2 {
		t.Fatalf("B's best: %+v, %v", best, ok)
	}

	// Publishing a sequence that is not above the held one is refused.
	if err := a.Publish(mustRecord(t, sk, "v1b", 2, time.Now().Add(2*time.Hour))); !errors.Is(err, ErrStale) {
		t.Fatalf("republish of sequence 2: %v, want ErrStale", err)
	}

	// A cancelled subscription closes its channel.
	subC.Cancel()
	if _, ok := <-subC.C; ok {
		t.Fatal("cancelled subscription still open")
	}
	return toB, toC
}

// TestPublishFollow runs on a virtual clock with 50 ms links: the push
// reaches each follower within one round trip (100 ms) of Publish.
func TestPublishFollow(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		const latency = 50 * time.Millisecond
		toB, toC := publishFollow(t, latency)
		t.Logf("push reached B after %v, C after %v (link latency %v)", toB, toC, latency)
		if toB > 2*latency || toC > 2*latency {
			t.Fatalf("push took %v to B and %v to C, more than one round trip (%v)", toB, toC, 2*latency)
		}
	})
}

// TestPublishFollowRace is the same on a real clock, so that it runs
// under the race detector.
func TestPublishFollowRace(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs after the net's cleanup
	publishFollow(t, 0)
}

// hostile: B follows A's name; M, which speaks the protocol by hand, sends
// B a replay, a forgery, a record of another key, an expired record, an
// oversized frame and a flood. Each is refused and reported as M's, and
// B keeps A's latest record.
func hostile(t *testing.T) {
	const burst = 16
	tn := newTestNet(t, 2, 0, Config{Rate: 1, Burst: burst})
	mh, err := tn.mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	tn.connect(0, 1)
	if _, err := tn.mn.LinkPeers(mh.ID(), tn.hosts[1].ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.mn.ConnectPeers(mh.ID(), tn.hosts[1].ID()); err != nil {
		t.Fatal(err)
	}
	skA, name := newKey(t)
	skM, _ := newKey(t)
	a, b := tn.rs[0], tn.rs[1]
	eol := time.Now().Add(time.Hour)
	v1 := mustRecord(t, skA, "v1", 1, eol)
	v2 := mustRecord(t, skA, "v2", 2, eol)
	if err := a.Publish(v1); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Follow(name)
	if err != nil {
		t.Fatal(err)
	}
	recvSeq(t, sub.C, 1)
	if err := a.Publish(v2); err != nil {
		t.Fatal(err)
	}
	recvSeq(t, sub.C, 2)

	forged := rewrite(t, mustRecord(t, skA, "evil", 3, eol).Raw, func(pb *ipnsRecordPB) { pb.SignatureV2[0] ^= 0x80 })
	otherKey := mustRecord(t, skM, "evil", 10, eol).Raw
	expired := mustRecord(t, skA, "old", 11, time.Now().Add(-time.Second)).Raw

	st, err := mh.NewStream(context.Background(), tn.hosts[1].ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	var frames []byte
	for _, raw := range [][]byte{v1.Raw, forged, otherKey, expired} {
		frames = appendMessage(frames, &message{typ: msgRecord, name: name, record: raw})
	}
	if _, err := st.Write(frames); err != nil {
		t.Fatal(err)
	}
	for _, want := range []error{ErrStale, ErrSignature, ErrWrongKey, ErrExpired} {
		r := nextRefusal(t, tn.refused[1])
		if r.peer != mh.ID() || !errors.Is(r.err, want) || r.name != name {
			t.Fatalf("reported %s, of %s: %v; want %s, of %s: %v", r.peer, r.name, r.err, mh.ID(), name, want)
		}
		t.Logf("refused: %v", r.err)
	}

	// A frame past the limit: refused, the session reset.
	if _, err := st.Write([]byte{0x80, 0x80, 0x40}); err != nil { // 1 MiB
		t.Fatal(err)
	}
	if r := nextRefusal(t, tn.refused[1]); r.peer != mh.ID() || !errors.Is(r.err, ErrProtocol) || !r.name.IsZero() {
		t.Fatalf("oversized frame reported as %s, of %s: %v; want no name", r.peer, r.name, r.err)
	}
	t.Logf("refused: %v", nextErr(t, st))

	// A flood of requests on a new session: past the burst, it is reset.
	st2, err := mh.NewStream(context.Background(), tn.hosts[1].ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	var flood []byte
	for range 4 * burst {
		flood = appendMessage(flood, &message{typ: msgGet, name: name})
	}
	if _, err := st2.Write(flood); err != nil {
		t.Fatal(err)
	}
	if r := nextRefusal(t, tn.refused[1]); r.peer != mh.ID() || !errors.Is(r.err, ErrFlood) {
		t.Fatalf("flood reported as %s: %v", r.peer, r.err)
	}
	t.Logf("refused: %v", nextErr(t, st2))

	if best, _ := b.Best(name); best.Seq != 2 || best.Root != rootOfBytes("v2") {
		t.Fatalf("after the attacks B holds sequence %d, root %s", best.Seq, best.Root)
	}
	select {
	case rec := <-sub.C:
		t.Fatalf("subscriber told of sequence %d", rec.Seq)
	default:
	}
	// A was never blamed.
	select {
	case r := <-tn.refused[1]:
		t.Fatalf("extra report: %s: %v", r.peer, r.err)
	default:
	}
}

// nextErr reads st until it fails: the peer reset it.
func nextErr(t *testing.T, st network.Stream) error {
	t.Helper()
	buf := make([]byte, 4096)
	for {
		if _, err := st.Read(buf); err != nil {
			return fmt.Errorf("the attacker's stream ended: %w", err)
		}
	}
}

func TestHostile(t *testing.T) {
	bubble.Test(t, hostile)
}

func TestHostileRace(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	hostile(t)
}

// TestLearn: a record found elsewhere (the DHT) is kept if its name is
// followed, and pushed on to the peers that follow it.
func TestLearn(t *testing.T) {
	tn := newTestNet(t, 2, 0, Config{})
	tn.connect(0, 1)
	sk, name := newKey(t)
	a, b := tn.rs[0], tn.rs[1]
	v1 := mustRecord(t, sk, "v1", 1, time.Now().Add(time.Hour))
	if err := a.Learn(v1); !errors.Is(err, ErrNotFollowing) {
		t.Fatalf("Learn of a name not followed: %v, want ErrNotFollowing", err)
	}
	subA, err := a.Follow(name)
	if err != nil {
		t.Fatal(err)
	}
	subB, err := b.Follow(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Learn(v1); err != nil {
		t.Fatal(err)
	}
	recvSeq(t, subA.C, 1)
	recvSeq(t, subB.C, 1) // pushed from A
	v2 := mustRecord(t, sk, "v2", 2, time.Now().Add(time.Hour))
	if err := b.Learn(v2); err != nil {
		t.Fatal(err)
	}
	recvSeq(t, subA.C, 2) // pushed from B
	if err := a.Learn(v1); !errors.Is(err, ErrStale) {
		t.Fatalf("Learn of an older record: %v, want ErrStale", err)
	}
	// A bad record given directly is refused: Learn validates its bytes,
	// and trusts none of its other fields.
	forged := *mustRecord(t, sk, "evil", 3, time.Now().Add(time.Hour))
	forged.Raw = rewrite(t, forged.Raw, func(pb *ipnsRecordPB) { pb.SignatureV2[0] ^= 0x80 })
	if err := a.Learn(&forged); !errors.Is(err, ErrSignature) {
		t.Fatalf("Learn of a forged record: %v, want ErrSignature", err)
	}
	skOther, _ := newKey(t)
	other := *mustRecord(t, skOther, "other", 4, time.Now().Add(time.Hour))
	other.Name = name // the fields say name, the signed bytes another key
	if err := a.Learn(&other); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Learn of another key's record under this name: %v, want ErrWrongKey", err)
	}
	if best, ok := a.Best(name); !ok || best.Seq != 2 {
		t.Fatalf("after the refused records A holds %+v, want sequence 2", best)
	}
}

// resolveRelay: D, which follows nothing, asks its peers for a name; C,
// two hops from the publisher, follows it through B.
func resolveRelay(t *testing.T) {
	tn := newTestNet(t, 4, 10*time.Millisecond, Config{})
	tn.connect(0, 1) // A - B
	tn.connect(1, 2) // B - C
	tn.connect(0, 3) // A - D
	tn.connect(2, 3) // C - D
	sk, name := newKey(t)
	a, b, c, d := tn.rs[0], tn.rs[1], tn.rs[2], tn.rs[3]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, nobody := newKey(t)
	if _, err := d.Resolve(ctx, nobody); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve of an unpublished name: %v, want ErrNotFound", err)
	}
	if err := a.Publish(mustRecord(t, sk, "v1", 1, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	rec, err := d.Resolve(ctx, name)
	if err != nil || rec.Seq != 1 || rec.Root != rootOfBytes("v1") {
		t.Fatalf("D resolved %+v, %v", rec, err)
	}
	if _, ok := d.Best(name); ok {
		t.Fatal("D kept the record of a name it does not follow")
	}

	// C is not connected to A: it hears of A's records through B, which
	// follows the name too. D, connected to A and C, never followed: C's
	// only other path to A goes through it, so the record comes by B.
	subB, err := b.Follow(name)
	if err != nil {
		t.Fatal(err)
	}
	recvSeq(t, subB.C, 1)
	subC, err := c.Follow(name)
	if err != nil {
		t.Fatal(err)
	}
	recvSeq(t, subC.C, 1)
	if err := a.Publish(mustRecord(t, sk, "v2", 2, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	recvSeq(t, subC.C, 2)
	rec, err = d.Resolve(ctx, name)
	if err != nil || rec.Seq != 2 {
		t.Fatalf("D resolved %+v, %v after the update", rec, err)
	}
}

func TestResolveRelay(t *testing.T)     { bubble.Test(t, resolveRelay) }
func TestResolveRelayRace(t *testing.T) { resolveRelay(t) }

// TestExpiry: a record past its validity is no longer given out, and a
// new one is taken at once.
func TestExpiry(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 2, 0, Config{})
		tn.connect(0, 1)
		sk, name := newKey(t)
		a, b := tn.rs[0], tn.rs[1]
		if err := a.Publish(mustRecord(t, sk, "v1", 1, time.Now().Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		sub, err := b.Follow(name)
		if err != nil {
			t.Fatal(err)
		}
		recvSeq(t, sub.C, 1)
		time.Sleep(time.Hour + time.Second) // virtual: the record's validity ends
		if rec, ok := b.Best(name); ok {
			t.Fatalf("B still gives out an expired record: %+v", rec)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := b.Resolve(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Resolve after expiry: %v, want ErrNotFound", err)
		}
		if err := a.Publish(mustRecord(t, sk, "v2", 2, time.Now().Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		recvSeq(t, sub.C, 2)
	})
}

func TestClose(t *testing.T) {
	tn := newTestNet(t, 2, 0, Config{})
	tn.connect(0, 1)
	_, name := newKey(t)
	sub, err := tn.rs[1].Follow(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.rs[1].Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-sub.C; ok {
		t.Fatal("subscription open after Close")
	}
	if err := tn.rs[1].Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := tn.rs[1].Follow(name); !errors.Is(err, ErrClosed) {
		t.Fatalf("Follow after Close: %v", err)
	}
	if _, err := tn.rs[1].Resolve(context.Background(), name); !errors.Is(err, ErrClosed) {
		t.Fatalf("Resolve after Close: %v", err)
	}
	if _, err := NewResolver(Config{}); err == nil {
		t.Fatal("NewResolver without a host")
	}
}

// reconnect: a follower whose connection to the publisher drops hears of
// the next record once it is connected again.
func reconnect(t *testing.T) {
	tn := newTestNet(t, 2, 5*time.Millisecond, Config{})
	tn.connect(0, 1)
	sk, name := newKey(t)
	a, b := tn.rs[0], tn.rs[1]
	if err := a.Publish(mustRecord(t, sk, "v1", 1, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Follow(name)
	if err != nil {
		t.Fatal(err)
	}
	recvSeq(t, sub.C, 1)
	// Mocknet closes B's end of the connection after A's: wait for B to
	// see it gone, or the dial below would return the dying connection.
	evs, err := tn.hosts[1].EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer evs.Close()
	if err := tn.mn.DisconnectPeers(tn.hosts[0].ID(), tn.hosts[1].ID()); err != nil {
		t.Fatal(err)
	}
	for tn.hosts[1].Network().Connectedness(tn.hosts[0].ID()) == network.Connected {
		select {
		case <-evs.Out():
		case <-time.After(30 * time.Second):
			t.Fatal("B still connected to A 30 s after the disconnection")
		}
	}
	if err := a.Publish(mustRecord(t, sk, "v2", 2, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.mn.ConnectPeers(tn.hosts[1].ID(), tn.hosts[0].ID()); err != nil {
		t.Fatal(err)
	}
	if rec := recvSeq(t, sub.C, 2); rec.Root != rootOfBytes("v2") {
		t.Fatalf("after reconnecting B got root %s", rec.Root)
	}
}

func TestReconnect(t *testing.T)     { bubble.Test(t, reconnect) }
func TestReconnectRace(t *testing.T) { reconnect(t) }

// TestFollowThenResolve: a Resolve right after Follow, while Follow's
// session to the peer is still opening, waits for it and asks the peer.
func TestFollowThenResolve(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 2, 20*time.Millisecond, Config{})
		tn.connect(0, 1)
		sk, name := newKey(t)
		if err := tn.rs[0].Publish(mustRecord(t, sk, "v1", 1, time.Now().Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		if _, err := tn.rs[1].Follow(name); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // Follow's session is opening: its stream waits on the 20 ms link
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rec, err := tn.rs[1].Resolve(ctx, name)
		if err != nil || rec.Seq != 1 {
			t.Fatalf("Resolve right after Follow: %+v, %v", rec, err)
		}
	})
}

// TestFollowNoAmplification: a peer that sends FOLLOW for the same name
// again and again gets the record once, not once per FOLLOW (ten small
// messages must not buy ten 10 KiB answers).
func TestFollowNoAmplification(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 1, 0, Config{})
		mh, err := tn.mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tn.mn.LinkPeers(mh.ID(), tn.hosts[0].ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := tn.mn.ConnectPeers(mh.ID(), tn.hosts[0].ID()); err != nil {
			t.Fatal(err)
		}
		sk, name := newKey(t)
		if err := tn.rs[0].Publish(mustRecord(t, sk, "v1", 1, time.Now().Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		st, err := mh.NewStream(context.Background(), tn.hosts[0].ID(), ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Reset()
		follow := appendMessage(nil, &message{typ: msgFollow, names: []Name{name}})
		for range 10 {
			if _, err := st.Write(follow); err != nil {
				t.Fatal(err)
			}
			synctest.Wait() // the answer, if any, is written before the next FOLLOW
		}
		// Mocknet streams have no deadlines: a GET of a name nobody holds
		// is answered NONE, which marks the end of what came before.
		_, nobody := newKey(t)
		if _, err := st.Write(appendMessage(nil, &message{typ: msgGet, name: nobody})); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(st)
		records := 0
		for {
			m, err := readMessage(br)
			if err != nil {
				t.Fatal(err)
			}
			if m.typ == msgNone {
				break
			}
			if m.typ == msgRecord {
				records++
			}
		}
		if records != 1 {
			t.Fatalf("10 FOLLOWs of one name got %d records, want 1", records)
		}
	})
}
