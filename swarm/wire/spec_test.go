package wire

import (
	"bytes"
	"encoding/hex"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// specExamples returns the lines of the spec's "Examples, as bytes on the
// wire" block in doc.go: a message as the spec writes it, and its bytes.
func specExamples(t *testing.T) map[string][]byte {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(src), "// Examples, as bytes on the wire:")
	if !ok {
		t.Fatal("doc.go has no \"Examples, as bytes on the wire\" block")
	}
	line := regexp.MustCompile(`^//\t(\S+(?: \S+)*?)\s{2,}((?:[0-9a-f]{2} ?)+)$`)
	out := map[string][]byte{}
	for l := range strings.SplitSeq(block, "\n") {
		if l == "" || l == "//" {
			continue
		}
		m := line.FindStringSubmatch(l)
		if m == nil {
			break
		}
		b, err := hex.DecodeString(strings.ReplaceAll(m[2], " ", ""))
		if err != nil {
			t.Fatalf("doc.go example %q: %v", l, err)
		}
		out[m[1]] = b
	}
	return out
}

// TestSpecExamples feeds every example of the spec (doc.go, read as text)
// through the real Reader and checks that it decodes to the message the
// spec names and encodes back to the same bytes, so that the spec cannot
// drift from the code. The HAVE_BITFIELD example is also checked against
// the meaning the spec gives it: chunks 0, 2 and 9 of 10.
func TestSpecExamples(t *testing.T) {
	want := map[string]Msg{
		"HAVE_ALL":             &HaveAll{},
		"HAVE{300}":            &Have{Index: 300},
		"WANT{0, 1, 200}":      &Want{Indices: []uint64{0, 1, 200}},
		`BLOCK{7, "hi"}`:       &Block{Index: 7, Data: []byte("hi")},
		`ERROR{5, "bye"}`:      &Error{Code: CodeBanned, Msg: "bye"},
		"HAVE_BITFIELD{a0 40}": &HaveBitfield{Bits: []byte{0xa0, 0x40}},
	}
	got := specExamples(t)
	if len(got) != len(want) {
		t.Errorf("doc.go has %d examples %v, the test knows %d", len(got), keys(got), len(want))
	}
	for name, b := range got {
		w, ok := want[name]
		if !ok {
			t.Errorf("doc.go example %q: unknown to this test", name)
			continue
		}
		m, err := NewReader(bytes.NewReader(b), 0).Read()
		if err != nil {
			t.Errorf("doc.go example %q (% x): %v", name, b, err)
			continue
		}
		if !reflect.DeepEqual(m, w) {
			t.Errorf("doc.go example %q decodes to %#v, want %#v", name, m, w)
		}
		var buf bytes.Buffer
		wr := NewWriter(&buf)
		if err := wr.Write(w); err != nil || wr.Flush() != nil {
			t.Fatalf("encoding %q: %v", name, err)
		}
		if !bytes.Equal(buf.Bytes(), b) {
			t.Errorf("%q encodes to % x, the spec says % x", name, buf.Bytes(), b)
		}
	}
	b, ok := got["HAVE_BITFIELD{a0 40}"]
	if !ok {
		t.Fatal("doc.go has no HAVE_BITFIELD example")
	}
	m, err := NewReader(bytes.NewReader(b), 0).Read()
	if err != nil {
		t.Fatal(err)
	}
	bf := m.(*HaveBitfield)
	if err := bf.Validate(10); err != nil {
		t.Fatalf("the spec's bitfield for 10 chunks: %v", err)
	}
	var have []uint64
	for i := range uint64(16) {
		if bf.Has(i) {
			have = append(have, i)
		}
	}
	if !reflect.DeepEqual(have, []uint64{0, 2, 9}) {
		t.Errorf("the spec's bitfield a0 40 has chunks %v, the spec says [0 2 9]", have)
	}
	// The spec's malformed examples.
	for _, bad := range [][]byte{{0xa0, 0x60}, {0xa0}} {
		if err := (&HaveBitfield{Bits: bad}).Validate(10); err == nil {
			t.Errorf("the spec calls % x malformed for 10 chunks; Validate took it", bad)
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
