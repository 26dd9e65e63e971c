package sched

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// epoch is the time of a transcript's start.
var epoch = transcriptEpoch()

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/ with the actual output")

// TestTranscripts replays every testdata/*.txt through Replay (see
// transcript.go for the commands): the lines starting "->" after a command
// are the actions (or error) it must produce. Run with -update to rewrite
// them. The scheduler's invariants are checked after every command.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Replay(string(in), func(s *Scheduler) error { return s.check(true) })
			if err != nil {
				t.Fatal(err)
			}
			if got == string(in) {
				return
			}
			if *update {
				if err := os.WriteFile(f, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			t.Errorf("%s differs (run with -update to accept):\n%s", f, firstDiff(string(in), got))
		})
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for k := 0; k < max(len(w), len(g)); k++ {
		var a, b string
		if k < len(w) {
			a = w[k]
		}
		if k < len(g) {
			b = g[k]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n want %q\n  got %q", k+1, a, b)
		}
	}
	return ""
}
