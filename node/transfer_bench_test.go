package node

// The end-to-end transfer benchmark: a seeder and a fetcher, each its own
// process (this test binary run again in a child role), on 127.0.0.1 over
// the transport a node uses by default (TCP, TLS, yamux). In the same run,
// two more processes measure raw libp2p stream throughput between nodes
// built the same way: the limit the transfer is held against.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/internal/benchrec"
)

// benchRoleEnv names the child role of the test binary; see benchChild.
const benchRoleEnv = "PEER_BENCH_ROLE"

// rawProtocol is the protocol of the raw stream measurement.
const rawProtocol = "/peer/bench-raw/1.0.0"

// childReport is what a child prints on its last line.
type childReport struct {
	Seconds   float64 `json:"seconds"`
	Bytes     int64   `json:"bytes"`
	Duplicate int64   `json:"duplicate"`
	PeakRSS   int64   `json:"peak_rss"`
	FirstByte float64 `json:"first_byte_seconds"`
	// CPU is the child's CPU time, user and system, in seconds.
	CPU float64 `json:"cpu_seconds,omitempty"`
	// ShareSeconds and SharePeakRSS are the seeder's: how long Share took
	// and the peak RSS when it returned (ufs_bench_test.go).
	ShareSeconds float64 `json:"share_seconds,omitempty"`
	SharePeakRSS int64   `json:"share_peak_rss,omitempty"`
	// ShareCPU is the seeder's CPU time when Share returned, so that the
	// rest of CPU is its serving.
	ShareCPU float64 `json:"share_cpu_seconds,omitempty"`
}

