package swarm

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/integrity"
)

// TestWantQueueModel checks wantQueue against the obvious slice (a cancel
// removes the first equal request, as the serving side's linear scan did) under random pushes, cancels, pops and
// resets: the same requests are served in the same order, scan lists the
// waiting chunks in that order, and the slice of
// entries never grows past twice the live requests plus the slack, however
// many cancels.
func TestWantQueueModel(t *testing.T) {
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 1))
		var w wantQueue
		var model []uint64
		servedW, servedM := map[uint64]int{}, map[uint64]int{}
		for step := range 5000 {
			switch op := r.IntN(10); {
			case op < 4:
				idx := make([]uint64, 1+r.IntN(8))
				for k := range idx {
					idx[k] = uint64(r.IntN(12))
				}
				w.pushAt(idx, time.Time{})
				model = append(model, idx...)
			case op < 8:
				i := uint64(r.IntN(14))
				k := slices.Index(model, i)
				if k >= 0 {
					model = slices.Delete(model, k, k+1)
				}
				if got := w.cancel(i); got != (k >= 0) {
					t.Fatalf("seed %d step %d: cancel(%d) = %v, want %v", seed, step, i, got, k >= 0)
				}
			case op < 9:
				i, ok := w.pop()
				if ok != (len(model) > 0) {
					t.Fatalf("seed %d step %d: pop ok %v with %d waiting", seed, step, ok, len(model))
				}
				if ok && i != model[0] {
					t.Fatalf("seed %d step %d: pop = %d, want %d", seed, step, i, model[0])
				}
				if ok {
					servedW[i]++
					servedM[model[0]]++
					model = model[1:]
				}
			default:
				if r.IntN(20) == 0 {
					w.reset()
					model = nil
				}
			}
			if w.len() != len(model) {
				t.Fatalf("seed %d step %d: len %d, want %d", seed, step, w.len(), len(model))
			}
			// scan sees each waiting chunk once, in the order of its
			// first request, and stops where asked.
			var exp, got []uint64
			for _, i := range model {
				if !slices.Contains(exp, i) {
					exp = append(exp, i)
				}
			}
			w.scan(len(model)+1, func(h *want) bool { got = append(got, h.idx); return true })
			if !slices.Equal(got, exp) {
				t.Fatalf("seed %d step %d: scan %v, want %v", seed, step, got, exp)
			}
			if len(exp) > 1 {
				got = got[:0]
				w.scan(2, func(h *want) bool { got = append(got, h.idx); return len(got) < 1 })
				if !slices.Equal(got, exp[:1]) {
					t.Fatalf("seed %d step %d: scan stopped after %v, want %v", seed, step, got, exp[:1])
				}
			}
			if len(w.q) > 2*w.len()+65 {
				t.Fatalf("seed %d step %d: %d entries for %d live requests", seed, step, len(w.q), w.len())
			}
		}
		for {
			i, ok := w.pop()
			if !ok {
				break
			}
			servedW[i]++
		}
		for _, i := range model {
			servedM[i]++
		}
		for i := range uint64(14) {
			if servedW[i] != servedM[i] {
				t.Fatalf("seed %d: chunk %d served %d times, want %d", seed, i, servedW[i], servedM[i])
			}
		}
	}
}

// TestWantQueueCancelFlood: cancels of requests that never came, or of
// ones just pushed, leave no trace: a million of them leave the queue as
// small as the requests waiting.
func TestWantQueueCancelFlood(t *testing.T) {
	var w wantQueue
	w.pushAt(make([]uint64, 1000), time.Time{}) // 1000 requests of chunk 0
	for range 1_000_000 {
		w.pushAt([]uint64{1}, time.Time{})
		w.cancel(1)
		w.cancel(2)
	}
	if w.len() != 1000 || len(w.q) > 2*1000+65 {
		t.Fatalf("%d waiting in %d entries, want 1000 in at most %d", w.len(), len(w.q), 2*1000+65)
	}
}

