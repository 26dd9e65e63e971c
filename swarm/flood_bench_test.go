package swarm

import (
	"testing"

	"github.com/peer-project/peer/swarm/wire"
)

// BenchmarkCancelFlood measures what a CANCEL costs a serving node whose
// queue is full: a fetcher has 992 requests of chunk 0 waiting (the server
// writes the first block and blocks there, since this side reads nothing),
// then asks for chunk 1 sixteen times and cancels those sixteen, again and
// again, within every budget. A linear CANCEL scans past the 992 requests of
// chunk 0 for each. One op is one WANT and one CANCEL (about 40 bytes).
func BenchmarkCancelFlood(b *testing.B) {
	w := newRawSession(b).w
	for range 992 / 16 {
		w.Write(&wire.Want{Indices: make([]uint64, 16)})
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	ones := []uint64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.Write(&wire.Want{Indices: ones})
		w.Write(&wire.Cancel{Indices: ones})
		if i%64 == 0 {
			if err := w.Flush(); err != nil {
				b.Fatalf("after %d rounds: %v", i, err)
			}
		}
	}
	w.Flush()
}
