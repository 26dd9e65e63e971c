package swarm

// Hostile peers that speak swarm/wire by hand, against a real Swarm over
// mocknet: a fetcher that sends what no fetcher should to a node that
// serves, and a seeder that sends what no seeder should to a node that
// fetches. Each attack must end the session (stream reset, or ERROR and
// reset), be counted or strike the peer, allocate nothing near what the
// peer claimed, and leave the node working.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/swarm/sched"
	"github.com/peer-project/peer/swarm/wire"
)

// hostileChunk and hostileChunks shape the root every attack is about.
const (
	hostileChunk  = 64 << 10
	hostileChunks = 16
)

// hostileRoot builds a 1 MiB root of 16 chunks in blocks.
func hostileRoot(t testing.TB) (*memBlocks, cid.Cid, *Layout, []byte) {
	t.Helper()
	data := randomData(hostileChunk*hostileChunks, 11)
	blocks, root, l := fileRoot(t, data, hostileChunk)
	return blocks, root, l, data
}

// rawSession is a hand-written fetcher's session with a swarm that serves
// the hostile root, past HELLO and its HAVE_ALL. Everything it opens is
// closed when tb ends.
type rawSession struct {
	server  *Swarm
	fetcher peer.ID // the hand-written side's host
	root    cid.Cid
	w       *wire.Writer
	r       *wire.Reader
}

func newRawSession(tb testing.TB) *rawSession {
	tb.Helper()
	blocks, root, l, data := hostileRoot(tb)
	hosts := meshHosts(tb, 2)
	server := New(hosts[0], blocks, Config{Logger: quiet()})
	tb.Cleanup(func() { server.Close() })
	server.Serve(root, strictSource{&memSource{l: l, data: data}})
	st, err := hosts[1].NewStream(context.Background(), hosts[0].ID(), wire.ProtocolID)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Reset() })
	rs := &rawSession{server: server, fetcher: hosts[1].ID(), root: root, w: wire.NewWriter(st), r: wire.NewReader(st, 0)}
	rs.w.Write(&wire.Hello{Version: wire.Version, Root: root})
	rs.w.Flush()
	if m, err := rs.r.Read(); err != nil || m.Type() != wire.TypeHaveAll {
		tb.Fatalf("answer to HELLO: %v %v", m, err)
	}
	return rs
}

// strictSource is a memSource whose Has answers like the node's sources:
// false outside the layout.
type strictSource struct{ *memSource }

func (s strictSource) Has(i int64) bool { return i >= 0 && i < s.l.NumChunks() }

// frame returns a raw frame: length, type byte, payload.
func frame(length uint64, typ byte, payload []byte) []byte {
	return append(append(binary.AppendUvarint(nil, length), typ), payload...)
}

