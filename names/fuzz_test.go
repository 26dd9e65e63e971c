package names

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"reflect"
	"testing"
	"time"

	ic "github.com/libp2p/go-libp2p/core/crypto"
)

// fixedKey is a key from a fixed seed, so the fuzz seeds are the same on
// every run.
func fixedKey(t testing.TB, seed byte) (ic.PrivKey, Name) {
	t.Helper()
	sk, err := ic.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := NameFromKey(sk.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return sk, n
}

var (
	fuzzEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fuzzEOL   = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) // boxo checks the wall clock too
)

// FuzzReadMessage feeds the protocol's decoder arbitrary bytes: it must
// not panic, and a frame it accepts must encode back to the same bytes.
func FuzzReadMessage(f *testing.F) {
	sk, a := fixedKey(f, 1)
	_, b := fixedKey(f, 2)
	rec := mustRecord(f, sk, "seed", 3, fuzzEOL)
	for _, m := range []*message{
		{typ: msgFollow, names: []Name{a, b}},
		{typ: msgGet, name: a},
		{typ: msgNone, name: b},
		{typ: msgRecord, name: a, record: rec.Raw},
	} {
		f.Add(appendMessage(nil, m))
	}
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x04})
	f.Fuzz(func(t *testing.T, in []byte) {
		src := bytes.NewReader(in)
		r := bufio.NewReader(src)
		m, err := readMessage(r)
		if err != nil {
			return
		}
		used := len(in) - r.Buffered() - src.Len() // bufio reads past its buffer straight from src
		if out := appendMessage(nil, m); !bytes.Equal(out, in[:used]) {
			t.Fatalf("frame %x decodes to %+v, which encodes to %x", in[:used], m, out)
		}
	})
}

// FuzzValidate feeds the record decoder and validator arbitrary bytes as
// a record of a fixed name: it must not panic, and what it accepts must
// validate again to the same record.
func FuzzValidate(f *testing.F) {
	sk, a := fixedKey(f, 1)
	f.Add(mustRecord(f, sk, "seed", 3, fuzzEOL).Raw)
	other, _ := fixedKey(f, 2)
	f.Add(mustRecord(f, other, "seed", 4, fuzzEOL).Raw)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, err := Validate(a, raw, fuzzEpoch)
		if err != nil {
			return
		}
		again, err := Validate(a, rec.Raw, fuzzEpoch)
		if err != nil || !reflect.DeepEqual(again, rec) {
			t.Fatalf("accepted record validates again as %+v, %v", again, err)
		}
		if len(raw) > MaxRecordSize {
			t.Fatalf("accepted a record of %d bytes", len(raw))
		}
	})
}
