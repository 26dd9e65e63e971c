package sched

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchSwarm builds a Scheduler of 2^20 chunks (a 1 TiB file of 1 MiB
// chunks) with seeders seeders and partial peers that each have a random
// fraction of the chunks, all joined and with their first requests sent.
func benchSwarm(b *testing.B, seeders, partial int, fraction float64) (*Scheduler, []Action) {
	b.Helper()
	const chunks = 1 << 20
	s, err := New(Config{Chunks: chunks, ChunkSize: 1 << 20}, nil, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	now := epoch
	for k := range seeders + partial {
		id := PeerID(fmt.Sprintf("p%04d", k))
		s.step(Event{Kind: PeerJoined, Peer: id, Time: now})
		if k < seeders {
			if err := s.step(Event{Kind: HaveAll, Peer: id, Time: now}); err != nil {
				b.Fatal(err)
			}
			continue
		}
		bf := newBitfield(chunks)
		for i := range int32(chunks) {
			if r.Float64() < fraction {
				bf.set(i)
			}
		}
		if err := s.step(Event{Kind: HaveBitfield, Peer: id, Bits: bf.wire(chunks), Time: now}); err != nil {
			b.Fatal(err)
		}
	}
	return s, s.pending()
}

// BenchmarkPick measures the steady state of a 1 TiB download from 1000
// peers: each op is one block verified and the request that replaces it
// (the pick). picks/s is the figure to compare with a network's block rate:
// at 1 MiB chunks, 10 Gbit/s is ~1200 blocks/s.
func BenchmarkPick(b *testing.B) {
	for _, bc := range []struct {
		name             string
		seeders, partial int
		fraction         float64
	}{
		{"1000seeders", 1000, 0, 0},
		{"800seeders+200partial50%", 800, 200, 0.5},
		{"200partial5%", 0, 200, 0.05},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, acts := benchSwarm(b, bc.seeders, bc.partial, bc.fraction)
			var queue []Action
			for _, a := range acts {
				if a.Kind == Request {
					queue = append(queue, a)
				}
			}
			now := epoch
			picks := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if len(queue) == 0 {
					b.Fatal("nothing outstanding")
				}
				a := queue[0]
				queue = queue[1:]
				now = now.Add(time.Millisecond)
				if err := s.step(Event{Kind: BlockVerified, Peer: a.Peer, Index: a.Index, Time: now}); err != nil {
					b.Fatal(err)
				}
				for _, x := range s.pending() {
					if x.Kind == Request {
						picks++
						queue = append(queue, x)
					}
				}
			}
			b.ReportMetric(float64(picks)/b.Elapsed().Seconds(), "picks/s")
		})
	}
}

// BenchmarkNew measures building a Scheduler for 2^20 chunks.
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		if _, err := New(Config{Chunks: 1 << 20, ChunkSize: 1 << 20}, nil, rand.New(rand.NewPCG(1, 2))); err != nil {
			b.Fatal(err)
		}
	}
}