// encode returns m as the wire writes it.
func encode(t *testing.T, m wire.Msg) []byte {
	t.Helper()
	var b bytes.Buffer
	w := wire.NewWriter(&b)
	if err := w.Write(m); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// totalAlloc returns the bytes allocated by the process so far.
func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// allocLimit bounds what one attack may make the process allocate (a
// session, a 1 MiB root, the wire's buffers), far below what the attacks
// claim (4 GiB frames, 2^63 indices).
const allocLimit = 64 << 20

// TestHostileFetcher opens sessions to a serving Swarm and sends, after
// (or instead of) HELLO, what no fetcher should. Each must end the stream
// (the server sends ERROR with the code expected and closes it, or resets
// it) and count a protocol violation; the server must then still serve an
// honest fetch.
func TestHostileFetcher(t *testing.T) {
	blocks, root, l, data := hostileRoot(t)
	tests := []struct {
		name    string
		noHello bool // the attack replaces HELLO
		bytes   func(t *testing.T) []byte
		code    wire.ErrCode // the ERROR expected before the reset; 0: none required
	}{
		{"length prefix of 4 GiB", false, func(*testing.T) []byte { return frame(4<<30, byte(wire.TypeWant), nil) }, wire.CodeProtocol},
		{"length prefix of 2^64-1", false, func(*testing.T) []byte { return frame(^uint64(0), byte(wire.TypeBlock), nil) }, wire.CodeProtocol},
		{"unknown message type", false, func(*testing.T) []byte { return frame(1, 0x7f, nil) }, wire.CodeProtocol},
		{"WANT past the end", false, func(t *testing.T) []byte { return encode(t, &wire.Want{Indices: []uint64{hostileChunks}}) }, wire.CodeProtocol},
		{"WANT of index 2^63", false, func(t *testing.T) []byte { return encode(t, &wire.Want{Indices: []uint64{1 << 63}}) }, wire.CodeProtocol},
		{"HAVE_BITFIELD of the wrong length", false, func(t *testing.T) []byte { return encode(t, &wire.HaveBitfield{Bits: []byte{0xff, 0xff, 0xff}}) }, wire.CodeProtocol},
		{"BLOCK never requested", false, func(t *testing.T) []byte {
			return encode(t, &wire.Block{Index: 0, Data: data[:hostileChunk]})
		}, wire.CodeProtocol},
		{"WANT before HELLO", true, func(t *testing.T) []byte { return encode(t, &wire.Want{Indices: []uint64{0}}) }, wire.CodeProtocol},
		{"HELLO of the next version", true, func(t *testing.T) []byte { return encode(t, &wire.Hello{Version: wire.Version + 1, Root: root}) }, wire.CodeProtocol},
		{"length prefix of 4 GiB before HELLO", true, func(*testing.T) []byte { return frame(4<<30, byte(wire.TypeHello), nil) }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hosts := meshHosts(t, 3)
			server := New(hosts[0], blocks, Config{Logger: quiet()})
			defer server.Close()
			server.Serve(root, strictSource{&memSource{l: l, data: data}})

			before := totalAlloc()
			st, err := hosts[1].NewStream(ctx, hosts[0].ID(), wire.ProtocolID)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Reset()
			st.SetDeadline(time.Now().Add(20 * time.Second))
			r := wire.NewReader(st, 0)
			if !tc.noHello {
				if _, err := st.Write(encode(t, &wire.Hello{Version: wire.Version, Root: root})); err != nil {
					t.Fatal(err)
				}
				if m, err := r.Read(); err != nil {
					t.Fatalf("no answer to HELLO: %v", err)
				} else if _, ok := m.(*wire.HaveAll); !ok {
					t.Fatalf("answer to HELLO: %v", m.Type())
				}
			}
			if _, err := st.Write(tc.bytes(t)); err != nil {
				t.Fatal(err)
			}
			// The server must end the stream; what it says first is noted.
			var got []wire.Msg
			var end error
			for range 100 {
				m, err := r.Read()
				if err != nil {
					end = err
					break
				}
				got = append(got, m)
				if dh, ok := m.(*wire.DontHave); ok && tc.name == "WANT of index 2^63" {
					t.Errorf("WANT of %d was answered DONT_HAVE: an index of 2^63 or more passed the server's range check (it must be a violation)", dh.Indices)
				}
			}
			alloc := totalAlloc() - before
			var codes []wire.ErrCode
			for _, m := range got {
				if e, ok := m.(*wire.Error); ok {
					codes = append(codes, e.Code)
				}
			}
			t.Logf("server answered %d messages, ERROR codes %v; stream ended with %v; %d KiB allocated; violations %d", len(got), codes, end, alloc>>10, server.Stats().ProtocolViolations)
			if end == nil || errors.Is(end, os.ErrDeadlineExceeded) {
				t.Fatalf("the server did not end the stream: %v", end)
			}
			if tc.code != 0 {
				// The server counts a violation, says why (ERROR), and
				// closes the stream, in that order.
				if v := server.Stats().ProtocolViolations; v != 1 {
					t.Errorf("%d protocol violations counted, want 1", v)
				}
				if len(codes) != 1 || codes[0] != tc.code {
					t.Errorf("ERROR codes %v before the end of the stream, want [%v]", codes, tc.code)
				}
			}
			if alloc > allocLimit {
				t.Errorf("the attack made the process allocate %d MiB (limit %d MiB)", alloc>>20, allocLimit>>20)
			}
			// The server still serves an honest fetcher.
			honest := New(hosts[2], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
			defer honest.Close()
			dest := filepath.Join(t.TempDir(), "f.bin")
			if _, err := honest.Fetch(ctx, root, FetchOptions{Dest: dest, Hints: []peer.AddrInfo{{ID: hosts[0].ID()}}, NoConnected: true}); err != nil {
				t.Fatalf("honest fetch after the attack: %v", err)
			}
			if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
				t.Fatal("honest fetch after the attack: wrong bytes")
			}
		})
	}
}

