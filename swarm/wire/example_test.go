package wire_test

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/peer-project/peer/swarm/wire"
)

// A session writes a batch of messages with one Flush, and reads blocks into
// pooled buffers that it keeps after the next Read.
func Example() {
	var stream bytes.Buffer // a libp2p stream in the swarm

	w := wire.NewWriter(&stream)
	w.Write(&wire.Want{Indices: []uint64{4, 5}})
	w.Write(&wire.Block{Index: 4, Data: []byte("four")})
	w.Write(&wire.DontHave{Indices: []uint64{5}})
	w.Flush()

	pool := sync.Pool{New: func() any { return &wire.Block{Data: make([]byte, 0, wire.MaxBlockSize)} }}
	r := wire.NewReader(&stream, 0)
	r.SetBlockAlloc(func(index uint64, size int) *wire.Block { return pool.Get().(*wire.Block) })
	for {
		m, err := r.Read()
		if err != nil {
			fmt.Println(err)
			return
		}
		switch m := m.(type) {
		case *wire.Block:
			fmt.Printf("%v %d %q\n", m.Type(), m.Index, m.Data) // verify, write, then:
			pool.Put(m)
		case *wire.Want:
			fmt.Println(m.Type(), m.Indices)
		case *wire.DontHave:
			fmt.Println(m.Type(), m.Indices)
		}
	}
	// Output:
	// WANT [4 5]
	// BLOCK 4 "four"
	// DONT_HAVE [5]
	// EOF
}
