package integrity

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// specCID builds the text form of a CIDv1 from the spec alone, without
// go-cid: multibase 'b' (lower-case base32, no padding) over the bytes
// version, codec, multihash code, digest length, digest.
func specCID(codec byte, data []byte) string {
	sum := sha256.Sum256(data)
	b := append([]byte{0x01, codec, 0x12, 0x20}, sum[:]...)
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	return "b" + strings.ToLower(enc.EncodeToString(b))
}

func TestChunkVectors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		// `ipfs add --raw-leaves --cid-version=1` of an empty file.
		{"empty", nil, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
		{"hello", []byte("hello world\n"), specCID(0x55, []byte("hello world\n"))},
		{"one MiB of 0xAB", bytes.Repeat([]byte{0xab}, 1<<20), specCID(0x55, bytes.Repeat([]byte{0xab}, 1<<20))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Chunk(tt.data)
			if got := c.String(); got != tt.want {
				t.Fatalf("Chunk = %s, want %s", got, tt.want)
			}
			if !strings.HasPrefix(c.String(), "bafkrei") {
				t.Fatalf("raw sha2-256 CIDv1 %s does not start bafkrei", c)
			}
			b := c.Bytes()
			if !bytes.Equal(b[:4], []byte{0x01, 0x55, 0x12, 0x20}) || len(b) != 36 {
				t.Fatalf("binary CID % x, want 01 55 12 20 and a 32-byte digest", b)
			}
			if err := Verify(c, tt.data); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestBlockCID(t *testing.T) {
	// The empty UnixFS folder, whose CIDv1 every IPFS implementation
	// knows: dag-pb with Data = {Type: Directory}.
	data := []byte{0x0a, 0x02, 0x08, 0x01}
	c := Block(data)
	if got, want := c.String(), specCID(0x70, data); got != want {
		t.Fatalf("Block = %s, want %s", got, want)
	}
	if got, want := c.String(), "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"; got != want {
		t.Fatalf("Block(empty folder) = %s, want %s", got, want)
	}
	if err := CheckCodec(c, DagPB); err != nil {
		t.Fatal(err)
	}
	if err := CheckCodec(c, Raw); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("CheckCodec(raw) = %v, want ErrUnsupported", err)
	}
}

func TestVerifyMismatch(t *testing.T) {
	c := Chunk([]byte("right"))
	err := VerifyFrom(c, []byte("wrong"), "12D3KooWliar")
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("VerifyFrom = %v, want *MismatchError", err)
	}
	if !me.CID.Equals(c) || !me.Got.Equals(Chunk([]byte("wrong"))) || me.Peer != "12D3KooWliar" {
		t.Fatalf("mismatch = %+v", me)
	}
	if !strings.Contains(err.Error(), "12D3KooWliar") {
		t.Fatalf("error %q does not name the peer", err)
	}
}

func TestUnsupported(t *testing.T) {
	data := []byte("data")
	v0, _ := cid.Decode("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n")
	blake, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.BLAKE2B_MIN + 31, MhLength: -1}.Sum(data)
	dagcbor, _ := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)
	short, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: 20}.Sum(data)
	for name, c := range map[string]cid.Cid{
		"undefined": cid.Undef, "v0": v0, "blake2b": blake, "dag-cbor": dagcbor, "truncated": short,
	} {
		t.Run(name, func(t *testing.T) {
			if err := Verify(c, data); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Verify(%s) = %v, want ErrUnsupported", c, err)
			}
			if err := Check(c); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Check(%s) = %v, want ErrUnsupported", c, err)
			}
			w := NewWriter(Raw)
			w.Write(data)
			if err := w.Verify(c); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Writer.Verify(%s) = %v, want ErrUnsupported", c, err)
			}
		})
	}
}

func TestWriter(t *testing.T) {
	data := bytes.Repeat([]byte("stream "), 100000)
	w := NewWriter(Raw)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 4093)
		w.Write(rest[:n])
		rest = rest[n:]
	}
	if w.Len() != int64(len(data)) {
		t.Fatalf("Len = %d, want %d", w.Len(), len(data))
	}
	want := Chunk(data)
	if !w.CID().Equals(want) {
		t.Fatalf("CID = %s, want %s", w.CID(), want)
	}
	if err := w.Verify(want); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	var me *MismatchError
	if err := w.Verify(want); !errors.As(err, &me) {
		t.Fatalf("Verify after extra byte = %v, want *MismatchError", err)
	}
	w.Reset()
	if !w.CID().Equals(Chunk(nil)) || w.Len() != 0 {
		t.Fatal("Reset did not forget")
	}
	if err := w.Verify(Block(nil)); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("raw writer verifying a dag-pb CID = %v, want ErrUnsupported", err)
	}
}

func TestFromDigestRoundTrip(t *testing.T) {
	c := Chunk([]byte("x"))
	d, err := Digest(c)
	if err != nil {
		t.Fatal(err)
	}
	if !FromDigest(Raw, d).Equals(c) {
		t.Fatal("FromDigest(Digest(c)) != c")
	}
	// The CID must equal what go-cid's own builder makes.
	ref, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum([]byte("x"))
	if !ref.Equals(c) {
		t.Fatalf("Chunk = %s, go-cid = %s", c, ref)
	}
}

func BenchmarkChunkCID(b *testing.B) {
	data := bytes.Repeat([]byte{1}, 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Chunk(data)
	}
}
