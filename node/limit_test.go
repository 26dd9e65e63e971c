package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/internal/benchrec"
	"github.com/peer-project/peer/swarm/wire"
)

// TestRateCaps: a configured cap holds (within 10%) on the side it is set
// on. Without the caps each of these 8 MiB transfers takes a small part of
// a second on loopback.
func TestRateCaps(t *testing.T) {
	const size, rate = 8 << 20, 4e6 // two seconds at the cap
	for _, tc := range []struct {
		name         string
		seeder, sink func(*Config)
	}{
		{"upload", func(c *Config) { c.UploadRate = rate }, nil},
		{"peer upload", func(c *Config) { c.PeerUploadRate = rate }, nil},
		{"download", nil, func(c *Config) { c.DownloadRate = rate }},
		{"peer download", nil, func(c *Config) { c.PeerDownloadRate = rate }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ca, cb := testConfig(t), testConfig(t)
			ca.NoDHT, cb.NoDHT = true, true
			if tc.seeder != nil {
				tc.seeder(&ca)
			}
			if tc.sink != nil {
				tc.sink(&cb)
			}
			a, b := startNode(t, ca), startNode(t, cb)
			path, data := randomFile(t, t.TempDir(), "f.bin", size, 30)
			sh, err := a.Share(ctx, path, ShareOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// Time the chunks only, from the first verified one: the
			// manifest and the handshake are not capped.
			var first, last time.Time
			var firstBytes int64
			dest := filepath.Join(t.TempDir(), "f.bin")
			_, err = b.Fetch(ctx, Target{Root: sh.Root, Hint: ptr(a.AddrInfo())}, dest, FetchOptions{Progress: func(p Progress) {
				if first.IsZero() && p.Bytes > 0 {
					first, firstBytes = time.Now(), p.Bytes
				}
				last = time.Now()
			}})
			if err != nil {
				t.Fatal(err)
			}
			sameFile(t, dest, data)
			got := float64(size-firstBytes) / last.Sub(first).Seconds()
			t.Logf("%.2f MB/s with a cap of %.2f MB/s", got/1e6, rate/1e6)
			if got > 1.1*rate {
				t.Errorf("%.2f MB/s: over the cap of %.2f MB/s by more than 10%%", got/1e6, rate/1e6)
			}
		})
	}
}

// flood opens a session for root at target from h and sends WANTs as fast
// as it can, without reading, for at most d. It returns how long the node
// took to cut the session off, or an error if it never did.
func flood(ctx context.Context, h host.Host, target peer.AddrInfo, root cid.Cid, chunks int64, d time.Duration) (time.Duration, error) {
	if err := h.Connect(ctx, target); err != nil {
		return 0, err
	}
	st, err := h.NewStream(ctx, target.ID, wire.ProtocolID)
	if err != nil {
		return 0, err
	}
	defer st.Reset()
	start := time.Now()
	st.SetWriteDeadline(start.Add(d))
	w := wire.NewWriter(st)
	if err := w.Write(&wire.Hello{Version: wire.Version, Root: root}); err != nil {
		return 0, err
	}
	idx := make([]uint64, 256)
	for i := 0; time.Since(start) < d; i++ {
		for k := range idx {
			idx[k] = uint64((i*len(idx) + k) % int(chunks))
		}
		if err := w.Write(&wire.Want{Indices: idx}); err != nil {
			return time.Since(start), nil // cut off
		}
		if err := w.Flush(); err != nil {
			return time.Since(start), nil
		}
	}
	return 0, fmt.Errorf("%w after %s", errStillSending, d)
}

var errStillSending = errors.New("the node is still taking WANTs")

