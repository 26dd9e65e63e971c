package names

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	ipns_pb "github.com/ipfs/boxo/ipns/pb"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/peer-project/peer/integrity"
	"google.golang.org/protobuf/proto"
)

func newKey(t testing.TB) (ic.PrivKey, Name) {
	t.Helper()
	sk, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, err := NameFromKey(sk.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return sk, n
}

func rootOfBytes(s string) cid.Cid { return integrity.Chunk([]byte(s)) }

func mustRecord(t testing.TB, sk ic.PrivKey, root string, seq uint64, eol time.Time) *Record {
	t.Helper()
	rec, err := NewRecord(sk, rootOfBytes(root), seq, eol, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// rewrite decodes a record's protobuf, lets f change it and encodes it.
func rewrite(t testing.TB, raw []byte, f func(*ipns_pb.IpnsRecord)) []byte {
	t.Helper()
	var pb ipns_pb.IpnsRecord
	if err := proto.Unmarshal(raw, &pb); err != nil {
		t.Fatal(err)
	}
	f(&pb)
	out, err := proto.Marshal(&pb)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNameString(t *testing.T) {
	sk, n := newKey(t)
	s := n.String()
	if !strings.HasPrefix(s, "/ipns/k51") {
		t.Fatalf("name prints as %q, want /ipns/k51…", s)
	}
	id, _ := peer.IDFromPrivateKey(sk)
	for _, in := range []string{s, strings.TrimPrefix(s, "/ipns/"), id.String(), "/ipns/" + id.String()} {
		got, err := ParseName(in)
		if err != nil {
			t.Fatalf("ParseName(%q): %v", in, err)
		}
		if got != n {
			t.Fatalf("ParseName(%q) = %s, want %s", in, got, n)
		}
	}
	if NameFromPeer(id) != n {
		t.Fatal("NameFromPeer differs from NameFromKey")
	}
	for _, bad := range []string{"", "/ipns/", s + "/sub", "k51nope", "/ipfs/" + rootOfBytes("x").String(), "/ipns/" + rootOfBytes("x").String(), s + " "} {
		if _, err := ParseName(bad); !errors.Is(err, ErrName) {
			t.Errorf("ParseName(%q) = %v, want ErrName", bad, err)
		}
	}
}

func TestValidate(t *testing.T) {
	now := time.Now()
	eol := now.Add(time.Hour)
	skA, a := newKey(t)
	_, b := newKey(t)
	good := mustRecord(t, skA, "v1", 7, eol)

	rec, err := Validate(a, good.Raw, now)
	if err != nil {
		t.Fatalf("valid record refused: %v", err)
	}
	if rec.Seq != 7 || rec.Root != rootOfBytes("v1") || rec.Name != a || !rec.EOL.Equal(good.EOL) || rec.TTL != time.Minute {
		t.Fatalf("decoded %+v, want %+v", rec, good)
	}

	// A record as Kubo makes it: no embedded ed25519 key.
	plain, err := ipns.NewRecord(skA, path.FromCid(rootOfBytes("v1")), 8, eol, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	plainRaw, _ := ipns.MarshalRecord(plain)
	if _, err := Validate(a, plainRaw, now); err != nil {
		t.Fatalf("boxo's default record refused: %v", err)
	}
	toPath, _ := path.NewPath("/ipns/" + strings.TrimPrefix(b.String(), "/ipns/"))
	ipnsValue, err := ipns.NewRecord(skA, toPath, 9, eol, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ipnsValueRaw, _ := ipns.MarshalRecord(ipnsValue)

	for _, tc := range []struct {
		what string
		name Name
		raw  []byte
		now  time.Time
		want error
	}{
		{"signature flipped", a, rewrite(t, good.Raw, func(pb *ipns_pb.IpnsRecord) { pb.SignatureV2[3] ^= 1 }), now, ErrSignature},
		{"V1 value changed", a, rewrite(t, good.Raw, func(pb *ipns_pb.IpnsRecord) { pb.Value = []byte("/ipfs/" + rootOfBytes("evil").String()) }), now, ErrSignature},
		{"V1 sequence raised", a, rewrite(t, good.Raw, func(pb *ipns_pb.IpnsRecord) { pb.Sequence = proto.Uint64(99) }), now, ErrSignature},
		{"signed data changed", a, rewrite(t, good.Raw, func(pb *ipns_pb.IpnsRecord) { pb.Data[len(pb.Data)-1] ^= 1 }), now, ErrSignature},
		{"no V2 signature", a, rewrite(t, good.Raw, func(pb *ipns_pb.IpnsRecord) { pb.SignatureV2 = nil }), now, ErrSignature},
		{"other key, embedded", b, good.Raw, now, ErrWrongKey},
		{"other key, not embedded", b, plainRaw, now, ErrSignature},
		{"expired", a, good.Raw, eol.Add(time.Second), ErrExpired},
		{"too large", a, make([]byte, MaxRecordSize+1), now, ErrTooLarge},
		{"garbage", a, []byte("not a record"), now, ErrMalformed},
		{"empty", a, nil, now, ErrMalformed},
		{"value is a name", a, ipnsValueRaw, now, ErrValue},
	} {
		_, err := Validate(tc.name, tc.raw, tc.now)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.what, err, tc.want)
		}
	}
}

func TestNewRecordLimits(t *testing.T) {
	sk, _ := newKey(t)
	if _, err := NewRecord(sk, cid.Undef, 1, time.Now().Add(time.Hour), 0); !errors.Is(err, ErrValue) {
		t.Errorf("undefined root: %v, want ErrValue", err)
	}
	if _, err := NewRecord(sk, rootOfBytes("x"), 1, time.Now().Add(time.Hour), -time.Second); err == nil {
		t.Error("negative TTL accepted")
	}
}

type ipnsRecordPB = ipns_pb.IpnsRecord
