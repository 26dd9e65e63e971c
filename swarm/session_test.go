package swarm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm/wire"
)

// pipeStream is a network.Stream over one end of a net.Pipe, which keeps
// deadlines (mocknet's streams ignore them) and buffers nothing: a write
// waits until the other end reads it. The methods the serving side does not
// call are left to the nil Stream (a call panics).
type pipeStream struct {
	network.Stream
	c net.Conn
}

func (p *pipeStream) Read(b []byte) (int, error)                   { return p.c.Read(b) }
func (p *pipeStream) Write(b []byte) (int, error)                  { return p.c.Write(b) }
func (p *pipeStream) Close() error                                 { return p.c.Close() }
func (p *pipeStream) Reset() error                                 { return p.c.Close() }
func (p *pipeStream) CloseRead() error                             { return nil }
func (p *pipeStream) SetDeadline(t time.Time) error                { return p.c.SetDeadline(t) }
func (p *pipeStream) SetReadDeadline(t time.Time) error            { return p.c.SetReadDeadline(t) }
func (p *pipeStream) SetWriteDeadline(t time.Time) error           { return p.c.SetWriteDeadline(t) }
func (p *pipeStream) Scope() network.StreamScope                   { return &network.NullScope{} }
func (p *pipeStream) Conn() network.Conn                           { return nil }
func (p *pipeStream) ResetWithError(network.StreamErrorCode) error { return p.c.Close() }
func (p *pipeStream) Protocol() protocol.ID                        { return wire.ProtocolID }

// TestServeWriteDeadline: a fetcher says HELLO, reads our HAVE, asks for a
// block and then reads nothing, over a stream that keeps deadlines. The
// block's write cannot finish; the serving side gives it IdleTimeout and
// then ends the session, in virtual time, instead of holding the session
// (and its upload slot and buffers) until the swarm closes.
func TestServeWriteDeadline(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		mn := cappedMesh(t, 1, 0)
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		data := randomData(256<<10, 9)
		root := build(t, blocks, "data.bin", data, 64<<10)
		l, err := BuildLayout(context.Background(), blocks, root)
		if err != nil {
			t.Fatal(err)
		}
		const idle = 30 * time.Second
		s := New(mn.Hosts()[0], blocks, Config{Logger: quiet(), IdleTimeout: idle})
		defer s.Close()
		s.Serve(root, &memSource{l: l, data: data})

		ours, theirs := net.Pipe()
		defer theirs.Close()
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			s.serve(&pipeStream{c: ours}, peer.ID("fetcher"))
		}()
		w, r := wire.NewWriter(theirs), wire.NewReader(theirs, 0)
		if err := w.Write(&wire.Hello{Version: wire.Version, Root: root}); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if m, err := r.Read(); err != nil {
			t.Fatal(err)
		} else if _, ok := m.(*wire.HaveAll); !ok {
			t.Fatalf("first message %v, want HAVE_ALL", m)
		}
		if err := w.Write(&wire.Want{Indices: []uint64{0, 1}}); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		select {
		case <-ended:
		case <-time.After(10 * idle): // virtual
			t.Fatalf("the session still holds a write the fetcher does not read %v later", 10*idle)
		}
		if took := time.Since(start); took < idle || took > idle+time.Second {
			t.Errorf("the session ended %v after the WANT, want %v (IdleTimeout)", took, idle)
		}
		if n := s.Stats().ServeSessions; n != 0 {
			t.Errorf("%d serving sessions after it ended", n)
		}
	})
}

// TestStrikeEarlyCounts: a peer that breaks the protocol where the
// scheduler cannot count it (while the manifest loads) is banned at its
// MaxStrikes-th strike, not at the first and not never.
func TestStrikeEarlyCounts(t *testing.T) {
	mn := cappedMesh(t, 1, 0)
	for _, strikes := range []int{0, 1, 3} {
		s := New(mn.Hosts()[0], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), MaxStrikes: strikes})
		f := s.newFetch(context.Background(), cid.Cid{}, FetchOptions{})
		p := peer.ID("liar")
		for k := 1; k <= max(strikes, 1); k++ {
			if s.Banned(p) {
				t.Fatalf("MaxStrikes %d: banned after %d strikes", strikes, k-1)
			}
			f.strikeEarly(p, fmt.Errorf("strike %d", k))
		}
		if !s.Banned(p) {
			t.Errorf("MaxStrikes %d: not banned after %d strikes", strikes, max(strikes, 1))
		}
		s.Close()
	}
}

// countingScope is a stream scope that grants memory up to limit bytes and
// records what is held.
type countingScope struct {
	network.NullScope
	mu               sync.Mutex
	limit, used, top int
}