func newFlooder(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestFlooderCutOff: a peer that sends WANTs as fast as it can is cut off
// and banned, and can't come back, while an honest fetch of the same node
// completes.
func TestFlooderCutOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ca := testConfig(t)
	ca.NoDHT = true
	a := startNode(t, ca)
	path, data := randomFile(t, t.TempDir(), "f.bin", 16<<20, 31)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	chunks := int64(len(data) / (256 << 10))

	b := startNode(t, testConfig(t))
	var wg sync.WaitGroup
	var fetchErr error
	dest := filepath.Join(t.TempDir(), "f.bin")
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, fetchErr = b.Fetch(ctx, Target{Root: sh.Root, Hint: ptr(a.AddrInfo())}, dest, FetchOptions{})
	}()

	fl := newFlooder(t)
	took, err := flood(ctx, fl, a.AddrInfo(), sh.Root, chunks, 10*time.Second)
	if err != nil {
		t.Fatalf("flooder: %v", err)
	}
	t.Logf("flooder cut off after %s", took)
	wg.Wait()
	if fetchErr != nil {
		t.Fatalf("honest fetch: %v", fetchErr)
	}
	sameFile(t, dest, data)
	banned := false
	for _, p := range a.Bans() {
		banned = banned || p == fl.ID()
	}
	if !banned {
		t.Fatal("the flooder was cut off but not banned")
	}
	// It cannot come back: no stream, or one reset at once.
	if _, err := flood(ctx, fl, a.AddrInfo(), sh.Root, chunks, 2*time.Second); errors.Is(err, errStillSending) {
		t.Error("a banned flooder got a session again")
	}
	if a.Stats().ServeSessions > 1 {
		t.Errorf("%d sessions open at the seeder; the flooder's should be gone", a.Stats().ServeSessions)
	}
}

// BenchmarkFlooder prints an honest fetcher's throughput from a node alone
// and while a flooder sends WANTs at the same node as fast as it can, and
// tries again whenever it is cut off (for at most 10 s or 1000 tries), in
// PEER_BENCH_ROUNDS rounds (default 3).
func BenchmarkFlooder(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ca := testConfig(b)
	ca.NoDHT = true
	a := startNode(b, ca)
	const size = 64 << 20
	path, _ := randomFile(b, b.TempDir(), "f.bin", size, 32)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		b.Fatal(err)
	}
	fetch := func() float64 {
		c := testConfig(b)
		c.NoDHT = true
		n := startNode(b, c)
		start := time.Now()
		if _, err := n.Fetch(ctx, Target{Root: sh.Root, Hint: ptr(a.AddrInfo())}, filepath.Join(b.TempDir(), "f.bin"), FetchOptions{}); err != nil {
			b.Fatal(err)
		}
		n.Close()
		return size / time.Since(start).Seconds() / 1e6
	}
	var cutoffs atomic.Int64
	withFlooder := func() float64 {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		fl := newFlooder(b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(10 * time.Second)
			for k := 0; k < 1000 && time.Now().Before(deadline); k++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := flood(ctx, fl, a.AddrInfo(), sh.Root, size/(256<<10), time.Until(deadline)); err == nil {
					cutoffs.Add(1)
				}
			}
		}()
		defer wg.Wait()
		defer close(stop)
		return fetch()
	}
	// Rounds of a fetch alone and one beside the flooder, in alternate
	// order, and the median round's ratio: one fetch lasts a fraction of
	// a second, and a single pair read 0.60x in one run on a shared
	// machine where four pairs alone gave 0.87-0.94x.
	type round struct{ alone, flooded float64 } // MB/s
	runs := make([]round, b.N*benchrec.Rounds(b, 3))
	for i := range runs {
		if i%2 == 0 {
			runs[i].alone = fetch()
			runs[i].flooded = withFlooder()
		} else {
			runs[i].flooded = withFlooder()
			runs[i].alone = fetch()
		}
	}
	each := make([]string, len(runs))
	for i, r := range runs {
		each[i] = fmt.Sprintf("%.0f/%.0f = %.2fx", r.flooded, r.alone, r.flooded/r.alone)
	}
	med := benchrec.MedianBy(runs, func(r round) float64 { return r.flooded / r.alone })
	alone, flooded := med.alone, med.flooded
	b.ReportMetric(flooded/alone, "x-alone")
	benchrec.Add(benchrec.Record{Name: "honest fetch beside a flooder, median round", Figure: flooded, Unit: "MB/s",
		Limit: alone, LimitName: "MB/s without it", Target: ">= 0.7x", Met: flooded/alone >= 0.7})
	fmt.Printf("--- %s: honest fetch of 64 MiB, median round: %.0f MB/s alone, %.0f MB/s beside a flooder = %.2fx (target >= 0.7x); rounds (beside/alone): %s; the flooder was cut off or refused %d times\n",
		b.Name(), alone, flooded, flooded/alone, strings.Join(each, ", "), cutoffs.Load())
}