// hostileSeeder serves root's manifest honestly from blocks and misbehaves
// as act says. first is its answer to HELLO; act is called on every
// message it reads after that (WANT, WANT_NODE, ...) and on nil right
// after first is sent; it returns raw bytes to send. Its handler ends when
// the stream does.
func hostileSeeder(t *testing.T, h host.Host, blocks *memBlocks, first wire.Msg, act func(m wire.Msg) []byte) {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	h.SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
		wg.Add(1)
		defer wg.Done()
		defer st.Reset()
		r := wire.NewReader(st, 0)
		if m, err := r.Read(); err != nil || m.Type() != wire.TypeHello {
			return
		}
		out := encode(t, first)
		out = append(out, act(nil)...)
		if _, err := st.Write(out); err != nil {
			return
		}
		for {
			m, err := r.Read()
			if err != nil {
				return
			}
			var out []byte
			if wn, ok := m.(*wire.WantNode); ok {
				b, _ := blocks.GetBlock(context.Background(), wn.CID)
				out = encode(t, &wire.Node{CID: wn.CID, Data: b})
			}
			out = append(out, act(m)...)
			if len(out) > 0 {
				if _, err := st.Write(out); err != nil {
					return
				}
			}
		}
	})
}

// TestHostileSeeder fetches a root whose only provider is a hand-written
// seeder that serves the manifest honestly but then misbehaves. Each
// attack must end its session and get it banned (or, where noted, its
// session dropped), so that the fetch fails for want of providers without
// writing a byte it did not verify; nothing near what the seeder claimed
// may be allocated; and the same Swarm must then fetch from an honest
// seeder.
func TestHostileSeeder(t *testing.T) {
	blocks, root, l, data := hostileRoot(t)
	once := func(fn func(m wire.Msg) []byte) func(wire.Msg) []byte {
		var mu sync.Mutex
		done := false
		return func(m wire.Msg) []byte {
			mu.Lock()
			defer mu.Unlock()
			if done {
				return nil
			}
			out := fn(m)
			done = out != nil
			return out
		}
	}
	onWant := func(fn func(w *wire.Want) []byte) func(wire.Msg) []byte {
		return once(func(m wire.Msg) []byte {
			if w, ok := m.(*wire.Want); ok {
				return fn(w)
			}
			return nil
		})
	}
	right := func(i uint64) []byte { c := l.Chunks[i]; return data[c.Offset : c.Offset+int64(c.Size)] }
	tests := []struct {
		name  string
		first wire.Msg
		act   func(t *testing.T) func(wire.Msg) []byte
		ban   bool // banned; else the session is only dropped
	}{
		{"length prefix of 4 GiB (manifest phase)", &wire.HaveAll{}, func(*testing.T) func(wire.Msg) []byte {
			return once(func(m wire.Msg) []byte {
				if m == nil {
					return nil
				}
				return frame(4<<30, byte(wire.TypeBlock), nil)
			})
		}, true},
		{"unknown message type (manifest phase)", &wire.HaveAll{}, func(*testing.T) func(wire.Msg) []byte {
			return once(func(m wire.Msg) []byte {
				if m == nil {
					return nil
				}
				return frame(1, 0x7f, nil)
			})
		}, true},
		{"length prefix of 4 GiB", &wire.HaveAll{}, func(*testing.T) func(wire.Msg) []byte {
			return onWant(func(*wire.Want) []byte { return frame(4<<30, byte(wire.TypeBlock), nil) })
		}, true},
		{"unknown message type", &wire.HaveAll{}, func(*testing.T) func(wire.Msg) []byte {
			return onWant(func(*wire.Want) []byte { return frame(1, 0x7f, nil) })
		}, true},
		{"HAVE_BITFIELD of the wrong length", &wire.HaveBitfield{Bits: []byte{0xff, 0xff, 0xff}}, func(*testing.T) func(wire.Msg) []byte {
			return func(wire.Msg) []byte { return nil }
		}, true},
		{"HAVE past the end", &wire.HaveNone{}, func(t *testing.T) func(wire.Msg) []byte {
			return once(func(m wire.Msg) []byte {
				if m == nil {
					return nil
				}
				return encode(t, &wire.Have{Index: 1 << 40})
			})
		}, true},
		{"BLOCK never requested", &wire.HaveAll{}, func(t *testing.T) func(wire.Msg) []byte {
			return onWant(func(w *wire.Want) []byte {
				asked := map[uint64]bool{}
				for _, i := range w.Indices {
					asked[i] = true
				}
				for i := range uint64(hostileChunks) {
					if !asked[i] {
						return encode(t, &wire.Block{Index: i, Data: right(i)})
					}
				}
				return encode(t, &wire.Block{Index: hostileChunks, Data: right(0)})
			})
		}, true},
		{"BLOCK past the end", &wire.HaveAll{}, func(t *testing.T) func(wire.Msg) []byte {
			return onWant(func(*wire.Want) []byte { return encode(t, &wire.Block{Index: 1 << 40, Data: right(0)}) })
		}, true},
		{"BLOCK of the wrong size (one byte more)", &wire.HaveAll{}, func(t *testing.T) func(wire.Msg) []byte {
			return onWant(func(w *wire.Want) []byte {
				i := w.Indices[0]
				return encode(t, &wire.Block{Index: i, Data: append(append([]byte(nil), right(i)...), 0)})
			})
		}, true},
		{"BLOCK of 4 MiB for a 64 KiB chunk", &wire.HaveAll{}, func(t *testing.T) func(wire.Msg) []byte {
			return onWant(func(w *wire.Want) []byte {
				return encode(t, &wire.Block{Index: w.Indices[0], Data: make([]byte, 4<<20)})
			})
		}, true},
		{"BLOCK of the wrong size (short)", &wire.HaveAll{}, func(t *testing.T) func(wire.Msg) []byte {
			return onWant(func(w *wire.Want) []byte {
				i := w.Indices[0]
				return encode(t, &wire.Block{Index: i, Data: right(i)[:100]})
			})
		}, true},
		{"NODE never requested", &wire.HaveAll{}, func(t *testing.T) func(wire.Msg) []byte {
			return once(func(wire.Msg) []byte {
				return encode(t, &wire.Node{CID: integrity.Block([]byte("unasked")), Data: make([]byte, wire.MaxNodeSize)})
			})
		}, true},
		{"DONT_HAVE never requested", &wire.HaveAll{}, func(t *testing.T) func(wire.Msg) []byte {
			return once(func(m wire.Msg) []byte {
				if m == nil {
					return nil
				}
				idx := make([]uint64, wire.MaxWant)
				for i := range idx {
					idx[i] = uint64(i % hostileChunks)
				}
				return encode(t, &wire.DontHave{Indices: idx})
			})
		}, true},
		{"CHOKE and UNCHOKE flood", &wire.HaveAll{}, func(t *testing.T) func(wire.Msg) []byte {
			return onWant(func(*wire.Want) []byte {
				var b []byte
				for range 1000 {
					b = append(b, encode(t, &wire.Choke{})...)
					b = append(b, encode(t, &wire.Unchoke{})...)
				}
				return b
			})
		}, true},
		{"HELLO in the middle", &wire.HaveAll{}, func(t *testing.T) func(wire.Msg) []byte {
			return onWant(func(*wire.Want) []byte { return encode(t, &wire.Hello{Version: wire.Version, Root: root}) })
		}, true},
		{"length prefix of 4 GiB instead of HAVE", &wire.HaveAll{}, func(*testing.T) func(wire.Msg) []byte {
			return nil // replaced below: the first message itself is the attack
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// Not meshHosts: the mocknet must close before the Cleanup of
			// hostileSeeder waits for its handlers.
			mn, err := mocknet.FullMeshConnected(3)
			if err != nil {
				t.Fatal(err)
			}
			defer mn.Close()
			hosts := mn.Hosts()
			act := tc.act(t)
			if act == nil {
				// The first answer is a 4 GiB frame.
				hosts[0].SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
					defer st.Reset()
					if m, err := wire.NewReader(st, 0).Read(); err != nil || m.Type() != wire.TypeHello {
						return
					}
					st.Write(frame(4<<30, byte(wire.TypeHaveBitfield), nil))
					io.Copy(io.Discard, st)
				})
			} else {
				hostileSeeder(t, hosts[0], blocks, tc.first, act)
			}
			fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
			defer fetcher.Close()
			dest := filepath.Join(t.TempDir(), "f.bin")
			before := totalAlloc()
			_, err = fetcher.Fetch(ctx, root, FetchOptions{Dest: dest, Hints: []peer.AddrInfo{{ID: hosts[0].ID()}}, NoConnected: true, FindTimeout: time.Second})
			alloc := totalAlloc() - before
			st := fetcher.Stats()
			t.Logf("fetch: %v; banned %v; %d KiB allocated; stats %+v", err, fetcher.Banned(hosts[0].ID()), alloc>>10, st)
			if err == nil {
				t.Fatal("the fetch from a hostile seeder alone completed")
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the fetch from a hostile seeder alone hung until the deadline")
			}
			if tc.ban && !fetcher.Banned(hosts[0].ID()) {
				t.Errorf("the hostile seeder was not banned")
			}
			if st.ChunksVerified != 0 {
				t.Errorf("%d chunks verified from a seeder that sent no good block", st.ChunksVerified)
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Errorf("a destination exists (err %v)", err)
			}
			if alloc > allocLimit {
				t.Errorf("the attack made the process allocate %d MiB (limit %d MiB)", alloc>>20, allocLimit>>20)
			}
			// The same fetcher still fetches from an honest seeder.
			honest := New(hosts[2], blocks, Config{Logger: quiet()})
			defer honest.Close()
			honest.Serve(root, strictSource{&memSource{l: l, data: data}})
			if _, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: dest, Hints: []peer.AddrInfo{{ID: hosts[2].ID()}}, NoConnected: true}); err != nil {
				t.Fatalf("honest fetch after the attack: %v", err)
			}
			if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
				t.Fatal("honest fetch after the attack: wrong bytes")
			}
		})
	}
}

