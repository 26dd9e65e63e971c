package node

// The UnixFS import benchmarks of issue 17: a 4 GiB file shared in place,
// held against SHA-256 on one core over the same file in the same run, and
// a folder of 100,000 small files shared by one process and fetched by
// another. Each side runs in a child process (the "seed" and "fetch" roles
// of transfer_bench_test.go), so that the peak RSS reported is the node's,
// not the test binary's.

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/peer-project/peer/internal/benchrec"
)

// sha256File returns the rate in MB/s of SHA-256 over the file at path,
// read in 1 MiB blocks and hashed on one goroutine.
func sha256File(b *testing.B, path string) float64 {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var total int64
	start := time.Now()
	for {
		m, err := io.ReadFull(f, buf)
		if m > 0 {
			sha256.Sum256(buf[:m])
			total += int64(m)
		}
		if err != nil {
			break
		}
	}
	return float64(total) / time.Since(start).Seconds() / 1e6
}

// BenchmarkImport shares a file of PEER_BENCH_IMPORT_SIZE MiB (default
// 4096) of pseudo-random bytes in place, as `peer share` does, in a child
// process, and prints the throughput as a ratio to SHA-256 on one core
// over the same file (read + hash) measured just before, and the child's
// peak RSS when Share returned. Targets: >= 0.9x and <= 64 MiB. When the
// disk holding os.TempDir() has no room for the file, the largest size
// that fits with 1 GiB to spare is used and named in the rows.
func BenchmarkImport(b *testing.B) {
	const rssLimit = 64 << 20
	size := benchrec.EnvMiB(b, "PEER_BENCH_IMPORT_SIZE", 4096)
	dir, err := os.MkdirTemp("", "peer-import-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if free, ok := freeBytes(dir); ok {
		if free -= 1 << 30; free < size {
			if free < 64<<20 {
				b.Skipf("%s has %d MiB free: no room for the file", dir, free>>20)
			}
			fmt.Printf("--- %s: %s has room for %d MiB only, not %d MiB\n", b.Name(), dir, free>>20, size>>20)
			size = free &^ (1<<20 - 1)
		}
	}
	path := filepath.Join(dir, "import.bin")
	writeRandom(b, path, size)
	shaRate := sha256File(b, path)

	var rate float64
	var rss int64
	for b.Loop() {
		c := startChild(b, "seed", map[string]string{
			"PEER_BENCH_HOME": filepath.Join(dir, "home"),
			"PEER_BENCH_FILE": path,
		})
		c.expect(b, "TICKET ")
		rep := c.finish(b)
		rate = float64(size) / rep.ShareSeconds / 1e6
		rss = rep.SharePeakRSS
		os.RemoveAll(filepath.Join(dir, "home"))
	}
	b.ReportMetric(rate, "MB/s")
	b.ReportMetric(rate/shaRate, "x-sha256")
	b.ReportMetric(float64(rss)/(1<<20), "MiB-peak-RSS")
	label := fmt.Sprintf("import (share in place) of a %d MiB file", size>>20)
	benchrec.Add(benchrec.Record{
		Name: label, Figure: rate, Unit: "MB/s",
		Limit: shaRate, LimitName: "MB/s sha256 on one core (read+hash)", Target: ">= 0.9x", Met: rate/shaRate >= 0.9,
	})
	benchrec.Add(benchrec.Record{
		Name: label + ", peak RSS", Figure: float64(rss >> 20), Unit: "MiB",
		Target: fmt.Sprintf("<= %d MiB", rssLimit>>20), Met: rss <= rssLimit,
	})
	fmt.Printf("--- %s: %d MiB shared in place by a child process: %.0f MB/s = %.2fx one-core sha256 (%.0f MB/s read+hash; target >= 0.9x); peak RSS %.1f MiB (limit %d MiB)\n",
		b.Name(), size>>20, rate, rate/shaRate, shaRate, float64(rss)/(1<<20), rssLimit>>20)
}