func (c *countingScope) ReserveMemory(n int, _ uint8) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used+n > c.limit {
		return errors.New("countingScope: over the limit")
	}
	c.used += n
	c.top = max(c.top, c.used)
	return nil
}

func (c *countingScope) ReleaseMemory(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used -= n
}

type scopedPipe struct {
	pipeStream
	scope *countingScope
}

func (p *scopedPipe) Scope() network.StreamScope { return p.scope }

// TestServeReservesBlockMemory: the serving side reserves the memory of
// its block buffers in the stream's resource scope and gives it all back
// when the session ends; a scope that refuses has each chunk answered
// DONT_HAVE (the fetcher asks elsewhere) instead of memory taken past the
// resource manager's limits.
func TestServeReservesBlockMemory(t *testing.T) {
	mn := cappedMesh(t, 1, 0)
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	const chunk = 64 << 10
	data := randomData(4*chunk, 10)
	root := build(t, blocks, "data.bin", data, chunk)
	l, err := BuildLayout(context.Background(), blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	s := New(mn.Hosts()[0], blocks, Config{Logger: quiet()})
	defer s.Close()
	s.Serve(root, &memSource{l: l, data: data})

	for _, tc := range []struct {
		limit int
		want  wire.Type
	}{{2 * chunk, wire.TypeBlock}, {0, wire.TypeDontHave}} {
		scope := &countingScope{limit: tc.limit}
		ours, theirs := net.Pipe()
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			s.serve(&scopedPipe{pipeStream{c: ours}, scope}, peer.ID("fetcher"))
		}()
		w, r := wire.NewWriter(theirs), wire.NewReader(theirs, 0)
		w.Write(&wire.Hello{Version: wire.Version, Root: root})
		w.Write(&wire.Want{Indices: []uint64{0, 1, 2}})
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for range 4 { // HAVE_ALL, then an answer for each chunk
			m, err := r.Read()
			if err != nil {
				t.Fatalf("limit %d: %v after %v", tc.limit, err, got)
			}
			got = append(got, m.Type().String())
			if len(got) > 1 && m.Type() != tc.want {
				t.Errorf("limit %d: got %v, want each chunk answered %v", tc.limit, got, tc.want)
			}
		}
		theirs.Close()
		<-ended
		scope.mu.Lock()
		if scope.used != 0 {
			t.Errorf("limit %d: %d bytes still reserved after the session ended", tc.limit, scope.used)
		}
		if tc.limit > 0 && (scope.top == 0 || scope.top > 2*chunk) {
			t.Errorf("limit %d: at most %d bytes reserved at once, want 1 to 2 buffers of %d", tc.limit, scope.top, chunk)
		}
		scope.mu.Unlock()
	}
}

// rawPipeSession says HELLO for root to s over a net.Pipe and reads the
// first HAVE; the session runs until the returned end is closed, and ended
// is closed when it has.
func rawPipeSession(t *testing.T, s *Swarm, root cid.Cid, p peer.ID) (*wire.Writer, *wire.Reader, net.Conn, chan struct{}) {
	t.Helper()
	ours, theirs := net.Pipe()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		s.serve(&pipeStream{c: ours}, p)
	}()
	w, r := wire.NewWriter(theirs), wire.NewReader(theirs, 0)
	w.Write(&wire.Hello{Version: wire.Version, Root: root})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := r.Read(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*wire.HaveAll); !ok {
		t.Fatalf("first message %v, want HAVE_ALL", m)
	}
	return w, r, theirs, ended
}

