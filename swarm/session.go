package swarm

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/peer-project/peer/swarm/wire"
)

// ServiceName is the libp2p resource manager service that the exchange's
// streams join (network.StreamScope.SetService): the memory its sessions
// hold for blocks is reserved there, so that the node's limits bound it.
const ServiceName = "peer.swarm"

// closeTimeout bounds writing the final ERROR of a session: a peer that
// does not read it does not hold the session open.
const closeTimeout = 5 * time.Second

// endWith writes e, the session's last message, and closes st (not Reset,
// which would have the peer drop the ERROR unread). Both sides end a
// session that way, with the reason; the peer's reader sees the ERROR, then
// the end of the stream. It blocks for at most closeTimeout.
func endWith(st network.Stream, w *wire.Writer, e *wire.Error, now time.Time) {
	st.SetWriteDeadline(now.Add(closeTimeout))
	w.Write(e)
	w.Flush()
	st.Close()
}

// group runs goroutines that its owner waits for: every goroutine of a
// swarm, a fetch or a session starts through one. The zero value is ready.
type group struct {
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// Go runs fn on a new goroutine unless stop was called, and reports
// whether it did. A goroutine of the group may start others, also while
// its owner waits.
func (g *group) Go(fn func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn()
	}()
	return true
}

// stop refuses new goroutines from now on.
func (g *group) stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
}

// wait returns when every goroutine of the group has ended.
func (g *group) wait() { g.wg.Wait() }
