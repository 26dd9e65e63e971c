package names

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"
)

func frameRoundTrip(t *testing.T, m *message) *message {
	t.Helper()
	b := appendMessage(nil, m)
	got, err := readMessage(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("read back %d: %v", m.typ, err)
	}
	return got
}

func TestWireRoundTrip(t *testing.T) {
	sk, a := newKey(t)
	_, b := newKey(t)
	rec := mustRecord(t, sk, "x", 1, time.Now().Add(time.Hour))
	for _, m := range []*message{
		{typ: msgFollow, names: []Name{a, b}},
		{typ: msgFollow, names: []Name{}},
		{typ: msgGet, name: a},
		{typ: msgNone, name: b},
		{typ: msgRecord, name: a, record: rec.Raw},
	} {
		if got := frameRoundTrip(t, m); !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %+v gave %+v", m, got)
		}
	}
	// The largest FOLLOW fits a frame.
	many := make([]Name, MaxFollow)
	for i := range many {
		_, many[i] = newKey(t)
	}
	if got := frameRoundTrip(t, &message{typ: msgFollow, names: many}); len(got.names) != MaxFollow {
		t.Fatalf("FOLLOW of %d names read back as %d", MaxFollow, len(got.names))
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestWireRefuses(t *testing.T) {
	_, a := newKey(t)
	frame := func(body []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(body))), body...) }
	name := appendBytes(nil, a.bytes())
	tooMany := binary.AppendUvarint([]byte{msgFollow}, MaxFollow+1)
	for _, tc := range []struct {
		what string
		in   []byte
	}{
		{"empty frame", []byte{0}},
		{"unknown type", frame([]byte{9})},
		{"GET without name", frame([]byte{msgGet})},
		{"GET with bad name", frame(append([]byte{msgGet}, appendBytes(nil, []byte("not a multihash"))...))},
		{"trailing bytes", frame(append(append([]byte{msgGet}, name...), 0))},
		{"FOLLOW of too many", frame(tooMany)},
		{"name too long", frame(append([]byte{msgNone}, appendBytes(nil, make([]byte, maxNameBytes+1))...))},
		{"record too long", frame(append(append([]byte{msgRecord}, name...), binary.AppendUvarint(nil, uint64(MaxRecordSize+1))...))},
		{"record truncated", frame(append(append([]byte{msgRecord}, name...), binary.AppendUvarint(nil, 50)...))},
		{"overlong frame length", []byte{0x82, 0x00, msgFollow, 0}},
		{"overlong count", frame([]byte{msgFollow, 0x80, 0x00})},
		{"overlong name length", frame(append([]byte{msgGet, 0x80 | byte(len(a.bytes())), 0x00}, a.bytes()...))},
		{"bad varint", frame([]byte{msgFollow, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})},
	} {
		if _, err := readMessage(bufio.NewReader(bytes.NewReader(tc.in))); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v, want ErrProtocol", tc.what, err)
		}
	}

	// A frame that claims a gigabyte is refused after its length: nothing
	// more is read, nothing allocated for it.
	huge := binary.AppendUvarint(nil, 1<<30)
	cr := &countingReader{r: io.MultiReader(bytes.NewReader(huge), zeroes{})}
	if _, err := readMessage(bufio.NewReaderSize(cr, 16)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("gigabyte frame: %v", err)
	}
	if cr.n > 16 {
		t.Fatalf("read %d bytes of a refused frame", cr.n)
	}
	if _, err := readMessage(bufio.NewReader(bytes.NewReader(nil))); err != io.EOF {
		t.Fatalf("clean end: %v, want io.EOF", err)
	}
	if _, err := readMessage(bufio.NewReader(bytes.NewReader([]byte{5, msgGet}))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut frame: %v, want io.ErrUnexpectedEOF", err)
	}
}

type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