// TestServeStuckHolderLosesSlot drives the choker through the serving code
// in virtual time, its timer included: with one upload slot, A asks for a
// block and stops reading, so its write hangs; B asks and is choked. A's
// slot goes to B (UNCHOKE) once A has been stuck on its block for
// StuckRevoke (15 s), at the first check after that (checks run every
// 200 ms while B waits), and B is then served.
func TestServeStuckHolderLosesSlot(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		mn := cappedMesh(t, 1, 0)
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		data := randomData(256<<10, 11)
		root := build(t, blocks, "data.bin", data, 64<<10)
		l, err := BuildLayout(context.Background(), blocks, root)
		if err != nil {
			t.Fatal(err)
		}
		s := New(mn.Hosts()[0], blocks, Config{Logger: quiet(), UploadSlots: 1})
		defer s.Close()
		s.Serve(root, &memSource{l: l, data: data})

		aw, _, a, aEnded := rawPipeSession(t, s, root, peer.ID("A"))
		aw.Write(&wire.Want{Indices: []uint64{0}})
		if err := aw.Flush(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // A's block is being written, into a pipe nobody reads
		start := time.Now()
		bw, br, b, bEnded := rawPipeSession(t, s, root, peer.ID("B"))
		bw.Write(&wire.Want{Indices: []uint64{1}})
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		for _, want := range []wire.Type{wire.TypeChoke, wire.TypeUnchoke} {
			m, err := br.Read()
			if err != nil {
				t.Fatal(err)
			}
			if m.Type() != want {
				t.Fatalf("B got %v, want %v", m.Type(), want)
			}
		}
		took := time.Since(start)
		if took < 15*time.Second || took > 15*time.Second+400*time.Millisecond {
			t.Errorf("B was unchoked %v after A got stuck, want 15 s and at most two checks", took)
		}
		t.Logf("B unchoked %v after A got stuck", took)
		bw.Write(&wire.Want{Indices: []uint64{1}})
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if m, err := br.Read(); err != nil {
			t.Fatal(err)
		} else if blk, ok := m.(*wire.Block); !ok || blk.Index != 1 {
			t.Fatalf("B got %v after UNCHOKE and a WANT, want BLOCK 1", m)
		}
		if n := s.Stats().Chokes; n != 2 {
			t.Errorf("%d chokes, want 2 (B, then A for being stuck)", n)
		}
		a.Close()
		b.Close()
		<-aEnded
		<-bEnded
	})
}

// TestServeServiceScope runs a real libp2p host on loopback TCP with a
// resource manager that gives the swarm's service 1 KiB: a serving stream
// joins the service (its scope counts it), and a block buffer of 64 KiB is
// refused there, so the chunk is answered DONT_HAVE: the node's limits
// bound what its sessions hold.
func TestServeServiceScope(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	limits := rcmgr.PartialLimitConfig{Service: map[string]rcmgr.ResourceLimits{ServiceName: {Memory: 1 << 10}}}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Build(rcmgr.InfiniteLimits)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.ResourceManager(rm))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	data := randomData(128<<10, 12)
	root := build(t, blocks, "data.bin", data, 64<<10)
	l, err := BuildLayout(ctx, blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	s := New(a, blocks, Config{Logger: quiet()})
	defer s.Close()
	s.Serve(root, &memSource{l: l, data: data})

	if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatal(err)
	}
	st, err := b.NewStream(ctx, a.ID(), wire.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	st.SetDeadline(time.Now().Add(30 * time.Second))
	w, r := wire.NewWriter(st), wire.NewReader(st, 0)
	w.Write(&wire.Hello{Version: wire.Version, Root: root})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := r.Read(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*wire.HaveAll); !ok {
		t.Fatalf("first message %v, want HAVE_ALL", m)
	}
	var streams int
	if err := rm.ViewService(ServiceName, func(sc network.ServiceScope) error {
		streams = sc.Stat().NumStreamsInbound
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if streams != 1 {
		t.Errorf("the service scope counts %d inbound streams, want the session's 1", streams)
	}
	w.Write(&wire.Want{Indices: []uint64{0}})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := r.Read(); err != nil {
		t.Fatal(err)
	} else if m.Type() != wire.TypeDontHave {
		t.Errorf("got %v with 1 KiB for the service, want DONT_HAVE", m.Type())
	}
}

// sessionGoroutines counts the goroutines running a method of a fetching
// session (*conn): its reader, its writer and, while blocks wait, its
// verifier.
func sessionGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "swarm.(*conn).") {
			count++
		}
	}
	return count
}

// TestIdleSessionNoVerifier: a fetch has sessions with 8 peers that each
// have chunk 0 and nothing else (the seeder is out of reach). Once chunk 0
// is verified, every session is idle and holds two goroutines, its reader
// and its writer: the verifier of blocks starts at a block and ends when
// none waits. It used to run from the session's start to its end, a
// third goroutine for every session, most of them idle in a flash crowd.
func TestIdleSessionNoVerifier(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const peers = 8
		sn := newStallNet(t, peers)
		first := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := sn.fetcher.Fetch(ctx, sn.root, FetchOptions{Dest: filepath.Join(t.TempDir(), "f"), Hints: sn.hints(), NoConnected: true,
				Verified: func(i int64) {
					if i == 0 {
						close(first)
					}
				}})
			done <- err
		}()
		select {
		case <-first:
		case err := <-done:
			t.Fatalf("the fetch ended before chunk 0: %v", err)
		}
		time.Sleep(time.Second) // nothing more comes: every session is idle
		synctest.Wait()
		if n := sessionGoroutines(); n > 2*peers {
			t.Errorf("%d goroutines in the fetch's %d idle sessions, want at most 2 each (reader, writer)", n, peers)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("fetch = %v, want it cancelled", err)
		}
	})
}
