package swarm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/swarm/wire"
)

// TestFetchSaysInOrder: a fetch with Focus (a streaming reader's) says
// IN_ORDER right after HELLO, on protocol 2.1; a fetch without it does
// not (its next message is its request of the root's DAG).
func TestFetchSaysInOrder(t *testing.T) {
	for _, focus := range []bool{true, false} {
		t.Run(map[bool]string{true: "focus", false: "no focus"}[focus], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hosts := cappedMesh(t, 2, 0).Hosts()
			root := build(t, &memBlocks{m: map[cid.Cid][]byte{}}, "x", randomData(4<<10, 25), 1<<10)
			type seen struct {
				proto protocol.ID
				next  wire.Type
				err   error
			}
			got := make(chan seen, 1)
			hosts[1].SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
				defer st.Reset()
				r, w := wire.NewReader(st, 0), wire.NewWriter(st)
				if m, err := r.Read(); err != nil || m.Type() != wire.TypeHello {
					got <- seen{err: errors.Join(errors.New("no HELLO"), err)}
					return
				}
				w.Write(&wire.HaveAll{})
				if err := w.Flush(); err != nil {
					got <- seen{err: err}
					return
				}
				m, err := r.Read()
				if err != nil {
					got <- seen{err: err}
					return
				}
				got <- seen{proto: st.Protocol(), next: m.Type()}
				<-ctx.Done()
			})
			f := New(hosts[0], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet()})
			defer f.Close()
			opts := FetchOptions{Dest: filepath.Join(t.TempDir(), "x"), NoConnected: true, Hints: hintsOf(hosts[1:])}
			if focus {
				ch := make(chan Range, 1)
				ch <- Range{From: 0, To: 1 << 62}
				opts.Focus = ch
			}
			fetched := make(chan error, 1)
			go func() {
				_, err := f.Fetch(ctx, root, opts)
				fetched <- err
			}()
			s := <-got
			cancel()
			<-fetched
			if s.err != nil {
				t.Fatal(s.err)
			}
			want := wire.TypeWantNode
			if focus {
				want = wire.TypeInOrder
			}
			if s.proto != wire.ProtocolID || s.next != want {
				t.Errorf("after HELLO on %s: %v, want %v on %s", s.proto, s.next, want, wire.ProtocolID)
			}
		})
	}
}

