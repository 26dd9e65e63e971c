package chunker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"unsafe"

	"go.uber.org/goleak"

	"github.com/peer-project/peer/integrity"
)

// specCID builds the text form of a raw sha2-256 CIDv1 from the spec alone,
// without go-cid: "b" and lower-case unpadded base32 of 01 55 12 20 digest.
func specCID(data []byte) string {
	sum := sha256.Sum256(data)
	b := append([]byte{0x01, 0x55, 0x12, 0x20}, sum[:]...)
	return "b" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// counterData returns n bytes of SHA-256 in counter mode: block i is
// sha256(i as 8 big-endian bytes). testdata/fastcdc_ref.py makes the same.
func counterData(n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	var ctr [8]byte
	for i := uint64(0); len(out) < n; i++ {
		binary.BigEndian.PutUint64(ctr[:], i)
		sum := sha256.Sum256(ctr[:])
		out = append(out, sum[:]...)
	}
	return out[:n]
}

// randData returns n pseudo-random bytes from a fixed seed.
func randData(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rand.NewChaCha8(s).Read(b)
	return b
}

// got is what a test records of a chunk.
type got struct {
	Index  int64
	Offset int64
	Size   int
	CID    string
	Data   []byte
}

// collect runs split and records every chunk, copying its bytes.
func collect(t testing.TB, split func(fn func(Chunk) error) error) ([]got, error) {
	t.Helper()
	var out []got
	err := split(func(c Chunk) error {
		if c.Size != len(c.Data) {
			t.Errorf("chunk %d: Size %d, len(Data) %d", c.Index, c.Size, len(c.Data))
		}
		out = append(out, got{c.Index, c.Offset, c.Size, c.CID.String(), bytes.Clone(c.Data)})
		return nil
	})
	return out, err
}

// splitAll runs the public Split over data.
func splitAll(t testing.TB, r io.Reader, p Params, workers int) []got {
	t.Helper()
	out, err := collect(t, func(fn func(Chunk) error) error {
		return Splitter{Params: p, Workers: workers}.Split(context.Background(), r, fn)
	})
	if err != nil {
		t.Fatalf("Split(%s, workers=%d): %v", p, workers, err)
	}
	return out
}

// same reports whether two runs gave the same chunks.
func same(a, b []got) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Index != y.Index || x.Offset != y.Offset || x.Size != y.Size || x.CID != y.CID || !bytes.Equal(x.Data, y.Data) {
			return false
		}
	}
	return true
}

// runAll runs the internal pipeline with unchecked params and slab size.
func runAll(t testing.TB, r io.Reader, p Params, workers, slab int) []got {
	t.Helper()
	out, err := collect(t, func(fn func(Chunk) error) error {
		return run(context.Background(), r, p, workers, slab, fn)
	})
	if err != nil {
		t.Fatalf("run(%s, workers=%d, slab=%d): %v", p, workers, slab, err)
	}
	return out
}

// checkChunks checks that chunks tile data in order, that their CIDs are
// right, and that their sizes are those of want (if not nil).
func checkChunks(t testing.TB, data []byte, chunks []got, want []int) {
	t.Helper()
	var off int64
	for i, c := range chunks {
		if c.Index != int64(i) || c.Offset != off {
			t.Fatalf("chunk %d: index %d offset %d, want %d and %d", i, c.Index, c.Offset, i, off)
		}
		end := off + int64(c.Size)
		if end > int64(len(data)) || !bytes.Equal(c.Data, data[off:end]) {
			t.Fatalf("chunk %d (offset %d, %d bytes): data differ from the input", i, off, c.Size)
		}
		if w := specCID(c.Data); c.CID != w {
			t.Fatalf("chunk %d: CID %s, want %s", i, c.CID, w)
		}
		off = end
	}
	if off != int64(len(data)) {
		t.Fatalf("chunks cover %d bytes of %d", off, len(data))
	}
	if want != nil {
		sizes := make([]int, len(chunks))
		for i, c := range chunks {
			sizes[i] = c.Size
		}
		if fmt.Sprint(sizes) != fmt.Sprint(want) {
			t.Fatalf("sizes %v, want %v", sizes, want)
		}
	}
}

