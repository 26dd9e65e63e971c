package simulate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/swarm/wire"
)

// memBlocks holds the interior nodes of a DAG in memory; it is a unixfs.Getter.
type memBlocks map[cid.Cid][]byte

func (m memBlocks) GetBlock(_ context.Context, c cid.Cid) ([]byte, error) {
	b, ok := m[c]
	if !ok {
		return nil, fmt.Errorf("simulate: no block %s", c)
	}
	return b, nil
}

// adversary is a dishonest peer: its own mocknet host and a handler for the
// exchange protocol that misbehaves as its kind says. Every goroutine it
// starts ends when close is called, which waits for them.
type adversary struct {
	kind   AdversaryKind
	host   host.Host
	root   cid.Cid
	layout *swarm.Layout
	blocks memBlocks

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	rng     *rand.Rand               // corrupt bytes; under mu
	sent    map[peer.ID]int          // BLOCK messages written to each peer (not all may arrive)
	wants   map[peer.ID]int          // chunk requests received from each peer
	streams int                      // sessions opened or accepted
	refused map[peer.ID]wire.ErrCode // flood: the ERROR each target ended a session with
	cutoff  map[peer.ID]int          // flood: sessions each target ended
	lastErr map[peer.ID]string       // flood: why the last session ended
}

func newAdversary(kind AdversaryKind, h host.Host, root cid.Cid, l *swarm.Layout, blocks memBlocks, seed uint64) *adversary {
	a := &adversary{
		kind: kind, host: h, root: root, layout: l, blocks: blocks,
		rng:     rand.New(rand.NewPCG(seed, 0xbad)),
		sent:    map[peer.ID]int{},
		wants:   map[peer.ID]int{},
		refused: map[peer.ID]wire.ErrCode{},
		cutoff:  map[peer.ID]int{},
		lastErr: map[peer.ID]string{},
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	if kind != Flood {
		h.SetStreamHandler(wire.ProtocolID, a.handle)
	}
	return a
}

func (a *adversary) goroutine(fn func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		fn()
	}()
}

// close ends every session and waits for them. It does not close the host.
func (a *adversary) close() {
	a.host.RemoveStreamHandler(wire.ProtocolID)
	a.cancel()
	a.wg.Wait()
}

// handle serves a session an honest node opened, dishonestly.
func (a *adversary) handle(st network.Stream) {
	a.wg.Add(1)
	defer a.wg.Done()
	defer st.Reset()
	stop := context.AfterFunc(a.ctx, func() { st.Reset() })
	defer stop()
	from := st.Conn().RemotePeer()
	r, w := wire.NewReader(st, 0), wire.NewWriter(st)
	m, err := r.Read()
	if hello, ok := m.(*wire.Hello); err != nil || !ok || !hello.Root.Equals(a.root) {
		return
	}
	a.mu.Lock()
	a.streams++
	a.mu.Unlock()
	if w.Write(&wire.HaveAll{}) != nil || w.Flush() != nil {
		return
	}
	for {
		m, err := r.Read()
		if err != nil {
			return
		}
		switch m := m.(type) {
		case *wire.WantNode:
			if a.kind == Stall {
				continue
			}
			if b, ok := a.blocks[m.CID]; ok {
				err = w.Write(&wire.Node{CID: m.CID, Data: b})
			} else {
				err = w.Write(&wire.NodeMissing{CID: m.CID})
			}
		case *wire.Want:
			a.mu.Lock()
			a.wants[from] += len(m.Indices)
			a.mu.Unlock()
			switch a.kind {
			case Stall:
				continue
			case LieHave:
				err = w.Write(&wire.DontHave{Indices: m.Indices})
			case Corrupt:
				for _, i := range m.Indices {
					if i >= uint64(len(a.layout.Chunks)) {
						return
					}
					junk := make([]byte, a.layout.Chunks[i].Size)
					a.mu.Lock()
					for j := range junk {
						junk[j] = byte(a.rng.Uint32())
					}
					a.mu.Unlock()
					if err = w.Write(&wire.Block{Index: i, Data: junk}); err != nil {
						break
					}
					a.mu.Lock()
					a.sent[from]++
					a.mu.Unlock()
				}
			}
		}
		if err != nil || w.Flush() != nil {
			return
		}
	}
}

// flood opens sessions to each target, one after another, and asks for
// every chunk over and over until the target cuts the session off, at most
// rounds sessions per target. It runs in the background until close.
func (a *adversary) flood(targets []peer.AddrInfo, rounds int) {
	for _, t := range targets {
		a.goroutine(func() {
			for range rounds {
				if a.ctx.Err() != nil {
					return
				}
				err := a.floodOnce(t)
				a.mu.Lock()
				a.cutoff[t.ID]++
				if err != nil {
					a.lastErr[t.ID] = err.Error()
				}
				a.mu.Unlock()
			}
		})
	}
}

// errCutOff is how floodOnce reports a session the target ended.
var errCutOff = errors.New("cut off")

func (a *adversary) floodOnce(t peer.AddrInfo) error {
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	if err := a.host.Connect(ctx, t); err != nil {
		return err
	}
	st, err := a.host.NewStream(ctx, t.ID, wire.ProtocolID)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	defer st.Reset()
	a.mu.Lock()
	a.streams++
	a.mu.Unlock()
	// Read and drop whatever comes back, so that the target's writes never
	// block on us and the flood is all that is tested.
	readErr := make(chan error, 1)
	a.goroutine(func() {
		r := wire.NewReader(st, 0)
		for {
			m, err := r.Read()
			if err != nil {
				readErr <- err
				return
			}
			if e, ok := m.(*wire.Error); ok {
				a.mu.Lock()
				a.refused[t.ID] = e.Code
				a.mu.Unlock()
			}
		}
	})
	w := wire.NewWriter(st)
	n := uint64(len(a.layout.Chunks))
	if err := w.Write(&wire.Hello{Version: wire.Version, Root: a.root, Chunks: n}); err != nil {
		return err
	}
	if err := w.Write(&wire.HaveNone{}); err != nil {
		return err
	}
	// At most 64 rounds of every chunk: past any sane queue limit.
	for range 64 {
		for i := uint64(0); i < n; i += wire.MaxWant {
			idx := make([]uint64, 0, wire.MaxWant)
			for j := i; j < min(n, i+wire.MaxWant); j++ {
				idx = append(idx, j)
			}
			if err := w.Write(&wire.Want{Indices: idx}); err != nil {
				return err
			}
			a.mu.Lock()
			a.wants[t.ID] += len(idx)
			a.mu.Unlock()
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("%w: %v", errCutOff, err)
		}
		select {
		case err := <-readErr:
			return fmt.Errorf("%w: %v", errCutOff, err)
		default:
		}
	}
	// Still connected: wait until the target ends the session or we stop.
	select {
	case err := <-readErr:
		return fmt.Errorf("%w: %v", errCutOff, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sentTo lists the peers the adversary sent a BLOCK, sorted.
func (a *adversary) sentTo() []peer.ID {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]peer.ID, 0, len(a.sent))
	for p := range a.sent {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