// TestBadBlockAfterTheLoop: a block that fails its hash as the fetch
// completes (the loop no longer reads events) still gets its sender
// banned, whether it is posted after the fetch's context ended or was left
// in the queue the loop did not get to.
func TestBadBlockAfterTheLoop(t *testing.T) {
	hosts := meshHosts(t, 3)
	s := New(hosts[0], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet()})
	defer s.Close()
	queued, late := hosts[1].ID(), hosts[2].ID()

	ctx, cancel := context.WithCancel(context.Background())
	f := s.newFetch(ctx, integrity.Block([]byte("root")), FetchOptions{})
	f.events <- peerSaid(&conn{peer: queued}, sched.BlockBad, 3) // never handled by a loop
	cancel()
	f.badBlock(&conn{peer: late}, 4) // the loop is over: post fails
	f.shutdown()
	for _, p := range []peer.ID{queued, late} {
		if !s.Banned(p) {
			t.Errorf("%s sent a bad block as the fetch ended and is not banned", p)
		}
	}
}

// TestFetcherSaysWhy: when the fetching side ends a session (it bans the
// seeder, or the seeder broke the protocol), it sends ERROR with the code
// and then closes the stream, as the serving side does, so that the seeder
// reads why instead of seeing a reset.
func TestFetcherSaysWhy(t *testing.T) {
	blocks, root, l, data := hostileRoot(t)
	right := func(i uint64) []byte { c := l.Chunks[i]; return data[c.Offset : c.Offset+int64(c.Size)] }
	tests := []struct {
		name  string
		first wire.Msg
		// onWant returns what the seeder sends for the first WANT; nil
		// onWant: the attack is sent right after first.
		onWant func(t *testing.T, w *wire.Want) []byte
		now    []byte
		code   wire.ErrCode
	}{
		{"bad block", &wire.HaveAll{}, func(t *testing.T, w *wire.Want) []byte {
			bad := append([]byte(nil), right(w.Indices[0])...)
			bad[0] ^= 1
			return encode(t, &wire.Block{Index: w.Indices[0], Data: bad})
		}, nil, wire.CodeBanned},
		{"unknown message type", &wire.HaveAll{}, func(*testing.T, *wire.Want) []byte {
			return frame(1, 0x7f, nil)
		}, nil, wire.CodeProtocol},
		{"BLOCK never requested", &wire.HaveAll{}, func(t *testing.T, w *wire.Want) []byte {
			i := uint64(hostileChunks - 1)
			for slices.Contains(w.Indices, i) {
				i--
			}
			return encode(t, &wire.Block{Index: i, Data: right(i)})
		}, nil, wire.CodeProtocol},
		{"WANT from the serving side (manifest phase)", &wire.HaveAll{}, nil,
			encode(t, &wire.Want{Indices: []uint64{0}}), wire.CodeProtocol},
		{"WANT instead of a HAVE", &wire.Want{Indices: []uint64{0}}, nil, nil, wire.CodeProtocol},
		{"unknown type instead of a HAVE", nil, nil, frame(1, 0x7f, nil), wire.CodeProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hosts := meshHosts(t, 2)
			// The seeder's last read: the ERROR it got, or the error that
			// ended its stream.
			type end struct {
				msg *wire.Error
				err error
			}
			ends := make(chan end, 1)
			hosts[0].SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
				defer st.Reset()
				r := wire.NewReader(st, 0)
				if m, err := r.Read(); err != nil || m.Type() != wire.TypeHello {
					return
				}
				var out []byte
				if tc.first != nil {
					out = encode(t, tc.first)
				}
				out = append(out, tc.now...)
				if _, err := st.Write(out); err != nil {
					return
				}
				sentWant := false
				for {
					m, err := r.Read()
					if err != nil {
						ends <- end{err: err}
						return
					}
					var out []byte
					switch m := m.(type) {
					case *wire.Error:
						ends <- end{msg: m}
						return
					case *wire.WantNode:
						b, _ := blocks.GetBlock(ctx, m.CID)
						out = encode(t, &wire.Node{CID: m.CID, Data: b})
					case *wire.Want:
						if tc.onWant != nil && !sentWant {
							sentWant = true
							out = tc.onWant(t, m)
						}
					}
					if _, err := st.Write(out); err != nil {
						ends <- end{err: err}
						return
					}
				}
			})
			fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
			defer fetcher.Close()
			dest := filepath.Join(t.TempDir(), "f.bin")
			_, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: dest, Hints: []peer.AddrInfo{{ID: hosts[0].ID()}}, NoConnected: true, FindTimeout: time.Second})
			if err == nil {
				t.Fatal("the fetch from a hostile seeder alone completed")
			}
			var e end
			select {
			case e = <-ends:
			case <-ctx.Done():
				t.Fatal("the seeder's stream never ended")
			}
			t.Logf("fetch: %v; the seeder read %v / %v", err, e.msg, e.err)
			if e.msg == nil {
				t.Fatalf("the seeder's stream ended with %v, not an ERROR", e.err)
			}
			if e.msg.Code != tc.code {
				t.Errorf("ERROR %v, want code %v", e.msg, tc.code)
			}
			if !fetcher.Banned(hosts[0].ID()) {
				t.Error("the seeder was not banned")
			}
		})
	}
}

