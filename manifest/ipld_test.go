package manifest

import (
	"bytes"
	"testing"

	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/node/basicnode"
)

// ipldRoundTrip decodes data with go-ipld-prime's DAG-CBOR codec, the
// reference implementation, and re-encodes it; strict DAG-CBOR comes back
// byte for byte.
func ipldRoundTrip(t *testing.T, data []byte) {
	t.Helper()
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(data)); err != nil {
		t.Fatalf("go-ipld-prime cannot decode the block: %v", err)
	}
	var out bytes.Buffer
	if err := dagcbor.Encode(nb.Build(), &out); err != nil {
		t.Fatalf("go-ipld-prime cannot encode the block: %v", err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("go-ipld-prime re-encodes the block differently:\n got %x\nwant %x", out.Bytes(), data)
	}
}