// folderFile returns the content of file i of the benchmark folder: 100 to
// 4000 pseudo-random bytes, from a seed.
func folderFile(i int) []byte {
	r := rand.New(rand.NewPCG(17, uint64(i)))
	data := make([]byte, 100+r.IntN(3901))
	for j := range data {
		data[j] = byte(r.Uint32())
	}
	return data
}

// BenchmarkFolder shares a folder of PEER_BENCH_FOLDER_FILES files
// (default 100,000; 100 to 4000 bytes each, seeded) in a seeder process
// and fetches it in a fetcher process over 127.0.0.1, then checks every
// file. It prints the time of each side and its peak RSS: the seeder's
// when Share returned and after serving, the fetcher's at the end.
func BenchmarkFolder(b *testing.B) {
	files := 100000
	if v := os.Getenv("PEER_BENCH_FOLDER_FILES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("PEER_BENCH_FOLDER_FILES=%q: want a positive number of files", v)
		}
		files = n
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "folder")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	name := func(i int) string { return fmt.Sprintf("f%06d.bin", i) }
	var total int64
	for i := range files {
		data := folderFile(i)
		total += int64(len(data))
		if err := os.WriteFile(filepath.Join(src, name(i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var seed, fetch childReport
	for b.Loop() {
		home := filepath.Join(dir, "home")
		dest := filepath.Join(dir, "got")
		s := startChild(b, "seed", map[string]string{"PEER_BENCH_HOME": home + "-seed", "PEER_BENCH_FILE": src})
		ticket := s.expect(b, "TICKET ")
		fetch = runChild(b, "fetch", map[string]string{"PEER_BENCH_HOME": home + "-fetch", "PEER_BENCH_TICKET": ticket, "PEER_BENCH_DEST": dest})
		seed = s.finish(b)
		b.StopTimer()
		es, err := os.ReadDir(dest)
		if err != nil {
			b.Fatal(err)
		}
		if len(es) != files {
			b.Fatalf("%s holds %d entries, want %d", dest, len(es), files)
		}
		for i := range files {
			got, err := os.ReadFile(filepath.Join(dest, name(i)))
			if err != nil {
				b.Fatal(err)
			}
			if want := folderFile(i); string(got) != string(want) {
				b.Fatalf("%s: %d bytes differ from the %d shared", name(i), len(got), len(want))
			}
		}
		for _, p := range []string{dest, home + "-seed", home + "-fetch"} {
			os.RemoveAll(p)
		}
		b.StartTimer()
	}
	b.ReportMetric(seed.ShareSeconds, "s-share")
	b.ReportMetric(fetch.Seconds, "s-fetch")
	label := fmt.Sprintf("folder of %d files (%d MiB)", files, total>>20)
	for _, r := range []benchrec.Record{
		{Name: label + ": share", Figure: seed.ShareSeconds, Unit: "s"},
		{Name: label + ": share, peak RSS", Figure: float64(seed.SharePeakRSS >> 20), Unit: "MiB"},
		{Name: label + ": fetch over loopback", Figure: fetch.Seconds, Unit: "s"},
		{Name: label + ": fetch, fetcher peak RSS", Figure: float64(fetch.PeakRSS >> 20), Unit: "MiB"},
		{Name: label + ": seeder peak RSS, share and serve", Figure: float64(seed.PeakRSS >> 20), Unit: "MiB"},
	} {
		r.Target, r.Met = "reported", true
		benchrec.Add(r)
	}
	fmt.Printf("--- %s: %s, two processes on 127.0.0.1:\n"+
		"    share %.1f s (peak RSS %.1f MiB when Share returned, %.1f MiB after serving)\n"+
		"    fetch %.1f s, %d bytes (fetcher peak RSS %.1f MiB); every file checked\n",
		b.Name(), label, seed.ShareSeconds, float64(seed.SharePeakRSS)/(1<<20), float64(seed.PeakRSS)/(1<<20),
		fetch.Seconds, fetch.Bytes, float64(fetch.PeakRSS)/(1<<20))
}