// TestBadNodeBanned: a seeder that answers WANT_NODE with bytes that fail
// the block's hash is banned, and reads ERROR (banned), on every path that
// reads a DAG node: a fetch, and GetBlock, which the node's inspect,
// Open and ROOT/path use.
func TestBadNodeBanned(t *testing.T) {
	_, root, _, _ := hostileRoot(t)
	for _, path := range []string{"Fetch", "GetBlock"} {
		t.Run(path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hosts := meshHosts(t, 2)
			codes := make(chan wire.ErrCode, 1)
			hosts[0].SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
				defer st.Reset()
				r := wire.NewReader(st, 0)
				if m, err := r.Read(); err != nil || m.Type() != wire.TypeHello {
					return
				}
				if _, err := st.Write(encode(t, &wire.HaveAll{})); err != nil {
					return
				}
				for {
					m, err := r.Read()
					if err != nil {
						close(codes)
						return
					}
					switch m := m.(type) {
					case *wire.Error:
						codes <- m.Code
						return
					case *wire.WantNode:
						if _, err := st.Write(encode(t, &wire.Node{CID: m.CID, Data: []byte("not the block")})); err != nil {
							close(codes)
							return
						}
					}
				}
			})
			banned := make(chan peer.ID, 1)
			fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), OnBan: func(p peer.ID) {
				select {
				case banned <- p:
				default:
				}
			}})
			defer fetcher.Close()
			hints := []peer.AddrInfo{{ID: hosts[0].ID()}}
			done := make(chan error, 1)
			gctx, gcancel := context.WithCancel(ctx)
			defer gcancel()
			go func() {
				var err error
				if path == "Fetch" {
					_, err = fetcher.Fetch(gctx, root, FetchOptions{Dest: filepath.Join(t.TempDir(), "f"), Hints: hints, NoConnected: true})
				} else {
					_, err = fetcher.GetBlock(gctx, root, root, hints, nil)
				}
				done <- err
			}()
			select {
			case p := <-banned:
				if p != hosts[0].ID() {
					t.Errorf("banned %s, want the seeder", p)
				}
			case err := <-done:
				t.Fatalf("%s returned %v before the seeder was banned", path, err)
			case <-ctx.Done():
				t.Fatalf("the seeder of a bad DAG node was not banned (%s)", path)
			}
			select {
			case code, ok := <-codes:
				if !ok || code != wire.CodeBanned {
					t.Errorf("the seeder read ERROR code %v (ok %v), want %v", code, ok, wire.CodeBanned)
				}
			case <-ctx.Done():
				t.Error("the seeder's session did not end")
			}
			gcancel()
			if err := <-done; err == nil {
				t.Errorf("%s of a root whose only seeder lies returned no error", path)
			}
		})
	}
}

