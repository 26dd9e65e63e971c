package swarm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm/sched"
)

// TestFetchRecordReplay: a real fetch on mocknet, in virtual time, from
// three seeders and a peer that has half the chunks, with a streaming range
// asked for first, is recorded with FetchOptions.Record; the transcript
// replays through a new Scheduler with the same seed (sched.Replay) to
// itself: every event gives the actions it gave in the fetch.
func TestFetchRecordReplay(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		mn := cappedMesh(t, 5, 1<<20)
		data := randomData(2<<20+12345, 9)
		hosts := mn.Hosts()
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		root := build(t, blocks, "data.bin", data, 64<<10)
		l, err := BuildLayout(ctx, blocks, root)
		if err != nil {
			t.Fatal(err)
		}
		var swarms []*Swarm
		defer func() {
			for _, s := range swarms {
				s.Close()
			}
		}()
		for _, h := range hosts[:3] {
			s := New(h, blocks, Config{Logger: quiet()})
			s.Serve(root, &memSource{l: l, data: data})
			swarms = append(swarms, s)
		}
		half := bitfield.New(l.NumChunks())
		for i := range l.NumChunks() / 2 {
			half.Set(2 * i)
		}
		p := New(hosts[3], blocks, Config{Logger: quiet()})
		p.Serve(root, &partialSource{memSource: memSource{l: l, data: data}, have: half})
		swarms = append(swarms, p)
		fetcher := New(hosts[4], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 7})
		swarms = append(swarms, fetcher)

		focus := make(chan Range, 1)
		focus <- Range{From: 20, To: 24}
		var rec bytes.Buffer
		dest := filepath.Join(t.TempDir(), "data.bin")
		if _, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: dest, Focus: focus, Record: &rec}); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
			t.Fatal("fetched file differs")
		}

		transcript := rec.String()
		replayed, err := sched.Replay(transcript, nil)
		if err != nil {
			t.Fatalf("replay: %v\n%s", err, transcript)
		}
		if replayed != transcript {
			t.Errorf("the replay differs from the fetch:\n%s", firstLineDiff(transcript, replayed))
		}

		// It is the transcript of that fetch: the layout and seed, every
		// peer, blocks from several, the time, the range, the end.
		lines := strings.Split(strings.TrimSuffix(transcript, "\n"), "\n")
		if !strings.HasPrefix(lines[0], "new chunks=33 size=65536 sizes=65536*32,12345*1 seed=7 seq=") {
			t.Errorf("first line %q, want the layout's 33 chunks and seed 7", lines[0])
		}
		count := func(prefix string) int {
			n := 0
			for _, l := range lines {
				if strings.HasPrefix(l, prefix) {
					n++
				}
			}
			return n
		}
		senders := map[string]bool{}
		for _, l := range lines {
			if f := strings.Fields(l); len(f) == 4 && f[0] == "block" && f[3] == "ok" {
				senders[f[1]] = true
			}
		}
		if count("join ") != 4 || count("have ") < 3 || count("bitfield ") != 1 || count("prio 20 24") != 1 ||
			len(senders) < 3 || count("wait ") == 0 || count("tick") == 0 || lines[len(lines)-1] != "-> done" {
			t.Errorf("%d joins, %d HAVE all, %d bitfields, %d prio 20 24, blocks from %d peers, %d waits, %d ticks, last line %q; want 4, 3, 1, 1, at least 3, some, some, -> done",
				count("join "), count("have "), count("bitfield "), count("prio 20 24"), len(senders), count("wait "), count("tick"), lines[len(lines)-1])
		}
	})
}

// firstLineDiff describes the first line where got differs from want.
func firstLineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for k := range max(len(w), len(g)) {
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
