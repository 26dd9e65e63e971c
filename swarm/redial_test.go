package swarm

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm/wire"
)

// redialStage stages a peer found again while the session to it is being
// opened, with the failure of the sessions the fetcher opens to it told
// by fail: a fetcher (hosts[1]) asks a connected peer b (hosts[2]) for the
// root; b, before it answers, starts fetching the root and opens a
// session to the fetcher (which then finds b again, Swarm.fetching); then
// b ends the fetcher's session with fail(k, st, w), k counting from 1, or
// answers HAVE_NONE when fail returns false. A fail that sends ERROR ends
// the stream as the serving side does (endWith: ERROR, then Close): a
// Reset right after the ERROR may discard it, and the fetcher then sees a
// reset, not the ERROR. It returns how many more sessions the fetcher
// opened to b within spreadHold of the first failure: no rediscovery
// comes that soon, so any is the re-dial at once.
func redialStage(t *testing.T, fail func(k int, st network.Stream, w *wire.Writer) bool) int {
	t.Helper()
	var again int
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ss := newSpreadSetup(t, 3, 1<<20, 4<<20, 256<<10)
		a, b := ss.hosts[1], ss.hosts[2]

		hellos := make(chan int, 8)
		release := make(chan struct{})
		var n atomic.Int32
		var wg sync.WaitGroup
		defer wg.Wait()
		b.SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
			wg.Add(1)
			defer wg.Done()
			r, w := wire.NewReader(st, 0), wire.NewWriter(st)
			if m, err := r.Read(); err != nil || m.Type() != wire.TypeHello {
				st.Reset()
				return
			}
			k := int(n.Add(1))
			hellos <- k
			if k == 1 {
				select {
				case <-release:
				case <-ctx.Done():
					st.Reset()
					return
				}
			}
			if fail(k, st, w) {
				return // fail ended the stream
			}
			defer st.Reset()
			w.Write(&wire.HaveNone{})
			if w.Flush() != nil {
				return
			}
			for {
				if _, err := r.Read(); err != nil {
					return
				}
			}
		})

		fa := New(a, &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
		defer fa.Close()
		fetched := make(chan error, 1)
		wg.Go(func() {
			_, err := fa.Fetch(ctx, ss.root, FetchOptions{Dest: filepath.Join(t.TempDir(), "new.bin"), Started: func(_ *Layout, src Source) {
				fa.Serve(ss.root, src)
			}})
			fetched <- err
		})
		if k := <-hellos; k != 1 {
			t.Fatalf("first session %d", k)
		}
		st, err := b.NewStream(ctx, a.ID(), wire.ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Reset()
		w, r := wire.NewWriter(st), wire.NewReader(st, 0)
		w.Write(&wire.Hello{Version: wire.Version, Root: ss.root})
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if m, err := r.Read(); err != nil || (m.Type() != wire.TypeHaveNone && m.Type() != wire.TypeHaveBitfield) {
			t.Fatalf("a answered b's HELLO with %v, %v; want a HAVE", m, err)
		}
		synctest.Wait() // a has taken in that b fetches the root
		close(release)
		window := time.After(spreadHold)
	count:
		for {
			select {
			case k := <-hellos:
				again++
				t.Logf("session %d to b", k)
			case <-window:
				break count
			}
		}
		if err := <-fetched; err != nil {
			t.Fatal(err)
		}
		st.Reset()
	})
	return again
}

// TestFailedPeerNotRedialled: the immediate re-dial of a peer found again
// while its session was being opened is for a refusal only (a peer that
// did not serve the root, and now fetches it; see
// TestRefusedPeerAskedAgainWhenItFetches). A session that failed for
// another reason is left to the next rediscovery: dialled again at once, a
// peer that resets, bans or breaks the protocol would be dialled in a loop
// whenever it is found.
func TestFailedPeerNotRedialled(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(st network.Stream, w *wire.Writer)
		want int
	}{
		{"reset", func(st network.Stream, _ *wire.Writer) { st.Reset() }, 0},
		{"banned", func(st network.Stream, w *wire.Writer) {
			endWith(st, w, wire.NewError(wire.CodeBanned, "banned"), time.Now())
		}, 0},
		{"too many requests", func(st network.Stream, w *wire.Writer) {
			endWith(st, w, wire.NewError(wire.CodeTooManyRequests, "no upload slot free"), time.Now())
		}, 0},
		{"protocol error", func(st network.Stream, w *wire.Writer) {
			w.Write(&wire.Block{Index: 0, Data: []byte("not a HAVE")})
			w.Flush()
			st.Close()
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := redialStage(t, func(k int, st network.Stream, w *wire.Writer) bool {
				if k > 1 {
					return false
				}
				tc.fail(st, w)
				return true
			})
			if got != tc.want {
				t.Errorf("the fetcher opened %d more sessions to the peer within %v of its failure (%s); want %d", got, spreadHold, tc.name, tc.want)
			}
		})
	}
}

// TestRefusedPeerRedialledOnce: a peer found once while its session was
// being opened is dialled again at once once only, even if it refuses
// that session too.
func TestRefusedPeerRedialledOnce(t *testing.T) {
	got := redialStage(t, func(_ int, st network.Stream, w *wire.Writer) bool {
		endWith(st, w, wire.NewError(wire.CodeNotFound, errNotProvided.Error()), time.Now())
		return true
	})
	if got != 1 {
		t.Errorf("the fetcher opened %d more sessions within %v to a peer that refuses every one; want 1", got, spreadHold)
	}
}