// TestCancelBeforeWritten: a request cancelled before the writer sent it is
// never sent, and no CANCEL is: the batch writes CANCELs before WANTs, so
// the peer would see a CANCEL of a chunk not yet asked for, which its
// CANCEL budget counts against us.
func TestCancelBeforeWritten(t *testing.T) {
	c := &conn{requested: map[int64]asked{}}
	c.request(5)
	c.request(6)
	c.cancel(5)
	if len(c.cancels) != 0 || !slices.Equal(c.wants, []uint64{6}) {
		t.Fatalf("after request 5, 6 and cancel 5: WANT %v, CANCEL %v; want WANT [6] and no CANCEL", c.wants, c.cancels)
	}
	if _, ok := c.requested[5]; ok {
		t.Fatalf("chunk 5 is still expected: %+v", c.requested[5])
	}
	// Once written, a cancel is sent.
	c.wants = nil
	c.cancel(6)
	if !slices.Equal(c.cancels, []uint64{6}) {
		t.Fatalf("cancel of a written request: CANCEL %v, want [6]", c.cancels)
	}
	if a := c.requested[6]; a.sent != 1 || a.live != 0 {
		t.Fatalf("chunk 6 after its CANCEL: %+v, want sent 1 live 0", a)
	}
}

// TestNodeAnswers: each WANT_NODE written has one answer; two asks of the
// same block (two walkers) take two answers, the first of which wakes both
// waiters, and a third answer is unrequested.
func TestNodeAnswers(t *testing.T) {
	c := &conn{nodeWait: map[cid.Cid][]chan []byte{}, nodeAsked: map[cid.Cid]int{}, requested: map[int64]asked{}, wake: make(chan struct{}, 1)}
	id := integrity.Block([]byte("node"))
	a, b := make(chan []byte, 1), make(chan []byte, 1)
	c.nodeWait[id] = []chan []byte{a, b}
	c.nodeAsked[id] = 2
	for i := range 2 {
		if !c.deliver(id, []byte("x")) {
			t.Fatalf("answer %d to two WANT_NODEs was refused", i+1)
		}
	}
	if string(<-a) != "x" || string(<-b) != "x" {
		t.Fatal("a waiter did not get the block")
	}
	if c.deliver(id, []byte("x")) {
		t.Fatal("a third answer to two WANT_NODEs was taken")
	}
}

// TestWantQueueInOrder: a queue reports its requests in order while every
// one so far named a chunk past the one before, or the last streamRun did;
// CHOKE (reset) and CANCEL do not change what the fetcher did.
func TestWantQueueInOrder(t *testing.T) {
	ascending := func(from uint64, n int) []uint64 {
		out := make([]uint64, n)
		for k := range out {
			out[k] = from + uint64(k)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		pushes [][]uint64
		want   bool
	}{
		{"none", nil, false},
		{"one", [][]uint64{{7}}, true},
		{"ascending, with gaps", [][]uint64{{0, 1, 5}, {6}, {40}}, true},
		{"descending", [][]uint64{{5, 3}}, false},
		{"repeated", [][]uint64{{5}, {5}}, false},
		{"a seek back, then fewer than streamRun", [][]uint64{{10, 11, 12}, ascending(2, streamRun-1)}, false},
		{"a seek back, then streamRun", [][]uint64{{10, 11, 12}, ascending(2, streamRun)}, true},
		{"in order, then out", [][]uint64{ascending(0, 3*streamRun), {1}}, false},
	} {
		var w wantQueue
		for _, p := range tc.pushes {
			w.pushAt(p, time.Time{})
		}
		if got := w.inOrder(); got != tc.want {
			t.Errorf("%s: inOrder() = %v, want %v", tc.name, got, tc.want)
		}
		for _, p := range tc.pushes {
			for _, i := range p {
				w.cancel(i)
			}
		}
		w.reset()
		if got := w.inOrder(); got != tc.want {
			t.Errorf("%s: inOrder() = %v after CANCEL and CHOKE, want %v", tc.name, got, tc.want)
		}
	}
}
