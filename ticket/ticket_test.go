package ticket

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/integrity"
)

func testTicket(t testing.TB) Ticket {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(strings.NewReader(strings.Repeat("seed", 16)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return Ticket{
		Root: integrity.Block([]byte("root")),
		Provider: peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{
			ma.StringCast("/ip4/127.0.0.1/tcp/4001"),
			ma.StringCast("/ip4/127.0.0.1/udp/4001/quic-v1"),
		}},
	}
}

func TestRoundTrip(t *testing.T) {
	want := testTicket(t)
	s := want.String()
	if !strings.HasPrefix(s, Prefix) || strings.ToLower(s) != s || !Looks(s) {
		t.Fatalf("ticket %q is not lower-case with the prefix", s)
	}
	got, err := Parse("  " + s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Root.Equals(want.Root) || got.Provider.ID != want.Provider.ID || len(got.Provider.Addrs) != 2 ||
		!got.Provider.Addrs[0].Equal(want.Provider.Addrs[0]) || !got.Provider.Addrs[1].Equal(want.Provider.Addrs[1]) {
		t.Fatalf("Parse(String()) = %+v, want %+v", got, want)
	}
	if got.String() != s {
		t.Fatal("re-encoding differs")
	}
}

// TestNameRoundTrip: a ticket with a name is version 2 and keeps the
// name; one without stays version 1, byte for byte as before.
func TestNameRoundTrip(t *testing.T) {
	plain := testTicket(t)
	named := plain
	_, pub, _ := crypto.GenerateEd25519Key(strings.NewReader(strings.Repeat("name", 16)))
	named.Name, _ = peer.IDFromPublicKey(pub)
	s := named.String()
	got, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != named.Name || !got.Root.Equals(named.Root) || got.Provider.ID != named.Provider.ID || got.String() != s {
		t.Fatalf("Parse(String()) = %+v, want %+v", got, named)
	}
	raw, _ := enc.DecodeString(s[len(Prefix):])
	if raw[0] != 2 {
		t.Fatalf("a ticket with a name is version %d, want 2", raw[0])
	}
	raw, _ = enc.DecodeString(plain.String()[len(Prefix):])
	if raw[0] != 1 {
		t.Fatalf("a ticket without a name is version %d, want 1", raw[0])
	}
	if _, err := Parse(s[:len(s)-6]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a cut name: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	good := testTicket(t).String()
	raw := testTicket(t)
	raw.Root = cid.NewCidV1(cid.DagCBOR, integrity.Chunk([]byte("a DAG-CBOR block, not a UnixFS root")).Hash())
	tests := map[string]struct {
		in   string
		says string
	}{
		"empty":       {"", "does not start"},
		"bafy root":   {raw.Root.String(), "does not start"},
		"truncated":   {good[:len(good)-9], "cut short"},
		"not base32":  {Prefix + "!!!!", "base32"},
		"huge":        {Prefix + strings.Repeat("a", MaxLen), "more than"},
		"cbor root":   {raw.String(), "codec"},
		"bad version": {Prefix + enc.EncodeToString([]byte{9}), "version 9"},
		"too many addrs": {Prefix + enc.EncodeToString(append(append(append([]byte{1},
			appendBytes(nil, raw.Root.Bytes())...), appendBytes(nil, []byte(raw.Provider.ID))...), 0xff, 0x01)), "addresses"},
		"length past end": {Prefix + enc.EncodeToString([]byte{1, 0xff, 0xff, 0xff, 0x0f}), "limit"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tt.in)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Parse = %v, want ErrInvalid saying %q", err, tt.says)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(testTicket(f).String())
	f.Add(Prefix)
	f.Add(Prefix + "ae")
	named := testTicket(f)
	named.Name = named.Provider.ID
	f.Add(named.String())
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(tk.String())
		if err != nil {
			t.Fatalf("re-encoded ticket does not parse: %v", err)
		}
		if !again.Root.Equals(tk.Root) || again.Provider.ID != tk.Provider.ID || len(again.Provider.Addrs) != len(tk.Provider.Addrs) || again.Name != tk.Name {
			t.Fatalf("round trip changed the ticket: %+v → %+v", tk, again)
		}
	})
}