// TestStreamFromPrevVersionSeed: a streaming reader (Focus) fetches from
// a seed of the version before, which speaks only protocol 2.0: the
// stream is negotiated on 2.0, no IN_ORDER is sent there (2.0 has none:
// the seed would end the session), and the fetch completes.
func TestStreamFromPrevVersionSeed(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	for range 2 {
		if _, err := mn.GenPeer(); err != nil {
			t.Fatal(err)
		}
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	fetchFromPrevVersionSeed(t, mn.Hosts()[0], mn.Hosts()[1], false)
}

// TestStaleVersionClaimRenegotiated: as TestStreamFromPrevVersionSeed,
// but the fetcher's peerstore says the seed speaks 2.1 too (identify was
// stale: the seed stopped speaking it). libp2p sends HELLO behind 2.1's
// name unasked; the seed refuses the name and resets the stream with
// "protocol negotiation failed" (TCP carries the reason, mocknet none).
// The fetcher negotiates again, gets 2.0, and the fetch completes.
func TestStaleVersionClaimRenegotiated(t *testing.T) {
	seed, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	fetcher, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer fetcher.Close()
	fetchFromPrevVersionSeed(t, seed, fetcher, true)
}

// TestRefusedVersionReadRenegotiated: as TestStaleVersionClaimRenegotiated,
// but the seed's refusal of 2.1 is read: its host answers "na" and waits
// for the next name, where go-libp2p's resets the stream at once (other
// implementations need not; and the reset may come after the "na" is
// read). On mocknet.
func TestRefusedVersionReadRenegotiated(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	for range 2 {
		if _, err := mn.GenPeer(); err != nil {
			t.Fatal(err)
		}
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	seedHost := mn.Hosts()[0]
	seedHost.Network().SetStreamHandler(func(s network.Stream) {
		proto, handle, err := seedHost.Mux().Negotiate(s)
		if err != nil {
			io.Copy(io.Discard, s) // no reset: the "na" stays to be read
			s.Reset()
			return
		}
		s.SetProtocol(proto)
		handle(proto, s)
	})
	fetchFromPrevVersionSeed(t, seedHost, mn.Hosts()[1], true)
}

// fetchFromPrevVersionSeed has seedHost serve a root over protocol 2.0
// only, connects fetchHost to it and, once identify is done, sets what
// fetchHost's peerstore says of 2.1: that the seed speaks it if
// staleClaim, that it does not otherwise (identify may have been sent
// before the seed dropped 2.1). Then fetchHost fetches the root as a
// streaming reader, and the file must be exact, with no protocol
// violation at the seed.
func fetchFromPrevVersionSeed(t *testing.T, seedHost, fetchHost host.Host, staleClaim bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := randomData(1<<20, 23)
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	root := build(t, blocks, "old.bin", data, 64<<10)
	l, err := BuildLayout(ctx, blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	seed := New(seedHost, blocks, Config{Logger: quiet()})
	defer seed.Close()
	seed.Serve(root, &memSource{l: l, data: data})
	seedHost.RemoveStreamHandler(wire.ProtocolID) // a 2.0 node, before anyone asks
	hints := hintsOf([]host.Host{seedHost})
	identified(ctx, t, fetchHost, hints[0])
	claim := fetchHost.Peerstore().RemoveProtocols
	if staleClaim {
		claim = fetchHost.Peerstore().AddProtocols
	}
	if err := claim(seedHost.ID(), wire.ProtocolID); err != nil {
		t.Fatal(err)
	}

	f := New(fetchHost, &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet()})
	defer f.Close()
	focus := make(chan Range, 1)
	focus <- Range{From: 0, To: 1 << 62}
	dest := filepath.Join(t.TempDir(), "old.bin")
	if _, err := f.Fetch(ctx, root, FetchOptions{Dest: dest, Focus: focus, Hints: hints}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Fatal("the file differs")
	}
	if v := seed.Stats().ProtocolViolations; v != 0 {
		t.Errorf("the 2.0 seed counted %d protocol violations", v)
	}
}

// TestInOrderOnlyRightAfterHello: IN_ORDER on protocol 2.0, which has no
// such message, or after another message than HELLO, ends the session
// with ERROR (protocol); right after HELLO on 2.1 it is taken.
func TestInOrderOnlyRightAfterHello(t *testing.T) {
	tests := []struct {
		name  string
		proto protocol.ID
		msgs  []wire.Msg
		ok    bool
	}{
		{"after HELLO", wire.ProtocolID, []wire.Msg{&wire.InOrder{}, &wire.Want{Indices: []uint64{0}}}, true},
		{"on 2.0", wire.PrevProtocolID, []wire.Msg{&wire.InOrder{}}, false},
		{"after WANT", wire.ProtocolID, []wire.Msg{&wire.Want{Indices: []uint64{0}}, &wire.InOrder{}}, false},
		{"twice", wire.ProtocolID, []wire.Msg{&wire.InOrder{}, &wire.InOrder{}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hosts := cappedMesh(t, 2, 0).Hosts()
			blocks := &memBlocks{m: map[cid.Cid][]byte{}}
			data := randomData(4<<10, 24)
			root := build(t, blocks, "f.bin", data, 1<<10)
			l, err := BuildLayout(ctx, blocks, root)
			if err != nil {
				t.Fatal(err)
			}
			seed := New(hosts[0], blocks, Config{Logger: quiet()})
			defer seed.Close()
			seed.Serve(root, &memSource{l: l, data: data})

			st, err := hosts[1].NewStream(ctx, hosts[0].ID(), tt.proto)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Reset()
			w, r := wire.NewWriter(st), wire.NewReader(st, 0)
			w.Write(&wire.Hello{Version: wire.Version, Root: root})
			for _, m := range tt.msgs {
				w.Write(m)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			var last wire.Msg
			for {
				m, err := r.Read()
				if err != nil {
					break
				}
				last = m
				if m.Type() == wire.TypeBlock || m.Type() == wire.TypeError {
					break
				}
			}
			e, isErr := last.(*wire.Error)
			switch {
			case tt.ok && (last == nil || last.Type() != wire.TypeBlock):
				t.Errorf("last message %v, want the BLOCK asked for", last)
			case !tt.ok && (!isErr || e.Code != wire.CodeProtocol):
				t.Errorf("last message %v, want ERROR (protocol)", last)
			case !tt.ok:
				t.Logf("%v", e)
			}
		})
	}
}

// hintsOf returns the addresses of hosts, as hints.
func hintsOf(hosts []host.Host) []peer.AddrInfo {
	out := make([]peer.AddrInfo, len(hosts))
	for i, h := range hosts {
		out[i] = peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
	}
	return out
}
