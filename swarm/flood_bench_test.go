package swarm

import (
	"context"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/swarm/wire"
)

// BenchmarkCancelFlood measures what a CANCEL costs a serving node whose
// queue is full: a fetcher has 992 requests of chunk 0 waiting (the server
// writes the first block and blocks there, since this side reads nothing),
// then asks for chunk 1 sixteen times and cancels those sixteen, again and
// again, within every budget. A linear CANCEL scans past the 992 requests of
// chunk 0 for each. One op is one WANT and one CANCEL (about 40 bytes).
func BenchmarkCancelFlood(b *testing.B) {
	blocks, root, l, data := hostileRoot(&testing.T{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		b.Fatal(err)
	}
	defer mn.Close()
	hosts := mn.Hosts()
	server := New(hosts[0], blocks, Config{Logger: quiet()})
	defer server.Close()
	server.Serve(root, strictSource{&memSource{l: l, data: data}})
	st, err := hosts[1].NewStream(ctx, hosts[0].ID(), wire.ProtocolID)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Reset()
	w := wire.NewWriter(st)
	w.Write(&wire.Hello{Version: wire.Version, Root: root})
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