// fixedSizes returns the chunk sizes of fixed chunking of n bytes.
func fixedSizes(n, size int) []int {
	out := []int{}
	for ; n > 0; n -= size {
		out = append(out, min(n, size))
	}
	return out
}

func TestEmptyFileCID(t *testing.T) {
	const want = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	if got := specCID(nil); got != want {
		t.Fatalf("specCID(empty) = %s, want %s", got, want)
	}
	if got := integrity.Chunk(nil).String(); got != want {
		t.Fatalf("integrity.Chunk(empty) = %s, want %s", got, want)
	}
}

func TestFixed(t *testing.T) {
	const size = MinSize
	data := counterData(5*size + 123)
	tests := []struct {
		name string
		n    int
	}{
		{"empty", 0},
		{"one byte", 1},
		{"size-1", size - 1},
		{"exactly one chunk", size},
		{"size+1", size + 1},
		{"two chunks", 2 * size},
		{"2*size-1", 2*size - 1},
		{"many with a short tail", 5*size + 123},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := data[:tt.n]
			for _, workers := range []int{1, 3} {
				chunks := splitAll(t, bytes.NewReader(in), FixedParams(size), workers)
				checkChunks(t, in, chunks, fixedSizes(tt.n, size))
			}
		})
	}
}

// TestFixedVectors checks chunk CIDs against strings computed by
// testdata/fastcdc_ref.py (Python hashlib and base64, no IPFS code).
func TestFixedVectors(t *testing.T) {
	data := counterData(4 << 20)
	tests := []struct {
		name        string
		data        []byte
		size        int
		count       int
		first, last string
	}{
		{"16KiB zeros", make([]byte, 16<<10), 16 << 10, 1,
			"bafkreicp462zv5w6hntfwz3yrtbptgesvobh56xdurttikz3wtr3zds37y",
			"bafkreicp462zv5w6hntfwz3yrtbptgesvobh56xdurttikz3wtr3zds37y"},
		{"4MiB counter data, 16KiB", data, 16 << 10, 256,
			"bafkreigdr2ekde4jniujwdjcuhdorfsyzmomlptvtofwzddhem3xeqx6pm",
			"bafkreibvbkmtvn4nr4z4wg3wyoakvskiklyaf6qbbcbstkcttpklbvhgji"},
		{"4MiB counter data, 1MiB", data, 1 << 20, 4,
			"bafkreideeyd2kwgjzezoiwhuyouepeupk4xficfzqshba3txc2ee4o27bi",
			"bafkreifd4ax5dv7e66sq4ufsayvvxmqv2qtr7ccxgsdcrx3pb7fy6mt4by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := splitAll(t, bytes.NewReader(tt.data), FixedParams(tt.size), 0)
			if len(chunks) != tt.count {
				t.Fatalf("%d chunks, want %d", len(chunks), tt.count)
			}
			if chunks[0].CID != tt.first || chunks[len(chunks)-1].CID != tt.last {
				t.Fatalf("first, last CID %s, %s; want %s, %s",
					chunks[0].CID, chunks[len(chunks)-1].CID, tt.first, tt.last)
			}
			checkChunks(t, tt.data, chunks, fixedSizes(len(tt.data), tt.size))
		})
	}
}

// jerkyReader returns 1 to 7 bytes per Read, chosen by a seeded rand.
type jerkyReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (j *jerkyReader) Read(p []byte) (int, error) {
	return j.r.Read(p[:min(len(p), 1+j.rng.IntN(7))])
}

// readers returns the same stream behind readers with different habits.
func readers(data []byte) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"one byte":    func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"half":        func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"data+EOF":    func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"1..7 bytes":  func() io.Reader { return &jerkyReader{bytes.NewReader(data), rand.New(rand.NewPCG(1, 2))} },
		"no WriterTo": func() io.Reader { return io.MultiReader(bytes.NewReader(data)) },
	}
}

