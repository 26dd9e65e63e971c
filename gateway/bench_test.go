package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/peer-project/peer/gateway"
	"github.com/peer-project/peer/internal/benchrec"
	"github.com/peer-project/peer/node"
)

// BenchmarkGateway fetches one shared file over loopback TCP into fresh
// nodes, once as `peer get -o -` does (node.Open and a copy) and once
// through the gateway (an HTTP GET on 127.0.0.1), and reports the gateway's
// rate as a ratio of the first; then the time to the first byte of a
// Range near the end of the file on a node that has none of it.
func BenchmarkGateway(b *testing.B) {
	const size = 64 << 20
	seed := benchNode(b)
	data := randomBytes(size, 11)
	p := filepath.Join(b.TempDir(), "movie.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sh, err := seed.Share(ctx, p, node.ShareOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var openSec, gwSec, ttfbSec float64
	b.ResetTimer()
	for i := range b.N {
		// get -o -: Open and copy, on a node that has nothing.
		viaOpen := func() {
			f := benchNode(b)
			connect(b, ctx, f, seed)
			start := time.Now()
			r, err := f.Open(ctx, node.Target{Root: sh.Root}, node.FetchOptions{})
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, r)
			r.Close()
			if err != nil || n != size {
				b.Fatalf("Open and copy: %d bytes, %v", n, err)
			}
			openSec += time.Since(start).Seconds()
		}
		// The gateway, on another node that has nothing.
		viaGateway := func() {
			g := benchNode(b)
			connect(b, ctx, g, seed)
			u := benchGateway(b, g) + "/ipfs/" + sh.Root.String()
			start := time.Now()
			if n := httpCopy(b, u, ""); n != size {
				b.Fatalf("gateway GET: %d bytes", n)
			}
			gwSec += time.Since(start).Seconds()
		}
		// Each goes first in every other round: neither gets a warmer
		// machine.
		if i%2 == 0 {
			viaOpen()
			viaGateway()
		} else {
			viaGateway()
			viaOpen()
		}
		// A Range near the end, on a third node that has nothing.
		e := benchNode(b)
		connect(b, ctx, e, seed)
		u := benchGateway(b, e) + "/ipfs/" + sh.Root.String()
		ttfbSec += firstByte(b, u, fmt.Sprintf("bytes=%d-", size-64<<10)).Seconds()
	}
	b.StopTimer()
	mb := func(sec float64) float64 { return float64(size) * float64(b.N) / sec / 1e6 }
	openRate, gwRate, ttfb := mb(openSec), mb(gwSec), ttfbSec/float64(b.N)
	b.ReportMetric(gwRate/openRate, "gateway/get")
	b.ReportMetric(ttfb*1000, "ms-ttfb-range-end")
	benchrec.Add(benchrec.Record{Name: fmt.Sprintf("gateway GET of %d MiB against get -o - (node.Open), fresh fetchers on loopback", size>>20),
		Figure: gwRate, Unit: "MB/s", Limit: openRate, LimitName: "MB/s get -o -", Target: ">= 0.9x", Met: gwRate >= 0.9*openRate})
	benchrec.Add(benchrec.Record{Name: "gateway: first byte of a Range near the end of a file not yet fetched", Figure: ttfb * 1000, Unit: "ms",
		Target: "<= 500 ms", Met: ttfb <= 0.5})
	fmt.Printf("--- %s: %d MiB over loopback TCP, %d round(s): gateway GET %.0f MB/s, get -o - (node.Open and copy) %.0f MB/s: ratio %.2f (target >= 0.9);\n"+
		"    first byte of a Range of the last 64 KiB on a node that has none of the file: %.1f ms\n",
		b.Name(), size>>20, b.N, gwRate, openRate, gwRate/openRate, ttfb*1000)
}

func benchNode(b *testing.B) *node.Node {
	b.Helper()
	cfg := node.DefaultConfig()
	cfg.Home = b.TempDir()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.NoMDNS = true
	cfg.NoSync = true
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}

func connect(b *testing.B, ctx context.Context, n, to *node.Node) {
	b.Helper()
	if err := n.Connect(ctx, to.AddrInfo()); err != nil {
		b.Fatal(err)
	}
}

func benchGateway(b *testing.B, n *node.Node) string {
	b.Helper()
	g, err := gateway.New(gateway.Config{Node: n, Loopback: true, Fetch: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(g)
	b.Cleanup(srv.Close)
	return srv.URL
}

func httpCopy(b *testing.B, u, rng string) int64 {
	b.Helper()
	resp := do(b, u, rng)
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// firstByte returns how long a GET of u with Range rng takes to its first
// body byte; it reads the rest.
func firstByte(b *testing.B, u, rng string) time.Duration {
	b.Helper()
	start := time.Now()
	resp := do(b, u, rng)
	defer resp.Body.Close()
	var one [1]byte
	if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		b.Fatal(err)
	}
	return d
}

func do(b *testing.B, u, rng string) *http.Response {
	b.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		b.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != 200 && resp.StatusCode != 206 {
		resp.Body.Close()
		b.Fatalf("GET %s: %s", u, resp.Status)
	}
	return resp
}
