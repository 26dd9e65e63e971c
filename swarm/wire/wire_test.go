package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/peer-project/peer/integrity"
)

var (
	nodeCID  = integrity.Block([]byte{0xa0})
	nodeCID2 = integrity.Block([]byte("page"))
	cborCID  = cid.NewCidV1(cid.DagCBOR, integrity.Chunk([]byte("chunk")).Hash())
)

// allMessages returns one or more of every message type, edge values
// included.
func allMessages() []struct {
	name string
	msg  Msg
} {
	many := make([]uint64, MaxWant)
	for i := range many {
		many[i] = uint64(i) * 0x0101010101
	}
	many[MaxWant-1] = ^uint64(0)
	return []struct {
		name string
		msg  Msg
	}{
		{"hello", &Hello{Version: Version, Root: nodeCID, Chunks: 1 << 20}},
		{"hello unknown chunks", &Hello{Version: 0, Root: nodeCID2, Chunks: 0}},
		{"hello max", &Hello{Version: ^uint64(0), Root: nodeCID, Chunks: ^uint64(0)}},
		{"have all", &HaveAll{}},
		{"have none", &HaveNone{}},
		{"choke", &Choke{}},
		{"unchoke", &Unchoke{}},
		{"not interested", &NotInterested{}},
		{"in order", &InOrder{}},
		{"bitfield", &HaveBitfield{Bits: []byte{0x01, 0x02}}},
		{"bitfield empty", &HaveBitfield{}},
		{"bitfield 1 MiB", &HaveBitfield{Bits: bytes.Repeat([]byte{0xa5}, 1<<20)}},
		{"have 0", &Have{Index: 0}},
		{"have max", &Have{Index: ^uint64(0)}},
		{"want one", &Want{Indices: []uint64{7}}},
		{"want many", &Want{Indices: many}},
		{"cancel", &Cancel{Indices: []uint64{1, 1, 0}}},
		{"dont have", &DontHave{Indices: []uint64{300, 2}}},
		{"block", &Block{Index: 7, Data: []byte("hi")}},
		{"block empty", &Block{Index: 1<<40 + 3}},
		{"block max", &Block{Index: ^uint64(0), Data: bytes.Repeat([]byte{0x5a}, MaxBlockSize)}},
		{"want node", &WantNode{CID: nodeCID}},
		{"node", &Node{CID: nodeCID, Data: []byte{0xa0}}},
		{"node max", &Node{CID: nodeCID2, Data: bytes.Repeat([]byte{1}, MaxNodeSize)}},
		{"node missing", &NodeMissing{CID: nodeCID2}},
		{"error", &Error{Code: CodeBanned, Msg: "bye"}},
		{"error empty", &Error{Code: CodeProtocol}},
		{"error max", &Error{Code: 0xffff, Msg: strings.Repeat("é", MaxErrorMsg/2)}},
	}
}

// normalize returns a copy of m with empty byte slices made nil and byte
// slices copied, so that messages compare with reflect.DeepEqual and
// outlive the Reader's buffer.
func normalize(m Msg) Msg {
	cp := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return bytes.Clone(b)
	}
	switch m := m.(type) {
	case *HaveBitfield:
		return &HaveBitfield{Bits: cp(m.Bits)}
	case *Block:
		return &Block{Index: m.Index, Data: cp(m.Data)}
	case *Node:
		return &Node{CID: m.CID, Data: cp(m.Data)}
	}
	return m
}