func TestShortReads(t *testing.T) {
	data := randData(7, 70_000)
	tests := []struct {
		name    string
		p       Params
		slab    int
		workers int
	}{
		{"fixed 1000, slab 1000", FixedParams(1000), 1000, 2},
		{"fixed 1000, slab 4000", FixedParams(1000), 4000, 3},
		{"fastcdc 256/1024/4096, slab = max", Params{Algorithm: FastCDC, Min: 256, Avg: 1024, Max: 4096}, 4096, 2},
		{"fastcdc 256/1024/4096, slab 3*max", Params{Algorithm: FastCDC, Min: 256, Avg: 1024, Max: 4096}, 3 * 4096, 1},
		{"fastcdc 32/128/130", Params{Algorithm: FastCDC, Min: 32, Avg: 128, Max: 130}, 200, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := runAll(t, bytes.NewReader(data), tt.p, 1, tt.slab)
			var wantSizes []int
			if tt.p.Algorithm == FastCDC {
				wantSizes = refCDC(data, tt.p)
			} else {
				wantSizes = fixedSizes(len(data), tt.p.Size)
			}
			checkChunks(t, data, want, wantSizes)
			for name, r := range readers(data) {
				chunks := runAll(t, r(), tt.p, tt.workers, tt.slab)
				if !same(chunks, want) {
					t.Errorf("%s reader: chunks differ from a bytes.Reader's", name)
				}
			}
		})
	}
}

func TestShortReadsPublic(t *testing.T) {
	data := randData(8, 300_000)
	for _, p := range []Params{FixedParams(MinSize), CDCParams(MinSize)} {
		want := splitAll(t, bytes.NewReader(data), p, 1)
		for name, r := range readers(data) {
			if chunks := splitAll(t, r(), p, 2); !same(chunks, want) {
				t.Errorf("%s, %s reader: chunks differ from a bytes.Reader's", p, name)
			}
		}
	}
}

func TestWorkersAgree(t *testing.T) {
	data := randData(9, 3<<20+77)
	for _, p := range []Params{FixedParams(MinSize), FixedParams(1 << 20), CDCParams(64 << 10), CDCParams(MinSize)} {
		one := splitAll(t, bytes.NewReader(data), p, 1)
		four := splitAll(t, bytes.NewReader(data), p, 4)
		if !same(one, four) {
			t.Errorf("%s: workers=1 and workers=4 give different chunks", p)
		}
		checkChunks(t, data, one, nil)
	}
}

// endless is a stream that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

func TestCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, p := range []Params{FixedParams(MinSize), CDCParams(MinSize)} {
		for _, workers := range []int{1, 4} {
			ctx, cancel := context.WithCancel(context.Background())
			calls := 0
			err := Splitter{Params: p, Workers: workers}.Split(ctx, endless{}, func(c Chunk) error {
				calls++
				if c.Index == 9 {
					cancel()
				}
				return nil
			})
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s workers=%d: Split = %v, want context.Canceled", p, workers, err)
			}
			if calls != 10 {
				t.Fatalf("%s workers=%d: fn called %d times, want 10 (none after cancel)", p, workers, calls)
			}
		}
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Split(ctx, endless{}, DefaultParams(), func(Chunk) error {
		t.Error("fn called after cancel")
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Split = %v, want context.Canceled", err)
	}
}

// blockedReader returns a few bytes, then blocks in Read until release is
// closed, then fails.
type blockedReader struct {
	sent    bool
	blocked chan struct{}
	release chan struct{}
}

func (b *blockedReader) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "some bytes"), nil
	}
	close(b.blocked)
	<-b.release
	return 0, errors.New("closed")
}

// TestCancelBlockedRead checks that Split waits for a Read that blocks, and
// returns ctx's error once it returns.
func TestCancelBlockedRead(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := &blockedReader{blocked: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error)
	go func() {
		done <- Split(ctx, r, DefaultParams(), func(Chunk) error { return nil })
	}()
	<-r.blocked
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Split returned %v while its Read was still blocked", err)
	default:
	}
	close(r.release) // as closing the file would
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Split = %v, want context.Canceled", err)
	}
}