// BenchmarkTransfer moves PEER_BENCH_TRANSFER_SIZE bytes (default 1 GiB)
// from a seeder process to a fetcher process and prints the rate beside raw
// libp2p stream throughput between two such processes, measured in the same
// round, for PEER_BENCH_ROUNDS rounds (default 3); and both processes' peak
// RSS, the duplicate bytes and the time to first byte. Each round also
// reads the file through Open into /dev/null in a third process (the
// stdout path of `peer get -o -`), held against the same raw stream, and
// times the transfer's writes alone (diskWrite): on a shared machine the
// disk, not the network, can be what the transfer waits on. When PEER_BENCH_KUBO
// names an ipfs binary, each round also times Kubo's `ipfs get` and `ipfs
// cat` of the same file between two Kubo daemons on loopback
// (kubo_bench_test.go), and the transfer is held against them too.
func BenchmarkTransfer(b *testing.B) {
	size := int64(1 << 30)
	if s := os.Getenv("PEER_BENCH_TRANSFER_SIZE"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v <= 0 {
			b.Fatalf("PEER_BENCH_TRANSFER_SIZE=%q: want a byte count", s)
		}
		size = v
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "payload.bin")
	writeRandom(b, path, size)
	kubo := startKubo(b, dir, path) // nil without PEER_BENCH_KUBO

	// The seeder shares the file once; every iteration fetches it anew.
	seeder := startChild(b, "seed", map[string]string{"PEER_BENCH_FILE": path, "PEER_BENCH_HOME": filepath.Join(dir, "seeder")})
	ticket := seeder.expect(b, "TICKET ")
	raw := startChild(b, "rawserve", map[string]string{"PEER_BENCH_SIZE": strconv.FormatInt(size, 10), "PEER_BENCH_HOME": filepath.Join(dir, "rawserver")})
	rawAddr := raw.expect(b, "ADDR ")

	// Rounds of one transfer and one raw stream measurement, back to back
	// and in alternate order: the machine's speed drifts by a quarter
	// within a minute here, so each round's ratio compares like with
	// like, and the median round is the figure.
	rounds := benchrec.Rounds(b, 3)
	type round struct{ fetch, open, raw, disk, kuboGet, kuboCat, fetchCPU, openCPU, rawCPU float64 } // MB/s, CPU-s
	var (
		runs             []round
		firstByte        float64
		ttfbs, rawFirsts []float64 // seconds, one of each a round
		fetchRSS, dup    int64
	)
	mb := float64(size) / 1e6
	b.ResetTimer()
	for i := 0; i < b.N*rounds; i++ {
		var r round
		fetch := func() {
			dest := filepath.Join(dir, fmt.Sprintf("got-%d.bin", i))
			rep := runChild(b, "fetch", map[string]string{"PEER_BENCH_TICKET": ticket, "PEER_BENCH_DEST": dest, "PEER_BENCH_HOME": filepath.Join(dir, fmt.Sprintf("fetcher-%d", i))})
			if rep.Bytes != size {
				b.Fatalf("fetched %d bytes, want %d", rep.Bytes, size)
			}
			os.Remove(dest)
			r.fetch, r.fetchCPU = mb/rep.Seconds, rep.CPU
			firstByte = max(firstByte, rep.FirstByte)
			fetchRSS = max(fetchRSS, rep.PeakRSS)
			dup += rep.Duplicate
		}
		rawRun := func() {
			rr := runChild(b, "rawfetch", map[string]string{"PEER_BENCH_ADDR": rawAddr, "PEER_BENCH_SIZE": strconv.FormatInt(size, 10), "PEER_BENCH_HOME": filepath.Join(dir, fmt.Sprintf("rawclient-%d", i))})
			if rr.Bytes != size {
				b.Fatalf("raw stream carried %d bytes, want %d", rr.Bytes, size)
			}
			r.raw, r.rawCPU = mb/rr.Seconds, rr.CPU
			rawFirsts = append(rawFirsts, rr.FirstByte)
		}
		// The disk alone: the transfer's writes to the same file system,
		// without the network (diskWrite).
		disk := func() {
			rep := runChild(b, "diskwrite", map[string]string{"PEER_BENCH_DEST": filepath.Join(dir, fmt.Sprintf("disk-%d.bin", i)), "PEER_BENCH_SIZE": strconv.FormatInt(size, 10)})
			if rep.Bytes != size {
				b.Fatalf("disk anchor wrote %d bytes, want %d", rep.Bytes, size)
			}
			r.disk = mb / rep.Seconds
		}
		// The stdout path: Open, then io.Copy into /dev/null, as
		// `peer get -o -` does in process.
		open := func() {
			rep := runChild(b, "open", map[string]string{"PEER_BENCH_TICKET": ticket, "PEER_BENCH_HOME": filepath.Join(dir, fmt.Sprintf("opener-%d", i))})
			if rep.Bytes != size {
				b.Fatalf("read %d bytes through Open, want %d", rep.Bytes, size)
			}
			r.open, r.openCPU = mb/rep.Seconds, rep.CPU
		}
		if i%2 == 0 {
			fetch()
			disk()
			rawRun()
			open()
		} else {
			open()
			rawRun()
			disk()
			fetch()
		}
		if kubo != nil {
			r.kuboGet, r.kuboCat = kubo.round(b, size, i)
		}
		runs = append(runs, r)
		tf := runChild(b, "ttfb", map[string]string{"PEER_BENCH_TICKET": ticket, "PEER_BENCH_HOME": filepath.Join(dir, fmt.Sprintf("reader-%d", i))})
		ttfbs = append(ttfbs, tf.FirstByte)
	}
	b.StopTimer()
	seedRep := seeder.finish(b)
	seedRSS := seedRep.PeakRSS
	rawRep := raw.finish(b)

	var each, eachOpen, eachDisk []string
	for _, r := range runs {
		each = append(each, fmt.Sprintf("%.0f/%.0f = %.2fx", r.fetch, r.raw, r.fetch/r.raw))
		eachDisk = append(eachDisk, fmt.Sprintf("%.0f/%.0f = %.2fx", r.fetch, r.disk, r.fetch/r.disk))
		eachOpen = append(eachOpen, fmt.Sprintf("%.0f/%.0f = %.2fx", r.open, r.raw, r.open/r.raw))
	}
	// The stdout path against the file path of the same round: the one
	// comparison that the seeder (the same for both) does not blur.
	// And the CPU time of each process (start, fetch, stop), which the
	// machine's load blurs much less.
	median := func(f func(round) float64) float64 { return benchrec.MedianOf(runs, f) }
	vsFile := median(func(r round) float64 { return r.open / r.fetch })
	fetchCPU, openCPU := median(func(r round) float64 { return r.fetchCPU }), median(func(r round) float64 { return r.openCPU })
	rawCPU := median(func(r round) float64 { return r.rawCPU })
	// CPU per GiB moved, each side against its raw counterpart: on a
	// machine whose cores are all busy, each process's throughput follows
	// its share of CPU, so the transfer's ratio to raw tends to the ratio
	// of their CPU per byte whatever the code's latency. The seeder served
	// each round twice (the transfer and the stdout path) and a chunk to
	// the time-to-first-byte reader; the raw server once a round.
	gib := float64(size) / (1 << 30)
	seedCPU := (seedRep.CPU - seedRep.ShareCPU) / (2 * float64(len(runs)) * gib)
	rawServeCPU := rawRep.CPU / (float64(len(runs)) * gib)
	fetchGiB, rawGiB := fetchCPU/gib, rawCPU/gib
	openMed := benchrec.MedianBy(runs, func(r round) float64 { return r.open / r.raw })
	med := benchrec.MedianBy(runs, func(r round) float64 { return r.fetch / r.raw })
	fetchRate, rawRate := med.fetch, med.raw
	b.ReportMetric(fetchRate, "MB/s")
	b.ReportMetric(rawRate, "raw-MB/s")
	b.ReportMetric(med.disk, "disk-MB/s")
	b.ReportMetric(fetchRate/rawRate, "x-raw")
	b.ReportMetric(float64(fetchRSS)/(1<<20), "fetcher-MiB")
	b.ReportMetric(float64(seedRSS)/(1<<20), "seeder-MiB")
	dupPct := 100 * float64(dup) / (float64(size) * float64(len(runs)))
	// The median, as for the rates: with a mean, one slow round in three
	// decides the row on a shared machine. The raw stream's first byte
	// (its dial included) shows what dialling alone took in the same runs.
	eachTTFB := make([]string, len(ttfbs))
	for i := range ttfbs {
		eachTTFB[i] = fmt.Sprintf("%.1f/%.1f ms", ttfbs[i]*1000, rawFirsts[i]*1000)
	}
	ttfb, rawFirst := benchrec.Median(ttfbs), benchrec.Median(rawFirsts)
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	benchrec.Add(benchrec.Record{Name: fmt.Sprintf("transfer %d MiB, two processes, TCP+TLS+yamux", size>>20), Figure: fetchRate, Unit: "MB/s",
		Limit: rawRate, LimitName: "MB/s raw libp2p stream", Target: ">= 0.6x", Met: fetchRate/rawRate >= 0.6})
	b.ReportMetric(openMed.open/openMed.raw, "open-x-raw")
	b.ReportMetric(vsFile, "open-x-file")
	benchrec.Add(benchrec.Record{Name: fmt.Sprintf("stdout path (Open, io.Copy) %d MiB, two processes, TCP+TLS+yamux", size>>20), Figure: openMed.open, Unit: "MB/s",
		Limit: openMed.raw, LimitName: "MB/s raw libp2p stream", Target: ">= 0.6x", Met: openMed.open/openMed.raw >= 0.6})
	kuboLine := fmt.Sprintf("    no Kubo in this run: set %s to an ipfs binary to time its get and cat of the same file\n", benchrec.EnvKubo)
	if kubo != nil {
		kGet, kCat := median(func(r round) float64 { return r.kuboGet }), median(func(r round) float64 { return r.kuboCat })
		benchrec.Add(benchrec.Record{Name: fmt.Sprintf("transfer %d MiB against Kubo ipfs get, same file and rounds", size>>20), Figure: fetchRate, Unit: "MB/s",
			Limit: kGet, LimitName: "MB/s Kubo ipfs get", Target: ">= 1.0x", Met: fetchRate >= kGet})
		benchrec.Add(benchrec.Record{Name: fmt.Sprintf("transfer %d MiB against Kubo ipfs cat, same file and rounds", size>>20), Figure: fetchRate, Unit: "MB/s",
			Limit: kCat, LimitName: "MB/s Kubo ipfs cat", Target: ">= 1.0x", Met: fetchRate >= kCat})
		kuboLine = fmt.Sprintf("    Kubo on loopback, same file (1 MiB raw leaves), median of the same rounds: ipfs get %.0f MB/s = %.2fx raw, ipfs cat %.0f MB/s = %.2fx raw; transfer = %.2fx Kubo get, %.2fx Kubo cat\n",
			kGet, kGet/rawRate, kCat, kCat/rawRate, fetchRate/kGet, fetchRate/kCat)
	}
	benchrec.Add(benchrec.Record{Name: fmt.Sprintf("fetcher peak RSS, %d MiB", size>>20), Figure: mib(fetchRSS), Unit: "MiB", Target: "<= 64 MiB", Met: mib(fetchRSS) <= 64})
	benchrec.Add(benchrec.Record{Name: fmt.Sprintf("seeder peak RSS, %d MiB", size>>20), Figure: mib(seedRSS), Unit: "MiB", Target: "<= 96 MiB", Met: mib(seedRSS) <= 96})
	benchrec.Add(benchrec.Record{Name: "duplicate bytes, one seeder", Figure: dupPct, Unit: "% of file", Target: "<= 2%", Met: dupPct <= 2})
	benchrec.Add(benchrec.Record{Name: "time to first verified byte (Open, known peer), median round", Figure: ttfb * 1000, Unit: "ms",
		Limit: rawFirst * 1000, LimitName: "ms to a raw stream's first byte, dial included", Target: "<= 50 ms", Met: ttfb <= 0.05})
	fmt.Printf("--- %s: %d MiB between two processes on 127.0.0.1 (TCP+TLS+yamux), %d round(s) of transfer and raw stream:\n"+
		"    transfer %.0f MB/s = %.2fx raw libp2p stream %.0f MB/s (target >= 0.6x), the median round of: %s\n"+
		"      its writes alone (same file system, no network, diskWrite): %.0f MB/s; transfer/disk per round: %s\n"+
		"    stdout path (Open, io.Copy to /dev/null) %.0f MB/s = %.2fx raw %.0f MB/s (target >= 0.6x), the median round of: %s;\n"+
		"      in the same round, the stdout path ran at %.2fx the transfer to a file (median); CPU time, median: stdout path %.2f s, transfer to a file %.2f s\n"+
		"    CPU per GiB moved (medians; whole processes): fetcher %.2f s against the raw client's %.2f s, seeder %.2f s against the raw server's %.2f s;\n"+
		"      raw/transfer CPU %.2f, the ratio a run with every core busy tends to\n"+
		"    fetcher peak RSS %.0f MiB (limit 64 MiB); seeder peak RSS %.0f MiB (limit 96 MiB)\n"+
		"    duplicate bytes %.2f%% of the file (limit 2%%); first progress report with verified bytes after %.0f ms (reports come every 50 ms)\n"+
		"    time to first verified byte through Open from a known peer (dial, manifest, first chunk), median round: %.1f ms (target <= 50 ms),\n"+
		"      against %.1f ms to the first byte of a raw libp2p stream from a fresh process (dial included); per round: %s\n%s",
		b.Name(), size>>20, len(runs), fetchRate, fetchRate/rawRate, rawRate, strings.Join(each, ", "), med.disk, strings.Join(eachDisk, ", "),
		openMed.open, openMed.open/openMed.raw, openMed.raw, strings.Join(eachOpen, ", "), vsFile, openCPU, fetchCPU,
		fetchGiB, rawGiB, seedCPU, rawServeCPU, (rawGiB+rawServeCPU)/(fetchGiB+seedCPU),
		float64(fetchRSS)/(1<<20), float64(seedRSS)/(1<<20), dupPct, firstByte*1000, ttfb*1000,
		rawFirst*1000, strings.Join(eachTTFB, ", "), kuboLine)
}

