package manifest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/peer-project/peer/integrity"
)

// FuzzDecode feeds arbitrary bytes to Decode, under their own CID so that
// the parser is reached. Nothing may panic, every error must wrap
// ErrInvalid, and whatever decodes must encode back to the same bytes: one
// node, one encoding, one CID.
func FuzzDecode(f *testing.F) {
	for _, n := range sampleNodes() {
		b, err := Encode(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b.Data)
	}
	f.Add(cborOf(fileMap(fakeRef(0, 1).CID)))
	f.Add([]byte{0xa0})
	f.Add([]byte{0xbf, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := integrity.Block(data)
		n, err := Decode(c, data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		b, err := Encode(n)
		if err != nil {
			t.Fatalf("decoded node does not encode: %v", err)
		}
		if !bytes.Equal(b.Data, data) || !b.CID.Equals(c) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", b.Data, data)
		}
	})
}