func TestFnErrorStops(t *testing.T) {
	defer goleak.VerifyNone(t)
	errBoom := errors.New("boom")
	for _, p := range []Params{FixedParams(MinSize), CDCParams(MinSize)} {
		calls := 0
		err := Splitter{Params: p, Workers: 2}.Split(context.Background(), endless{}, func(c Chunk) error {
			calls++
			if c.Index == 2 {
				return errBoom
			}
			return nil
		})
		if !errors.Is(err, errBoom) || calls != 3 {
			t.Fatalf("%s: Split = %v after %d calls, want boom after 3", p, err, calls)
		}
	}
}

func TestReadError(t *testing.T) {
	defer goleak.VerifyNone(t)
	errDisk := errors.New("disk on fire")
	data := randData(10, 1<<20)
	const failAt = 5*MinSize + 1000
	for _, p := range []Params{FixedParams(MinSize), CDCParams(MinSize)} {
		full := splitAll(t, bytes.NewReader(data), p, 1)
		r := io.MultiReader(bytes.NewReader(data[:failAt]), iotest.ErrReader(errDisk))
		chunks, err := collect(t, func(fn func(Chunk) error) error {
			return Splitter{Params: p, Workers: 2}.Split(context.Background(), r, fn)
		})
		var re *ReadError
		if !errors.As(err, &re) || !errors.Is(err, errDisk) || re.Offset != failAt {
			t.Fatalf("%s: Split = %v, want a *ReadError at offset %d wrapping %v", p, err, failAt, errDisk)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(failAt)) || !strings.HasPrefix(err.Error(), "chunker: ") {
			t.Fatalf("error %q does not name the offset", err)
		}
		// Delivered: every chunk of the whole stream that ends by failAt.
		var want []got
		for _, c := range full {
			if c.Offset+int64(c.Size) <= failAt {
				want = append(want, c)
			}
		}
		if len(want) == 0 || !same(chunks, want) {
			t.Fatalf("%s: delivered %d chunks before the error, want the %d that end by %d", p, len(chunks), len(want), failAt)
		}
	}
}