func encodeAll(t testing.TB, msgs ...Msg) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, m := range msgs {
		if err := w.Write(m); err != nil {
			t.Fatalf("Write(%T): %v", m, err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	return buf.Bytes()
}

// readOne decodes the single message in b.
func readOne(b []byte, alloc BlockAllocFunc) (Msg, error) {
	r := NewReader(bytes.NewReader(b), 0)
	r.SetBlockAlloc(alloc)
	m, err := r.Read()
	if err != nil {
		return nil, err
	}
	if _, err := r.Read(); err != io.EOF {
		return nil, errors.New("bytes after the message")
	}
	return m, nil
}

// poolAlloc is a BlockAllocFunc that hands out one reused Block.
func poolAlloc() BlockAllocFunc {
	b := &Block{Data: make([]byte, 0, 64)}
	return func(uint64, int) *Block { return b }
}

func TestRoundTrip(t *testing.T) {
	allocs := map[string]func() BlockAllocFunc{
		"default":    func() BlockAllocFunc { return nil },
		"alloc":      poolAlloc,
		"alloc nil":  func() BlockAllocFunc { return func(uint64, int) *Block { return nil } },
		"alloc zero": func() BlockAllocFunc { return func(uint64, int) *Block { return &Block{} } },
	}
	for _, tt := range allMessages() {
		for an, alloc := range allocs {
			t.Run(tt.name+"/"+an, func(t *testing.T) {
				b := encodeAll(t, tt.msg)
				got, err := readOne(b, alloc())
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if got.Type() != tt.msg.Type() {
					t.Fatalf("type %v, want %v", got.Type(), tt.msg.Type())
				}
				if !reflect.DeepEqual(normalize(got), normalize(tt.msg)) {
					t.Fatalf("Read = %+v, want %+v", got, tt.msg)
				}
				if again := encodeAll(t, got); !bytes.Equal(again, b) {
					t.Fatalf("re-encoding differs")
				}
			})
		}
	}
}

// TestStream reads every message back from one stream, in order.
func TestStream(t *testing.T) {
	var msgs []Msg
	for _, tt := range allMessages() {
		msgs = append(msgs, tt.msg)
	}
	r := NewReader(bytes.NewReader(encodeAll(t, msgs...)), 0)
	for i, want := range msgs {
		got, err := r.Read()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Fatalf("message %d = %+v, want %+v", i, got, want)
		}
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("after the last message: %v, want io.EOF", err)
	}
}

// TestVectors pins the bytes on the wire, as doc.go's spec shows them.
func TestVectors(t *testing.T) {
	cidHex := hex.EncodeToString(nodeCID.Bytes())
	tests := []struct {
		msg  Msg
		want string
	}{
		{&HaveAll{}, "0102"},
		{&HaveNone{}, "0103"},
		{&Choke{}, "010e"},
		{&Unchoke{}, "010f"},
		{&NotInterested{}, "0110"},
		{&InOrder{}, "0111"},
		{&Have{Index: 300}, "0305ac02"},
		{&Want{Indices: []uint64{0, 1, 200}}, "0606030001c801"},
		{&Cancel{Indices: []uint64{5}}, "03070105"},
		{&DontHave{Indices: []uint64{5}}, "03080105"},
		{&Block{Index: 7, Data: []byte("hi")}, "04090768" + "69"},
		{&Error{Code: CodeBanned, Msg: "bye"}, "050d05627965"},
		{&HaveBitfield{Bits: []byte{0xa0, 0x40}}, "0304a040"},
		{&Hello{Version: 1, Root: nodeCID, Chunks: 10}, "28" + "01" + "01" + "24" + cidHex + "0a"},
		{&WantNode{CID: nodeCID}, "26" + "0a" + "24" + cidHex},
		{&NodeMissing{CID: nodeCID}, "26" + "0c" + "24" + cidHex},
		{&Node{CID: nodeCID, Data: []byte{0xa0}}, "27" + "0b" + "24" + cidHex + "a0"},
	}
	if !strings.HasPrefix(cidHex, "01701220") || len(cidHex) != 72 {
		t.Fatalf("node CID %s is not 01 70 12 20 <32 bytes>", cidHex)
	}
	for _, tt := range tests {
		t.Run(tt.msg.Type().String(), func(t *testing.T) {
			if got := hex.EncodeToString(encodeAll(t, tt.msg)); got != tt.want {
				t.Fatalf("encoding %s, want %s", got, tt.want)
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	for _, tt := range allMessages() {
		if strings.HasSuffix(tt.name, "max") || strings.HasSuffix(tt.name, "MiB") {
			continue // every offset of megabytes is slow and adds nothing
		}
		t.Run(tt.name, func(t *testing.T) {
			b := encodeAll(t, tt.msg)
			for i := 0; i < len(b); i++ {
				for _, alloc := range []BlockAllocFunc{nil, poolAlloc()} {
					r := NewReader(bytes.NewReader(b[:i]), 0)
					r.SetBlockAlloc(alloc)
					_, err := r.Read()
					switch {
					case i == 0 && err == io.EOF:
					case i > 0 && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrMalformed)):
					default:
						t.Fatalf("%d of %d bytes: err %v", i, len(b), err)
					}
				}
			}
		})
	}
}

// frame builds a frame by hand: length of typ and payload, typ, payload.
func frame(typ byte, payload ...byte) []byte {
	return append(appendUvarint(nil, uint64(1+len(payload))), append([]byte{typ}, payload...)...)
}

func cidField(c cid.Cid) []byte {
	return append(appendUvarint(nil, uint64(c.ByteLen())), c.Bytes()...)
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestMalformed(t *testing.T) {
	v0 := cid.NewCidV0(must(multihash.Sum([]byte("x"), multihash.SHA2_256, -1)))
	sha512 := cid.NewCidV1(cid.DagCBOR, must(multihash.Sum([]byte("x"), multihash.SHA2_512, -1)))
	count257 := appendUvarint(nil, 257)
	for range 257 {
		count257 = append(count257, 1)
	}
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty frame", []byte{0x00}, ErrMalformed},
		{"non-minimal length", []byte{0x82, 0x00, 0x02}, ErrMalformed},
		{"length overflows 64 bits", bytes.Repeat([]byte{0xff}, 11), ErrMalformed},
		{"length of 10 bytes over 64 bits", append(bytes.Repeat([]byte{0xff}, 9), 0x02), ErrMalformed},
		{"type 0", frame(0x00), ErrUnknownType},
		{"type 0x12", frame(0x12), ErrUnknownType},
		{"in order with payload", frame(0x11, 0), ErrTooLarge},
		{"type 0xff", frame(0xff, 1, 2, 3), ErrUnknownType},
		{"have all with payload", frame(0x02, 0), ErrTooLarge},
		{"have trailing", frame(0x05, 1, 2), ErrMalformed},
		{"have non-minimal", frame(0x05, 0x80, 0x00), ErrMalformed},
		{"have truncated varint", frame(0x05, 0x80), ErrMalformed},
		{"have empty", frame(0x05), ErrMalformed},
		{"want no index", frame(0x06, 0), ErrMalformed},
		{"want count past payload", frame(0x06, 3, 1, 2), ErrMalformed},
		{"want 257 indices", frame(0x06, count257...), ErrTooLarge},
		{"cancel 257 indices", frame(0x07, count257...), ErrTooLarge},
		{"dont have truncated index", frame(0x08, 2, 1, 0x80), ErrMalformed},
		{"want trailing", frame(0x06, 1, 1, 1), ErrMalformed},
		{"hello dag-cbor CID", frame(0x01, cat([]byte{1}, cidField(cborCID), []byte{0})...), integrity.ErrUnsupported},
		{"hello CIDv0", frame(0x01, cat([]byte{1}, cidField(v0), []byte{0})...), integrity.ErrUnsupported},
		{"hello sha2-512 CID", frame(0x01, cat([]byte{1}, cidField(sha512), []byte{0})...), ErrMalformed},
		{"hello CID garbage", frame(0x01, 1, 4, 1, 2, 3, 4, 0), ErrMalformed},
		{"hello CID too long", frame(0x01, cat([]byte{1, 65}, make([]byte, 65), []byte{0})...), ErrMalformed},
		{"hello CID length 64 past payload", frame(0x01, 1, 64, 1), ErrMalformed},
		{"hello CID with trailing byte", frame(0x01, cat([]byte{1, 37}, nodeCID.Bytes(), []byte{0, 0})...), ErrMalformed},
		{"hello no chunks", frame(0x01, cat([]byte{1}, cidField(nodeCID))...), ErrMalformed},
		{"want node dag-cbor CID", frame(0x0a, cidField(cborCID)...), integrity.ErrUnsupported},
		{"node missing empty CID", frame(0x0c, 0), ErrMalformed},
		{"node dag-cbor CID", frame(0x0b, cat(cidField(cborCID), []byte("data"))...), integrity.ErrUnsupported},
		{"node too big", frame(0x0b, cat(cidField(nodeCID), make([]byte, MaxNodeSize+1))...), ErrTooLarge},
		{"block too big", frame(0x09, cat([]byte{0}, make([]byte, MaxBlockSize+1))...), ErrTooLarge},
		{"block no index", frame(0x09), ErrMalformed},
		{"block index non-minimal", frame(0x09, 0x81, 0x00, 'x'), ErrMalformed},
		{"block index unterminated", frame(0x09, 0x81, 0x81), ErrMalformed},
		{"block index overflow", frame(0x09, cat(bytes.Repeat([]byte{0xff}, 9), []byte{2, 'x'})...), ErrMalformed},
		{"error code over 16 bits", frame(0x0d, 0x80, 0x80, 0x04), ErrMalformed},
		{"error not utf-8", frame(0x0d, 1, 0xff, 0xfe), ErrMalformed},
		{"error text too long", frame(0x0d, cat([]byte{1}, bytes.Repeat([]byte{'a'}, MaxErrorMsg+1))...), ErrTooLarge},
		{"error no code", frame(0x0d), ErrMalformed},
	}
	for _, tt := range tests {
		for _, alloc := range []BlockAllocFunc{nil, poolAlloc()} {
			t.Run(tt.name, func(t *testing.T) {
				m, err := readOne(tt.input, alloc)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Read = %+v, %v; want %v", m, err, tt.want)
				}
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("error %v does not wrap ErrProtocol", err)
				}
			})
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestHugeLengthPrefix: a 4 GiB length is refused from the prefix alone,
// without reading on and without allocating anything near it.
func TestHugeLengthPrefix(t *testing.T) {
	for _, n := range []uint64{MaxMessageSize + 1, 4 << 30, 1<<64 - 1} {
		input := appendUvarint(nil, n)
		input = append(input, byte(TypeBlock)) // and then nothing
		var err error
		allocated := measure(func() {
			_, err = NewReader(bytes.NewReader(input), 0).Read()
		})
		if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrProtocol) {
			t.Fatalf("length %d: %v, want ErrTooLarge", n, err)
		}
		if allocated > 64<<10 {
			t.Fatalf("length %d: allocated %d bytes", n, allocated)
		}
	}
}

// TestTypeLimitBeforePayload: a length the type does not allow is refused
// right after the type byte, before the payload is waited for.
func TestTypeLimitBeforePayload(t *testing.T) {
	tests := []struct {
		typ  Type
		size int
	}{
		{TypeHave, 11},
		{TypeHaveAll, 1},
		{TypeChoke, 1},
		{TypeUnchoke, 1},
		{TypeNotInterested, 1},
		{TypeInOrder, 1},
		{TypeWant, 2563},
		{TypeError, 260},
		{TypeWantNode, 75},
		{TypeNode, 74 + MaxNodeSize + 1},
		{TypeBlock, 10 + MaxBlockSize + 1},
	}
	for _, tt := range tests {
		input := append(appendUvarint(nil, uint64(1+tt.size)), byte(tt.typ))
		_, err := readOne(input, nil)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%v with %d bytes: %v, want ErrTooLarge", tt.typ, tt.size, err)
		}
	}
}

// TestClaimedSizeNotAllocated: a peer that claims the largest message and
// sends a few bytes makes the Reader allocate about what it sent.
func TestClaimedSizeNotAllocated(t *testing.T) {
	for _, typ := range []Type{TypeHaveBitfield, TypeBlock, TypeNode} {
		input := append(appendUvarint(nil, uint64(1+maxPayload(typ))), byte(typ))
		input = append(input, make([]byte, 100)...)
		var err error
		allocated := measure(func() {
			_, err = NewReader(bytes.NewReader(input), 0).Read()
		})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%v: %v, want io.ErrUnexpectedEOF", typ, err)
		}
		if allocated > 256<<10 {
			t.Fatalf("%v: a claim of %d bytes made Read allocate %d", typ, maxPayload(typ), allocated)
		}
	}
}

// measure returns the bytes f allocates.
func measure(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestReaderMaxSize(t *testing.T) {
	b := encodeAll(t, &Block{Index: 1, Data: make([]byte, 1000)}, &Have{Index: 2})
	r := NewReader(bytes.NewReader(b), 100)
	if _, err := r.Read(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("block over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := r.Read(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error is not sticky: %v", err)
	}
	for _, max := range []int{-1, 0, MaxMessageSize + 1} {
		if r := NewReader(nil, max); r.max != MaxMessageSize {
			t.Fatalf("NewReader(%d) limit %d, want %d", max, r.max, MaxMessageSize)
		}
	}
}

func TestBitfieldValidate(t *testing.T) {
	tests := []struct {
		chunks uint64
		bits   []byte
		ok     bool
	}{
		{0, nil, true},
		{0, []byte{0}, false},
		{1, []byte{0x80}, true},
		{1, []byte{0x40}, false},
		{1, []byte{0x01}, false},
		{1, nil, false},
		{7, []byte{0xfe}, true},
		{7, []byte{0x01}, false},
		{8, []byte{0xff}, true},
		{8, []byte{0xff, 0x00}, false},
		{9, []byte{0xff, 0x80}, true},
		{9, []byte{0xff, 0xc0}, false},
		{9, []byte{0xff, 0x01}, false},
		{9, []byte{0xff}, false},
		{16, []byte{0xff, 0xff}, true},
		{17, []byte{0, 0, 0}, true},
		{^uint64(0), []byte{0xff}, false},
	}
	for _, tt := range tests {
		err := (&HaveBitfield{Bits: tt.bits}).Validate(tt.chunks)
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%d) of % x = %v, want ok %v", tt.chunks, tt.bits, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("Validate error %v does not wrap ErrMalformed", err)
		}
	}
	m := &HaveBitfield{Bits: []byte{0x80, 0x40}} // chunks 0 and 9
	for _, i := range []uint64{0, 1, 7, 8, 9, 15, 16, 20, 1 << 62, 1<<63 + 9, ^uint64(0)} {
		if got, want := m.Has(i), i == 0 || i == 9; got != want {
			t.Errorf("Has(%d) = %v", i, got)
		}
	}
}

