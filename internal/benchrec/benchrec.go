// Package benchrec lets benchmarks add a line to the report that `make
// bench` prints at the end: a figure, the limit it is measured against in
// the same run, their ratio, and the target.
//
// A benchmark calls Add; when the environment variable PEER_BENCH_REPORT
// names a file, the record is appended to it as one JSON line, else Add
// does nothing. The command in internal/benchreport turns the file into the
// table and a JSON document. Add is safe for concurrent use by processes
// (each line is written with a single append) and goroutines.
//
// StartKubo and KuboNode (kubo.go) run Kubo's ipfs beside a benchmark, on
// loopback only, when PEER_BENCH_KUBO names the binary, so that a transfer
// can be held against Kubo's in the same run.
package benchrec

import (
	"cmp"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"testing"
)

// EnvFile names the file records are appended to.
const EnvFile = "PEER_BENCH_REPORT"

// Record is one line of the report.
type Record struct {
	// Name says what was measured, e.g. "transfer 1 GiB, two processes".
	Name string `json:"name"`
	// Figure and Unit are the measurement.
	Figure float64 `json:"figure"`
	Unit   string  `json:"unit"`
	// Limit is what the figure is held against, measured in the same run
	// (e.g. raw libp2p stream throughput), with what it is; zero when the
	// target is absolute.
	Limit     float64 `json:"limit,omitempty"`
	LimitName string  `json:"limit_name,omitempty"`
	// Ratio is Figure/Limit when there is a limit.
	Ratio float64 `json:"ratio,omitempty"`
	// Target says what passes, e.g. ">= 0.6x" or "<= 128 MiB".
	Target string `json:"target"`
	// Met says whether the figure meets the target.
	Met bool `json:"met"`
}

// Add appends r to the report file, if one is set. It computes Ratio when
// Limit is set. Errors are ignored: a report is a convenience, the
// benchmark's own output stays the record.
func Add(r Record) {
	path := os.Getenv(EnvFile)
	if path == "" {
		return
	}
	if r.Limit != 0 && r.Ratio == 0 {
		r.Ratio = r.Figure / r.Limit
	}
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.Write(append(b, '\n'))
}

// EnvMiB returns the size in bytes that the environment variable key names
// in MiB, or def MiB; a value that is not a positive number fails tb.
func EnvMiB(tb testing.TB, key string, def int64) int64 {
	tb.Helper()
	if v := os.Getenv(key); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			tb.Fatalf("%s=%q: want a positive number of MiB", key, v)
		}
		return n << 20
	}
	return def << 20
}

// Rounds returns the number of rounds that PEER_BENCH_ROUNDS asks for, or
// def; a value that is not a positive count fails tb. A benchmark that
// compares a figure with its anchor runs both once per round, back to
// back, and reports the median round: these machines are shared, and
// their speed drifts within a minute.
func Rounds(tb testing.TB, def int) int {
	tb.Helper()
	if v := os.Getenv("PEER_BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			tb.Fatalf("PEER_BENCH_ROUNDS=%q: want a positive count", v)
		}
		return n
	}
	return def
}

// MedianBy returns the round whose key is the median of the rounds' keys
// (the upper middle one of an even count), and leaves rounds as they are:
// a benchmark's median round, by the ratio its row reports. It panics when
// there are no rounds.
func MedianBy[T any](rounds []T, key func(T) float64) T {
	sorted := slices.Clone(rounds)
	slices.SortFunc(sorted, func(x, y T) int { return cmp.Compare(key(x), key(y)) })
	return sorted[len(sorted)/2]
}

// MedianOf returns the median of f over the rounds, as MedianBy picks it.
func MedianOf[T any](rounds []T, f func(T) float64) float64 {
	return f(MedianBy(rounds, f))
}

// Median returns the median of xs, as MedianBy picks it.
func Median(xs []float64) float64 {
	return MedianOf(xs, func(x float64) float64 { return x })
}