// TestCancelFloodBanned: CANCELs of chunks that were never asked for, past
// the slack a WANT and CANCEL written out of order may take, end the
// session with ERROR (protocol) and ban the peer; within the budget (a
// CANCEL per chunk asked for) a session goes on.
func TestCancelFloodBanned(t *testing.T) {
	rs := newRawSession(t)
	server, root, w, r := rs.server, rs.root, rs.w, rs.r
	// Within the budget: CANCELs of what was asked, and of more, up to the
	// slack; the session answers a WANT_NODE after them.
	w.Write(&wire.Want{Indices: []uint64{1, 2}})
	w.Write(&wire.Cancel{Indices: []uint64{1, 2, 3}})
	w.Write(&wire.WantNode{CID: root})
	w.Flush()
	for {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("the session ended within the CANCEL budget: %v", err)
		}
		if _, ok := m.(*wire.Node); ok {
			break
		}
		if e, ok := m.(*wire.Error); ok {
			t.Fatalf("ERROR within the CANCEL budget: %v", e)
		}
	}
	// The flood: 8 CANCELs of 256 chunks never asked for, then a
	// WANT_NODE that a server that took the flood answers.
	absent := make([]uint64, wire.MaxWant)
	for i := range absent {
		absent[i] = uint64(i % hostileChunks)
	}
	for range 8 {
		w.Write(&wire.Cancel{Indices: absent})
	}
	w.Write(&wire.WantNode{CID: root})
	w.Flush()
	var got wire.Msg
	for got == nil {
		m, err := r.Read()
		if err != nil {
			t.Fatalf("the stream ended with %v and no ERROR", err)
		}
		switch m.(type) {
		case *wire.Error, *wire.Node:
			got = m
		}
	}
	e, ok := got.(*wire.Error)
	if !ok {
		t.Fatalf("after 2048 CANCELs of chunks never asked for, the server answered %v: no ERROR", got.Type())
	}
	t.Logf("ERROR: %v", e)
	if e.Code != wire.CodeProtocol {
		t.Errorf("ERROR %v, want code %v", e, wire.CodeProtocol)
	}
	if !server.Banned(rs.fetcher) {
		t.Error("the CANCEL flooder was not banned")
	}
	if v := server.Stats().ProtocolViolations; v != 1 {
		t.Errorf("%d protocol violations counted, want 1", v)
	}
}