func TestWriterRejects(t *testing.T) {
	tests := []struct {
		name string
		msg  Msg
		want error
	}{
		{"nil", nil, nil},
		{"nil block", (*Block)(nil), nil},
		{"nil hello", (*Hello)(nil), nil},
		{"undefined root", &Hello{Version: 1}, integrity.ErrUnsupported},
		{"dag-cbor root", &Hello{Version: 1, Root: cborCID}, integrity.ErrUnsupported},
		{"dag-cbor node", &Node{CID: cborCID}, integrity.ErrUnsupported},
		{"want node undefined", &WantNode{}, integrity.ErrUnsupported},
		{"node missing dag-cbor", &NodeMissing{CID: cborCID}, integrity.ErrUnsupported},
		{"empty want", &Want{}, ErrMalformed},
		{"want 257", &Want{Indices: make([]uint64, MaxWant+1)}, ErrTooLarge},
		{"cancel 257", &Cancel{Indices: make([]uint64, MaxWant+1)}, ErrTooLarge},
		{"empty dont have", &DontHave{Indices: []uint64{}}, ErrMalformed},
		{"block too big", &Block{Data: make([]byte, MaxBlockSize+1)}, ErrTooLarge},
		{"node too big", &Node{CID: nodeCID, Data: make([]byte, MaxNodeSize+1)}, ErrTooLarge},
		{"bitfield too big", &HaveBitfield{Bits: make([]byte, MaxMessageSize)}, ErrTooLarge},
		{"error too long", &Error{Msg: strings.Repeat("x", MaxErrorMsg+1)}, ErrTooLarge},
		{"error not utf-8", &Error{Msg: "\xff"}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			err := w.Write(tt.msg)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Write = %v, want %v", err, tt.want)
			}
			if w.Buffered() != 0 {
				t.Fatalf("a refused message left %d bytes buffered", w.Buffered())
			}
			// The Writer stays usable.
			if err := w.Write(&HaveAll{}); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil || buf.String() != "\x01\x02" {
				t.Fatalf("after a refused message: % x, %v", buf.Bytes(), err)
			}
		})
	}
}

