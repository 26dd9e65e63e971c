package chunker_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/peer-project/peer/chunker"
)

// Split a 40 000-byte stream into 16 KiB chunks: two full ones and a short
// last one, each named by its CID. The first two hold the same bytes, so they
// have the same CID: a store keeps them once.
func ExampleSplit() {
	data := bytes.Repeat([]byte("peer"), 10_000)
	err := chunker.Split(context.Background(), bytes.NewReader(data), chunker.FixedParams(chunker.MinSize),
		func(c chunker.Chunk) error {
			fmt.Println(c.Index, c.Offset, c.Size, c.CID)
			return nil
		})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// 0 0 16384 bafkreigmbgel66yql5mejt5vfdyf7exrzsfjbxsdbnplu7vwvnigdwvb6m
	// 1 16384 16384 bafkreigmbgel66yql5mejt5vfdyf7exrzsfjbxsdbnplu7vwvnigdwvb6m
	// 2 32768 7232 bafkreicnzgh34bdvbxsgrwehprzbukuz4sls3oixaz45gcbwi3ai6lkfee
}