// TestHaveFloodWhileManifestLoads: a seeder answers HELLO with HAVE_NONE,
// then floods 100,000 HAVEs, and answers every WANT_NODE with NODE_MISSING. It has
// no manifest to give, so it is no source: the fetch must fail for want of
// providers after FindTimeout rather than wait on it forever; the flood
// must cost the fetch a bit per chunk announced, not a list entry per
// message; and HAVEs repeated past the budget must get it banned.
func TestHaveFloodWhileManifestLoads(t *testing.T) {
	_, root, _, _ := hostileRoot(t)
	const n = 100_000
	for _, tc := range []struct {
		name  string
		index func(k uint64) uint64
		ban   bool
	}{
		{"different chunks", func(k uint64) uint64 { return k }, false},
		{"one chunk again and again", func(uint64) uint64 { return 7 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hosts := meshHosts(t, 2)
			var flood [][]byte // pieces of whole frames
			var piece []byte
			size := 0
			for k := range uint64(n) {
				piece = append(piece, encode(t, &wire.Have{Index: tc.index(k)})...)
				if len(piece) >= 32<<10 || k == n-1 {
					size += len(piece)
					flood, piece = append(flood, piece), nil
				}
			}
			var wg sync.WaitGroup
			defer wg.Wait()
			hosts[0].SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
				wg.Add(1)
				defer wg.Done()
				defer st.Reset()
				r := wire.NewReader(st, 0)
				if m, err := r.Read(); err != nil || m.Type() != wire.TypeHello {
					return
				}
				if _, err := st.Write(encode(t, &wire.HaveNone{})); err != nil {
					return
				}
				var mu sync.Mutex // one writer at a time: whole frames
				write := func(b []byte) error {
					mu.Lock()
					defer mu.Unlock()
					_, err := st.Write(b)
					return err
				}
				wg.Add(1)
				go func() { // the flood, beside the answers
					defer wg.Done()
					for _, p := range flood {
						if write(p) != nil {
							return
						}
					}
				}()
				for {
					m, err := r.Read()
					if err != nil {
						return
					}
					if wn, ok := m.(*wire.WantNode); ok {
						if write(encode(t, &wire.NodeMissing{CID: wn.CID})) != nil {
							return
						}
					}
				}
			})
			fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
			defer fetcher.Close()
			runtime.GC()
			before := totalAlloc()
			_, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: filepath.Join(t.TempDir(), "f"), Hints: []peer.AddrInfo{{ID: hosts[0].ID()}}, NoConnected: true, FindTimeout: time.Second})
			alloc := totalAlloc() - before
			t.Logf("fetch: %v; banned %v; %d KiB allocated for %d KiB of HAVEs", err, fetcher.Banned(hosts[0].ID()), alloc>>10, size>>10)
			if !errors.Is(err, ErrNoProviders) {
				t.Errorf("fetch from a seeder with no manifest: %v, want ErrNoProviders", err)
			}
			if tc.ban != fetcher.Banned(hosts[0].ID()) {
				t.Errorf("banned %v, want %v", !tc.ban, tc.ban)
			}
			// What the wire allocates to decode a HAVE (8 bytes) and the
			// fetch's own running, with room; not a list of every HAVE.
			if limit := uint64(12*n + 2<<20); alloc > limit {
				t.Errorf("%d KiB allocated for %d HAVEs, more than %d KiB", alloc>>10, n, limit>>10)
			}
		})
	}
}

// TestWantNodeAgainBanned: a fetcher that asks for a DAG node it was
// sent twice already (74 bytes that cost the server a store read and up to
// 1 MiB) gets ERROR (protocol) and a ban instead of a third copy.
func TestWantNodeAgainBanned(t *testing.T) {
	rs := newRawSession(t)
	server, root, w, r := rs.server, rs.root, rs.w, rs.r
	var got []wire.Type
	for range 3 {
		w.Write(&wire.WantNode{CID: root})
		w.Flush()
		m, err := r.Read()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, m.Type())
		if e, ok := m.(*wire.Error); ok {
			if len(got) != 3 || e.Code != wire.CodeProtocol {
				t.Fatalf("answers %v, ERROR %v; want NODE, NODE, then ERROR (protocol)", got, e)
			}
			if !server.Banned(rs.fetcher) {
				t.Error("not banned")
			}
			return
		}
	}
	t.Fatalf("answers %v to three WANT_NODEs of one block: no ERROR", got)
}
