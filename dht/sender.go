package dht

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// readTimeout bounds the wait for a peer's answer, or for it to take a
// message (SendMessage), as kad-dht's own sender does (10 s).
const readTimeout = 10 * time.Second

// maxMessage is the largest DHT message read: kad-dht's limit
// (network.MessageSizeMax, 4 MiB), checked before the message is allocated.
const maxMessage = network.MessageSizeMax

// errNoAnswer: the peer closed the stream without answering a request.
var errNoAnswer = errors.New("dht: the peer closed the stream without an answer")

// streamSender is the DHT's kadpb.MessageSender: each request or message
// gets a stream of its own, closed as soon as it is answered (or sent).
//
// kad-dht's own sender keeps a stream open to every peer it ever sent
// anything to, until the connection ends; at 1000 simulated peers that
// was 174 streams a node, each holding goroutines at both ends (the
// server's handler waits on it for a minute), about half of the
// simulation's memory. A stream per request costs no round trip more: with
// one protocol, go-libp2p negotiates it lazily, with the first message.
// rust-libp2p's Kademlia works the same way.
type streamSender struct {
	h      host.Host
	protos []protocol.ID
}

func newStreamSender(h host.Host, protos []protocol.ID) kadpb.MessageSenderWithDisconnect {
	return &streamSender{h: h, protos: protos}
}

// SendRequest sends pmes to p on a new stream and returns the answer. It
// blocks until the answer, ctx's end or readTimeout; safe for concurrent
// use.
func (s *streamSender) SendRequest(ctx context.Context, p peer.ID, pmes *kadpb.Message) (*kadpb.Message, error) {
	st, err := s.h.NewStream(ctx, p, s.protos...)
	if err != nil {
		return nil, err
	}
	// A reset ends a read or write in progress: at ctx's end, or when the
	// answer is late (a timer, not a deadline, which not every transport
	// keeps).
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	stop := context.AfterFunc(rctx, func() { st.Reset() })
	defer stop()
	start := time.Now()
	if err := writeMsg(st, pmes); err != nil {
		st.Reset()
		return nil, s.failed(ctx, rctx, "request to", p, err)
	}
	resp, err := readMsg(st)
	if err != nil {
		st.Reset()
		return nil, s.failed(ctx, rctx, "answer from", p, err)
	}
	// The peer's handler, waiting for another request, reads the end of
	// the stream and ends too.
	st.Close()
	s.h.Peerstore().RecordLatency(p, time.Since(start))
	return resp, nil
}

// SendMessage sends pmes to p on a new stream, which it then closes. It
// blocks until the message is written, ctx ends or readTimeout passes (a
// peer that takes the stream and never reads it); safe for concurrent use.
func (s *streamSender) SendMessage(ctx context.Context, p peer.ID, pmes *kadpb.Message) error {
	st, err := s.h.NewStream(ctx, p, s.protos...)
	if err != nil {
		return err
	}
	// A timer, not a deadline, as in SendRequest: mocknet keeps none.
	wctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	stop := context.AfterFunc(wctx, func() { st.Reset() })
	defer stop()
	if err := writeMsg(st, pmes); err != nil {
		st.Reset()
		return sendFailed(ctx, wctx, p, err)
	}
	if err := st.Close(); err != nil {
		st.Reset()
		return sendFailed(ctx, wctx, p, err)
	}
	return nil
}

// sendFailed says why a message failed: ctx's end, its timeout, or err.
func sendFailed(ctx, wctx context.Context, p peer.ID, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if wctx.Err() != nil {
		return fmt.Errorf("dht: message to %s: not taken in %s", p, readTimeout)
	}
	return fmt.Errorf("dht: message to %s: %w", p, err)
}

// failed says why a request failed: ctx's end, the answer's timeout, or err.
func (s *streamSender) failed(ctx, rctx context.Context, what string, p peer.ID, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if rctx.Err() != nil {
		return fmt.Errorf("dht: %s %s: no answer in %s", what, p, readTimeout)
	}
	return fmt.Errorf("dht: %s %s: %w", what, p, err)
}

// OnDisconnect does nothing: no stream outlives its request.
func (s *streamSender) OnDisconnect(context.Context, peer.ID) {}

// writeMsg writes m varint-delimited, length and body in one write.
func writeMsg(w io.Writer, m *kadpb.Message) error {
	size := proto.Size(m)
	buf := make([]byte, 0, protowire.SizeVarint(uint64(size))+size)
	buf = protowire.AppendVarint(buf, uint64(size))
	buf, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, m)
	if err != nil {
		return err
	}
	_, err = w.Write(buf)
	return err
}

// readMsg reads one varint-delimited message of at most maxMessage bytes.
func readMsg(r io.Reader) (*kadpb.Message, error) {
	m := new(kadpb.Message)
	err := protodelim.UnmarshalOptions{MaxSize: maxMessage}.UnmarshalFrom(bufio.NewReaderSize(r, 512), m)
	if errors.Is(err, io.EOF) {
		return nil, errNoAnswer
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}