// countingWriter counts the writes it receives.
type countingWriter struct {
	writes int
	bytes.Buffer
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

func TestWriterBatches(t *testing.T) {
	var cw countingWriter
	w := NewWriter(&cw)
	for i := range 100 {
		if err := w.Write(&Want{Indices: []uint64{uint64(i), uint64(i) + 1000}}); err != nil {
			t.Fatal(err)
		}
	}
	if cw.writes != 0 {
		t.Fatalf("%d writes before Flush", cw.writes)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if cw.writes != 1 {
		t.Fatalf("a batch of WANTs took %d writes, want 1", cw.writes)
	}
}

// TestWriteBlockDirect: the bulk of a block's data reaches the underlying
// writer as the caller's own slice, not a copy.
func TestWriteBlockDirect(t *testing.T) {
	data := make([]byte, 1<<20)
	var direct int
	w := NewWriter(writerFunc(func(p []byte) (int, error) {
		if len(p) > 0 && &p[len(p)-1] == &data[len(data)-1] {
			direct = len(p)
		}
		return len(p), nil
	}))
	if err := w.Write(&Block{Index: 3, Data: data}); err != nil {
		t.Fatal(err)
	}
	if direct < len(data)-writeBufferSize {
		t.Fatalf("only %d of %d bytes went uncopied", direct, len(data))
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestWriteBlockNoAllocs(t *testing.T) {
	w := NewWriter(io.Discard)
	data := make([]byte, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		if err := w.Write(&Block{Index: 12345, Data: data}); err != nil {
			t.Fatal(err)
		}
		if err := w.Write(&Have{Index: 12345}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Write allocates %.1f times per BLOCK and HAVE, want 0", allocs)
	}
}

// TestReadBlockNoAllocs: with a BlockAllocFunc, reading a BLOCK allocates
// nothing in steady state.
func TestReadBlockNoAllocs(t *testing.T) {
	const n = 200
	data := bytes.Repeat([]byte{7}, 64<<10)
	msgs := make([]Msg, n)
	for i := range msgs {
		msgs[i] = &Block{Index: uint64(i), Data: data}
	}
	r := NewReader(bytes.NewReader(encodeAll(t, msgs...)), 0)
	blk := &Block{Data: make([]byte, 0, len(data))}
	r.SetBlockAlloc(func(uint64, int) *Block { return blk })
	var i uint64
	allocs := testing.AllocsPerRun(n-1, func() {
		m, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if b := m.(*Block); b != blk || b.Index != i || len(b.Data) != len(data) || &b.Data[0] != &blk.Data[0] {
			t.Fatalf("block %d not read into the supplied Block", i)
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("Read allocates %.1f times per BLOCK, want 0", allocs)
	}
}

func TestBlockAlloc(t *testing.T) {
	b := encodeAll(t, &Block{Index: 9, Data: []byte("abcdef")})
	// Capacity too small: Read gives the Block new data.
	small := &Block{Data: make([]byte, 2)}
	var gotIndex uint64
	var gotSize int
	m, err := readOne(b, func(index uint64, size int) *Block {
		gotIndex, gotSize = index, size
		return small
	})
	if err != nil || m != small || string(small.Data) != "abcdef" || small.Index != 9 {
		t.Fatalf("Read = %+v, %v", m, err)
	}
	if gotIndex != 9 || gotSize != 6 {
		t.Fatalf("alloc called with (%d, %d), want (9, 6)", gotIndex, gotSize)
	}
}

// TestDataAliasesBuffer documents the default: Data is the Reader's until the
// next Read.
func TestDataAliasesBuffer(t *testing.T) {
	r := NewReader(bytes.NewReader(encodeAll(t, &Block{Index: 1, Data: []byte("first")}, &Block{Index: 2, Data: []byte("later")})), 0)
	m1, _ := r.Read()
	d := m1.(*Block).Data
	if _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	if string(d) != "later" {
		t.Fatalf("Data %q: expected the buffer to be reused", d)
	}
}

func TestNewError(t *testing.T) {
	long := strings.Repeat("ab", 100) + strings.Repeat("€", 100) // € is 3 bytes
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"short", "short"},
		{"bad \xff utf-8", "bad \uFFFD utf-8"},
		{long, long[:200+54]}, // 254 bytes: the next € would pass 256
	}
	for _, tt := range tests {
		e := NewError(CodeInternal, tt.in)
		if e.Msg != tt.want || e.Code != CodeInternal {
			t.Errorf("NewError(%q) = %q", tt.in, e.Msg)
		}
		if err := NewWriter(io.Discard).Write(e); err != nil {
			t.Errorf("NewError(%q) cannot be sent: %v", tt.in, err)
		}
	}
	var err error = &Error{Code: CodeRateLimited, Msg: "slow down"}
	if got := err.Error(); got != `wire: peer error: rate limited: "slow down"` {
		t.Errorf("Error() = %s", got)
	}
}

func TestNames(t *testing.T) {
	for _, tt := range allMessages() {
		if s := tt.msg.Type().String(); strings.HasPrefix(s, "TYPE") || !tt.msg.Type().Known() {
			t.Errorf("%T has no name", tt.msg)
		}
	}
	if Type(0).Known() || Type(0x12).Known() || Type(0).String() != "TYPE(0x00)" {
		t.Errorf("type 0 is known or misnamed: %v", Type(0))
	}
	for c := CodeProtocol; c <= CodeInternal; c++ {
		if strings.HasPrefix(c.String(), "error code") {
			t.Errorf("code %d has no name", c)
		}
	}
	if ErrCode(99).String() != "error code 99" {
		t.Errorf("ErrCode(99) = %s", ErrCode(99))
	}
}

func TestWriterError(t *testing.T) {
	boom := errors.New("boom")
	w := NewWriter(writerFunc(func([]byte) (int, error) { return 0, boom }))
	if err := w.Write(&Block{Data: make([]byte, 1<<20)}); !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want the underlying error", err)
	}
	if err := w.Write(&HaveAll{}); !errors.Is(err, boom) {
		t.Fatalf("Write after failure = %v, want the underlying error", err)
	}
	if err := w.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush after failure = %v, want the underlying error", err)
	}
	if got := (&Error{Code: CodeNotFound}).Error(); got != "wire: peer error: not found" {
		t.Fatalf("Error() = %s", got)
	}
}