// stuckReader returns nothing and no error, forever.
type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderMakesNoProgress(t *testing.T) {
	err := Split(context.Background(), stuckReader{}, DefaultParams(), func(Chunk) error { return nil })
	if !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Split = %v, want io.ErrNoProgress", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	nop := func(Chunk) error { return nil }
	tests := []struct {
		name string
		s    Splitter
		fn   func(Chunk) error
		want error
	}{
		{"zero params", Splitter{}, nop, ErrParams},
		{"tiny fixed", Splitter{Params: FixedParams(100)}, nop, ErrParams},
		{"huge fixed", Splitter{Params: FixedParams(MaxSize + 1)}, nop, ErrParams},
		{"avg not a power of two", Splitter{Params: Params{Algorithm: FastCDC, Min: MinSize, Avg: 3 * MinSize, Max: MaxSize}}, nop, ErrParams},
		{"negative workers", Splitter{Params: DefaultParams(), Workers: -1}, nop, ErrParams},
		{"nil fn", Splitter{Params: DefaultParams()}, nil, ErrNilFunc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Split(context.Background(), endless{}, tt.fn)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Split = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestFnPanics checks that a panic in fn reaches the caller and that Split's
// goroutines still end.
func TestFnPanics(t *testing.T) {
	defer goleak.VerifyNone(t)
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		_ = Splitter{Params: FixedParams(MinSize), Workers: 2}.Split(context.Background(), endless{}, func(c Chunk) error {
			if c.Index == 3 {
				panic("fn failed")
			}
			return nil
		})
	}()
	if recovered != "fn failed" {
		t.Fatalf("recovered %v, want the panic of fn", recovered)
	}
}

// TestDataIsCapped checks that fn cannot append into the next chunk's bytes.
func TestDataIsCapped(t *testing.T) {
	data := randData(11, 5*MinSize)
	err := Splitter{Params: FixedParams(MinSize), Workers: 1}.Split(context.Background(), bytes.NewReader(data), func(c Chunk) error {
		if cap(c.Data) != len(c.Data) {
			return fmt.Errorf("chunk %d: cap %d > len %d", c.Index, cap(c.Data), len(c.Data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// overlapReader fails the test if two Reads run at once: workers take
// turns to read, and must never overlap.
type overlapReader struct {
	r        io.Reader
	inflight atomic.Int32
	overlaps atomic.Int32
	reads    atomic.Int32
}

func (o *overlapReader) Read(p []byte) (int, error) {
	if o.inflight.Add(1) != 1 {
		o.overlaps.Add(1)
	}
	defer o.inflight.Add(-1)
	o.reads.Add(1)
	runtime.Gosched() // give another worker the chance to read now, if it could
	return o.r.Read(p[:min(len(p), 999)])
}

// TestReadsTakeTurns runs many workers over a stream read in short pieces
// and checks that no two Reads overlap and that the chunks are the same as
// with one worker.
func TestReadsTakeTurns(t *testing.T) {
	data := randData(23, 600_000)
	for _, p := range []Params{FixedParams(1000), {Algorithm: FastCDC, Min: 256, Avg: 1024, Max: 4096}} {
		want := runAll(t, bytes.NewReader(data), p, 1, p.MaxChunk())
		for _, workers := range []int{2, 4, 8} {
			or := &overlapReader{r: bytes.NewReader(data)}
			got := runAll(t, or, p, workers, p.MaxChunk())
			if n := or.overlaps.Load(); n > 0 {
				t.Errorf("%s, %d workers: %d of %d reads overlapped another", p, workers, n, or.reads.Load())
			}
			if !same(got, want) {
				t.Errorf("%s, %d workers: chunks differ from one worker's", p, workers)
			}
		}
	}
}

// alignReader records the Reads whose buffer does not lie as far past a
// multiple of readAlign bytes as the stream's position does, but for those
// that follow a short read (which ends anywhere).
type alignReader struct {
	r                 io.Reader
	pos               int  // bytes read so far
	short             bool // the last Read filled less than its buffer
	reads, misaligned int
}

func (a *alignReader) Read(p []byte) (int, error) {
	a.reads++
	if len(p) > 0 && uintptr(unsafe.Pointer(&p[0]))%readAlign != uintptr(a.pos%readAlign) && !a.short {
		a.misaligned++
	}
	n, err := a.r.Read(p)
	a.pos += n
	a.short = n < len(p)
	return n, err
}

// TestReadsAligned checks that Split reads each piece of the stream into a
// buffer that lies as far past a 64-byte boundary as the piece's offset in
// the stream does (as a file's bytes lie in its page cache) when the reader
// fills what it is given, whatever the length of the unfinished chunk moved
// to the start of each FastCDC slab: a kernel copies a file's bytes into a
// buffer placed otherwise at up to less than half the speed (readAlign).
func TestReadsAligned(t *testing.T) {
	data := randData(25, 3<<20)
	for _, p := range []Params{{Algorithm: FastCDC, Min: 256, Avg: 1024, Max: 4096}, FixedParams(1000)} {
		for _, workers := range []int{1, 2} {
			ar := &alignReader{r: bytes.NewReader(data)}
			got := runAll(t, ar, p, workers, 3*p.MaxChunk()+1)
			if ar.misaligned > 0 {
				t.Errorf("%s, %d workers: %d of %d reads into a buffer placed off the stream's offset modulo %d",
					p, workers, ar.misaligned, ar.reads, readAlign)
			}
			if !same(got, runAll(t, bytes.NewReader(data), p, 1, p.MaxChunk())) {
				t.Errorf("%s, %d workers: chunks differ from one worker's with the smallest slabs", p, workers)
			}
		}
	}
}