// writeRandom writes size pseudo-random bytes to path, fast.
func writeRandom(b *testing.B, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	var buf [8]byte
	for n := int64(0); n < size; n += 8 {
		v := r.Uint64()
		for j := range buf {
			buf[j] = byte(v >> (8 * j))
		}
		if _, err := w.Write(buf[:min(8, size-n)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	// On disk before the clock starts: its dirty pages would otherwise be
	// written back during the transfer, and the fetcher's closing fsync
	// would wait on them (ext4 commits every file's allocations together).
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// child is a running child process: its stdin ends it, its stdout speaks
// line by line.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	role  string
}

func startChild(b *testing.B, role string, env map[string]string) *child {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchRoleEnv+"="+role)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = os.Stderr
	stdin, out := startPiped(b, cmd)
	return &child{cmd: cmd, stdin: stdin, out: out, role: role}
}

// expect reads lines until one starts with prefix and returns the rest.
func (c *child) expect(b *testing.B, prefix string) string {
	b.Helper()
	for c.out.Scan() {
		if rest, ok := strings.CutPrefix(c.out.Text(), prefix); ok {
			return rest
		}
	}
	b.Fatalf("%s child ended without printing %q: %v", c.role, prefix, c.out.Err())
	return ""
}

// finish closes the child's stdin and reads its report.
func (c *child) finish(b *testing.B) childReport {
	b.Helper()
	c.stdin.Close()
	var rep childReport
	if err := json.Unmarshal([]byte(c.expect(b, "REPORT ")), &rep); err != nil {
		b.Fatalf("%s child report: %v", c.role, err)
	}
	if err := c.cmd.Wait(); err != nil {
		b.Fatalf("%s child: %v", c.role, err)
	}
	return rep
}

func runChild(b *testing.B, role string, env map[string]string) childReport {
	b.Helper()
	return startChild(b, role, env).finish(b)
}

// benchChild runs one child role and returns the exit code. Children talk
// to the parent on stdout ("TICKET …", "ADDR …", "REPORT {json}") and end
// when their stdin does.
func benchChild(role string) int {
	if err := runRole(role); err != nil {
		fmt.Fprintf(os.Stderr, "bench child %s: %v\n", role, err)
		return 1
	}
	return 0
}

func runRole(role string) error {
	if p := os.Getenv("PEER_BENCH_CPUPROFILE"); p != "" && profiled(role) {
		f, err := os.Create(p + "." + role)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if p := os.Getenv("PEER_BENCH_TRACE"); p != "" && profiled(role) {
		f, err := os.Create(p + "." + role)
		if err != nil {
			return err
		}
		trace.Start(f)
		defer trace.Stop()
	}
	if p := os.Getenv("PEER_BENCH_MEMPROFILE"); p != "" && profiled(role) {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			if f, err := os.Create(p + "." + role); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	// Where goroutines wait, and on which locks: every blocking event and
	// every contended lock, written when the role ends.
	for _, p := range []struct{ env, name string }{{"PEER_BENCH_BLOCKPROFILE", "block"}, {"PEER_BENCH_MUTEXPROFILE", "mutex"}} {
		path := os.Getenv(p.env)
		if path == "" || !profiled(role) {
			continue
		}
		if p.name == "block" {
			runtime.SetBlockProfileRate(1)
		} else {
			runtime.SetMutexProfileFraction(1)
		}
		defer func() {
			if f, err := os.Create(path + "." + role); err == nil {
				pprof.Lookup(p.name).WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if role == "diskwrite" { // no node: the disk alone
		size, _ := strconv.ParseInt(os.Getenv("PEER_BENCH_SIZE"), 10, 64)
		rep, err := diskWrite(os.Getenv("PEER_BENCH_DEST"), size)
		if err != nil {
			return err
		}
		rep.PeakRSS = peakRSS()
		out, _ := json.Marshal(rep)
		fmt.Printf("REPORT %s\n", out)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := DefaultConfig()
	cfg.Home = os.Getenv("PEER_BENCH_HOME")
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.NoMDNS, cfg.NoDHT, cfg.NoSync = true, true, true
	cfg.Chunking = chunker.DefaultParams()
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if d := os.Getenv("PEER_BENCH_FILE_AGE"); d != "" && role == "seed" {
		// The seeder's clock that far ahead: as if the file had been
		// written that long before it was shared. Where no read lease
		// can show that nothing writes the file (another file system,
		// a writer still has it open), the store proves or seals chunks
		// only of files last changed over a minute before they were
		// hashed (store/proof.go).
		age, err := time.ParseDuration(d)
		if err != nil {
			return fmt.Errorf("PEER_BENCH_FILE_AGE=%q: %w", d, err)
		}
		cfg.Now = func() time.Time { return time.Now().Add(age) }
	}
	n, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	size, _ := strconv.ParseInt(os.Getenv("PEER_BENCH_SIZE"), 10, 64)
	report := func(rep childReport) {
		rep.PeakRSS = peakRSS()
		rep.CPU = benchrec.CPUTime().Seconds()
		b, _ := json.Marshal(rep)
		fmt.Printf("REPORT %s\n", b)
	}
	switch role {
	case "seed":
		start := time.Now()
		sh, err := n.Share(ctx, os.Getenv("PEER_BENCH_FILE"), ShareOptions{})
		if err != nil {
			return err
		}
		shared, shareRSS, shareCPU := time.Since(start), peakRSS(), benchrec.CPUTime().Seconds()
		fmt.Printf("TICKET %s\n", sh.Ticket)
		io.Copy(io.Discard, os.Stdin)
		report(childReport{ShareSeconds: shared.Seconds(), SharePeakRSS: shareRSS, ShareCPU: shareCPU})
	case "fetch":
		t, err := ParseTarget(os.Getenv("PEER_BENCH_TICKET"))
		if err != nil {
			return err
		}
		start := time.Now()
		var first time.Duration
		res, err := n.Fetch(ctx, t, os.Getenv("PEER_BENCH_DEST"), FetchOptions{Progress: func(p Progress) {
			if first == 0 && p.Bytes > 0 {
				first = time.Since(start)
			}
			if os.Getenv("PEER_BENCH_TRACE") != "" {
				fmt.Fprintf(os.Stderr, "TRACE %.2fs %d MiB peers %d done %v\n", time.Since(start).Seconds(), p.Bytes>>20, p.Peers, p.Done)
			}
		}})
		if err != nil {
			return err
		}
		report(childReport{Seconds: time.Since(start).Seconds(), Bytes: res.Progress.Bytes, Duplicate: res.Progress.Duplicate, FirstByte: first.Seconds()})
	case "open":
		t, err := ParseTarget(os.Getenv("PEER_BENCH_TICKET"))
		if err != nil {
			return err
		}
		devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer devNull.Close()
		start := time.Now()
		r, err := n.Open(ctx, t, FetchOptions{})
		if err != nil {
			return err
		}
		got, err := io.Copy(devNull, r)
		r.Close()
		if err != nil {
			return err
		}
		report(childReport{Seconds: time.Since(start).Seconds(), Bytes: got})
	case "ttfb":
		t, err := ParseTarget(os.Getenv("PEER_BENCH_TICKET"))
		if err != nil {
			return err
		}
		start := time.Now()
		r, err := n.Open(ctx, t, FetchOptions{})
		if err != nil {
			return err
		}
		if os.Getenv("PEER_BENCH_TRACE") != "" {
			fmt.Fprintf(os.Stderr, "TRACE Open returned after %v\n", time.Since(start))
		}
		if _, err := io.ReadFull(r, make([]byte, 1)); err != nil {
			return err
		}
		first := time.Since(start)
		r.Close()
		report(childReport{FirstByte: first.Seconds(), Bytes: 1})
	case "rawserve":
		buf := make([]byte, 1<<20)
		n.Host().SetStreamHandler(rawProtocol, func(s network.Stream) {
			defer s.Close()
			for left := size; left > 0; {
				k, err := s.Write(buf[:min(int64(len(buf)), left)])
				if err != nil {
					s.Reset()
					return
				}
				left -= int64(k)
			}
		})
		fmt.Printf("ADDR %s\n", n.Addrs()[0])
		io.Copy(io.Discard, os.Stdin)
		report(childReport{})
	case "rawfetch":
		addr, err := ma.NewMultiaddr(os.Getenv("PEER_BENCH_ADDR"))
		if err != nil {
			return err
		}
		ai, err := peer.AddrInfoFromP2pAddr(addr)
		if err != nil {
			return err
		}
		// FirstByte times what the ttfb role's Open does before its
		// first byte, without our protocol: dial, then a stream's first
		// byte. The rate is timed from the stream's opening.
		dial := time.Now()
		if err := n.Connect(ctx, *ai); err != nil {
			return err
		}
		start := time.Now()
		s, err := n.Host().NewStream(ctx, ai.ID, rawProtocol)
		if err != nil {
			return err
		}
		buf := make([]byte, 1<<20)
		if _, err := io.ReadFull(s, buf[:1]); err != nil {
			s.Reset()
			return err
		}
		first := time.Since(dial)
		got, err := io.CopyBuffer(io.Discard, s, buf)
		s.Close()
		if err != nil {
			return err
		}
		report(childReport{Seconds: time.Since(start).Seconds(), Bytes: got + 1, FirstByte: first.Seconds()})
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	return nil
}

// peakRSS returns this process's peak resident set size (VmHWM) in bytes,
// or 0 where /proc is missing.
func peakRSS() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// profiled reports whether a child role writes the profiles and traces
// that PEER_BENCH_CPUPROFILE, PEER_BENCH_MEMPROFILE, PEER_BENCH_BLOCKPROFILE,
// PEER_BENCH_MUTEXPROFILE and PEER_BENCH_TRACE ask for: the transfer's two processes and the raw stream's two.
func profiled(role string) bool {
	switch role {
	case "fetch", "open", "seed", "rawfetch", "rawserve":
		return true
	}
	return false
}
