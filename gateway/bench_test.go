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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peer-project/peer/gateway"
	"github.com/peer-project/peer/internal/benchrec"
	"github.com/peer-project/peer/node"
)

// BenchmarkGateway fetches one shared file over loopback TCP into fresh
// nodes, once as `peer get -o -` does (node.Open and a copy into a pipe)
// and once through the gateway (an HTTP GET on 127.0.0.1), back to back in
// rounds of alternate order, and reports the gateway's rate as a ratio of
// the first in the same round: the median round's is the figure
// (everything runs in this one process, on a shared machine; a lone pair
// of runs of 64 MiB gave ratios from 0.54 to 1.31). Then, on nodes that
// have none of the file, the time to the first byte of a GET with a Range
// of the last 64 KiB, beside that of a plain GET (its first chunk).
// PEER_BENCH_GATEWAY_SIZE sets the file's size in bytes (default 128 MiB),
// PEER_BENCH_ROUNDS the rounds (default 5).
//
// Both paths deliver their bytes to a reader on the other side of the
// kernel: the gateway's body crosses a loopback socket to a client in this
// process, and the anchor writes to a pipe drained by a goroutine, as `peer
// get -o -` writes to its stdout, a pipe to whatever reads it. (An anchor
// that copied to io.Discard skipped that crossing, 0.2 to 0.4 ns a byte
// on a 2-core VM, about a tenth of its CPU, and the gateway could only
// just meet 0.9x of it.)
func BenchmarkGateway(b *testing.B) {
	size := int64(128 << 20)
	if v := os.Getenv("PEER_BENCH_GATEWAY_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1<<20 {
			b.Fatalf("PEER_BENCH_GATEWAY_SIZE=%q: want a byte count of 1 MiB or more", v)
		}
		size = n
	}
	rounds := benchrec.Rounds(b, 5)
	seed := benchNode(b)
	p := filepath.Join(b.TempDir(), "movie.bin")
	if err := os.WriteFile(p, randomBytes(int(size), 11), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sh, err := seed.Share(ctx, p, node.ShareOptions{})
	if err != nil {
		b.Fatal(err)
	}
	// Each path's CPU time too (the whole process's: the seeder's share
	// of it is the same for both): the machine's load blurs rates, much
	// less the work done.
	type round struct{ open, gw, ttfbRange, ttfbPlain, openCPU, gwCPU float64 } // MB/s, s, CPU-s
	var runs []round
	mb := float64(size) / 1e6
	b.ResetTimer()
	for i := range b.N * rounds {
		var r round
		// get -o -: Open, and copy into a pipe, on a node that has nothing.
		viaOpen := func() {
			f := benchNode(b)
			defer f.Close()
			connect(b, ctx, f, seed)
			start, cpu := time.Now(), benchrec.CPUTime()
			rd, err := f.Open(ctx, node.Target{Root: sh.Root}, node.FetchOptions{})
			if err != nil {
				b.Fatal(err)
			}
			n, err := toStdout(rd)
			rd.Close()
			if err != nil || n != size {
				b.Fatalf("Open and copy: %d bytes, %v", n, err)
			}
			r.open, r.openCPU = mb/time.Since(start).Seconds(), (benchrec.CPUTime() - cpu).Seconds()
		}
		// The gateway, on another node that has nothing.
		viaGateway := func() {
			g := benchNode(b)
			defer g.Close()
			connect(b, ctx, g, seed)
			u := benchGateway(b, g) + "/ipfs/" + sh.Root.String()
			start, cpu := time.Now(), benchrec.CPUTime()
			if n := httpCopy(b, u, ""); n != size {
				b.Fatalf("gateway GET: %d bytes", n)
			}
			r.gw, r.gwCPU = mb/time.Since(start).Seconds(), (benchrec.CPUTime() - cpu).Seconds()
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
		// A Range near the end, and a plain GET, each on a node that has
		// nothing.
		ttfb := func(rng string) float64 {
			e := benchNode(b)
			defer e.Close()
			connect(b, ctx, e, seed)
			u := benchGateway(b, e) + "/ipfs/" + sh.Root.String()
			return firstByte(b, u, rng).Seconds()
		}
		r.ttfbRange = ttfb(fmt.Sprintf("bytes=%d-", size-64<<10))
		r.ttfbPlain = ttfb("")
		runs = append(runs, r)
	}
	b.StopTimer()
	median := func(f func(round) float64) float64 { return benchrec.MedianOf(runs, f) }
	med := benchrec.MedianBy(runs, func(r round) float64 { return r.gw / r.open })
	var each []string
	for _, r := range runs {
		each = append(each, fmt.Sprintf("%.0f/%.0f = %.2f", r.gw, r.open, r.gw/r.open))
	}
	openCPU, gwCPU := median(func(r round) float64 { return r.openCPU }), median(func(r round) float64 { return r.gwCPU })
	ttfbRange, ttfbPlain := median(func(r round) float64 { return r.ttfbRange }), median(func(r round) float64 { return r.ttfbPlain })
	b.ReportMetric(med.gw/med.open, "gateway/get")
	b.ReportMetric(ttfbRange*1000, "ms-ttfb-range-end")
	b.ReportMetric(ttfbPlain*1000, "ms-ttfb-plain")
	benchrec.Add(benchrec.Record{Name: fmt.Sprintf("gateway GET of %d MiB against get -o - (node.Open), fresh fetchers on loopback, median round", size>>20),
		Figure: med.gw, Unit: "MB/s", Limit: med.open, LimitName: "MB/s get -o -", Target: ">= 0.9x", Met: med.gw >= 0.9*med.open})
	benchrec.Add(benchrec.Record{Name: "gateway: first byte of a Range near the end of a file not yet fetched", Figure: ttfbRange * 1000, Unit: "ms",
		Limit: ttfbPlain * 1000, LimitName: "ms to the first byte of a plain GET (first chunk)", Target: "<= 500 ms", Met: ttfbRange <= 0.5})
	fmt.Printf("--- %s: %d MiB over loopback TCP, %d round(s), all in one process:\n"+
		"    gateway GET %.0f MB/s = %.2fx get -o - (node.Open, copied into a pipe) %.0f MB/s (target >= 0.9x), the median round of (gateway/get -o -): %s\n"+
		"    CPU time of the process (seeder included) per path, median: gateway %.2f s (%.2f ns/B), get -o - %.2f s (%.2f ns/B) (%.2fx)\n"+
		"    first byte on a node that has none of the file, median: a Range of the last 64 KiB %.1f ms; a plain GET (the first chunk) %.1f ms\n",
		b.Name(), size>>20, len(runs), med.gw, med.gw/med.open, med.open, strings.Join(each, ", "),
		gwCPU, gwCPU*1e9/float64(size), openCPU, openCPU*1e9/float64(size), gwCPU/openCPU, ttfbRange*1000, ttfbPlain*1000)
}

// toStdout copies r into a pipe that a goroutine drains, as `peer get -o -`
// does into its stdout, and returns how many bytes the reader got.
func toStdout(r io.Reader) (int64, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	got := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, pr)
		pr.Close()
		got <- n
	}()
	_, err = io.Copy(pw, r)
	pw.Close() // the reader sees EOF, or EPIPE if it failed
	n := <-got
	return n, err
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

// httpCopy reads the body of a GET of u as `peer get -o -` reads the
// daemon's (cmd/peer's wholeWrites): 1 MiB at a time. io.Copy into
// io.Discard would read it 8 KiB at a time, a read syscall each, in this
// process, on the cores the fetch it is held against needs.
func httpCopy(b *testing.B, u, rng string) int64 {
	b.Helper()
	resp := do(b, u, rng)
	defer resp.Body.Close()
	n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, resp.Body, make([]byte, 1<<20))
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// firstByte returns how long a GET of u with Range rng takes to its first
// body byte, and then hangs up: the rest would be fetched for nothing.
func firstByte(b *testing.B, u, rng string) time.Duration {
	b.Helper()
	start := time.Now()
	resp := do(b, u, rng)
	defer resp.Body.Close()
	var one [1]byte
	if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
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
