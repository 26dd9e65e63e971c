package node

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/swarm"
)

// lateSource is the source of a fetch whose last chunk verifies just
// after the first look at it: Complete is false once, then true.
type lateSource struct {
	swarm.Source
	looked atomic.Int32
}

func (s *lateSource) Complete() bool { return s.looked.Add(1) > 1 }

// TestFinishStreamsDecidesOnce: Close's finishStreams is the one place
// that decides the fate of a fetch of Open, in one look under streamMu. A
// fetch that is not complete when it looks is cancelled before it returns
// (whatever it verifies next), and one that is complete is waited for,
// not cancelled.
func TestFinishStreamsDecidesOnce(t *testing.T) {
	n := &Node{streams: map[cid.Cid]*stream{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	ready := make(chan struct{})
	close(ready)

	lateCtx, lateCancel := context.WithCancel(context.Background())
	defer lateCancel()
	late := &stream{unref: func() {}, ready: ready, done: make(chan struct{}), src: &lateSource{}, cancel: lateCancel}

	doneCtx, doneCancel := context.WithCancel(context.Background())
	defer doneCancel()
	complete := &lateSource{}
	complete.looked.Store(1)
	whole := &stream{unref: func() {}, ready: ready, done: make(chan struct{}), src: complete, cancel: doneCancel}
	var moved atomic.Bool
	go func() {
		// The complete fetch moves its file into place, then ends.
		moved.Store(true)
		close(whole.done)
	}()

	n.streams[integrity.Block([]byte("late"))] = late
	n.streams[integrity.Block([]byte("whole"))] = whole
	n.cancel()
	n.finishStreams()

	if lateCtx.Err() == nil {
		t.Error("a fetch that was not complete when Close looked is not cancelled when finishStreams returns")
	}
	if !moved.Load() {
		t.Error("finishStreams returned before the complete fetch ended")
	}
	if doneCtx.Err() != nil {
		t.Error("finishStreams cancelled a fetch that holds every chunk")
	}
}
