package dht

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/internal/bubble"
)

// kadStreams counts the DHT streams open on the hosts of ds, either end.
func kadStreams(ds []*DHT) int {
	n := 0
	for _, d := range ds {
		for _, c := range d.host.Network().Conns() {
			for _, st := range c.GetStreams() {
				if strings.HasSuffix(string(st.Protocol()), "/kad/1.0.0") {
					n++
				}
			}
		}
	}
	return n
}

// TestNoIdleStreams: once 30 nodes have bootstrapped, one has provided a
// root and every other has found it, no DHT stream is left open. kad-dht's
// own message sender kept one open to every peer a node had asked
// anything, until the connection closed: at 1000 simulated peers 174 a
// node, each with goroutines at both ends, half the simulation's memory.
func TestNoIdleStreams(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ds := crowd(ctx, t, 30)
		root := integrity.Block([]byte("idle streams"))
		if err := ds[0].Provide(ctx, root); err != nil {
			t.Fatal(err)
		}
		for i, d := range ds[1:] {
			if _, ok := <-d.FindProviders(ctx, root, 1); !ok {
				t.Fatalf("node %d found no provider", i+1)
			}
		}
		time.Sleep(time.Second) // answers in flight land (4 ms links)
		synctest.Wait()
		conns := 0
		for _, d := range ds {
			conns += len(d.host.Network().Conns())
		}
		if n := kadStreams(ds); n > 0 {
			t.Errorf("%d DHT stream ends still open over %d connection ends once every lookup had ended, want 0", n, conns)
		}
	})
}

// TestSendRequestTimeout: a peer that takes a request and never answers
// costs a request readTimeout, and the error says so.
func TestSendRequestTimeout(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ds := crowd(ctx, t, 2)
		const proto = "/silent/kad/1.0.0"
		ds[1].host.SetStreamHandler(proto, func(st network.Stream) {
			<-ctx.Done()
			st.Reset()
		})
		s := newStreamSender(ds[0].host, []protocol.ID{proto})
		start := time.Now()
		_, err := s.SendRequest(ctx, ds[1].host.ID(), &kadpb.Message{Type: kadpb.Message_PING})
		if err == nil || !strings.Contains(err.Error(), "no answer in 10s") {
			t.Fatalf("SendRequest = %v, want no answer in 10s", err)
		}
		// The stream opens over a 4 ms link first.
		if took := time.Since(start); took < readTimeout || took > readTimeout+time.Second {
			t.Errorf("gave up after %s, want %s", took, readTimeout)
		}
	})
}

// TestSendMessageTimeout: a peer that takes a message and never reads it
// nor closes its end holds SendMessage readTimeout at most, not until the
// caller's ctx ends (Provide passes its caller's): mocknet keeps no
// deadline, so a timer resets the stream.
func TestSendMessageTimeout(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		ds := crowd(ctx, t, 2)
		const proto = "/silent/kad/1.0.0"
		ds[1].host.SetStreamHandler(proto, func(st network.Stream) {
			<-ctx.Done()
			st.Reset()
		})
		s := newStreamSender(ds[0].host, []protocol.ID{proto})
		// More than mocknet buffers, so that the write waits for a reader.
		big := &kadpb.Message{Type: kadpb.Message_ADD_PROVIDER, Key: bytes.Repeat([]byte{1}, 1<<20)}
		start := time.Now()
		err := s.SendMessage(ctx, ds[1].host.ID(), big)
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "not taken in 10s") {
			t.Fatalf("SendMessage = %v after %s, want not taken in 10s", err, took)
		}
		if took < readTimeout || took > readTimeout+time.Second {
			t.Errorf("gave up after %s, want %s", took, readTimeout)
		}
	})
}

// countWrites counts the writes it is given.
type countWrites struct {
	bytes.Buffer
	n int
}

func (w *countWrites) Write(b []byte) (int, error) {
	w.n++
	return w.Buffer.Write(b)
}

// TestWriteMsgOneWrite: writeMsg gives a message, its length first, to
// the stream in one write whatever its size (a bufio of 512 bytes wrote
// the length and a body past it in two), and it reads back.
func TestWriteMsgOneWrite(t *testing.T) {
	for _, size := range []int{0, 100, 509, 510, 4000, 1 << 20} {
		m := &kadpb.Message{Type: kadpb.Message_PUT_VALUE, Key: bytes.Repeat([]byte{7}, size)}
		var w countWrites
		if err := writeMsg(&w, m); err != nil {
			t.Fatal(err)
		}
		if w.n != 1 {
			t.Errorf("a message with a key of %d bytes took %d writes, want 1", size, w.n)
		}
		got, err := readMsg(&w.Buffer)
		if err != nil || !bytes.Equal(got.Key, m.Key) || got.Type != m.Type {
			t.Errorf("a message with a key of %d bytes reads back as %v, %v", size, got, err)
		}
	}
}

// FuzzReadMsg: whatever a peer sends, readMsg returns a message or an
// error, never allocates past maxMessage, and a message it returns encodes
// back to what it read.
func FuzzReadMsg(f *testing.F) {
	var good bytes.Buffer
	if err := writeMsg(&good, &kadpb.Message{Type: kadpb.Message_FIND_NODE, Key: []byte("key")}); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}) // a length of 4 GiB
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readMsg(bytes.NewReader(b))
		if err != nil {
			if m != nil {
				t.Fatal("a message and an error")
			}
			return
		}
		var out bytes.Buffer
		if _, err := protodelim.MarshalTo(&out, m); err != nil {
			t.Fatal(err)
		}
		m2, err := readMsg(&out)
		if err != nil {
			t.Fatalf("a message read does not read back: %v", err)
		}
		if m2.String() != m.String() {
			t.Fatalf("read back %v, want %v", m2, m)
		}
	})
}

func TestReadMsgEmpty(t *testing.T) {
	if _, err := readMsg(bytes.NewReader(nil)); !errors.Is(err, errNoAnswer) {
		t.Errorf("readMsg of nothing = %v, want errNoAnswer", err)
	}
}
