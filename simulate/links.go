package simulate

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// newHost makes a mocknet host, or with Loopback a TCP host on 127.0.0.1,
// with an identity from the seed. idx ≥ 0 is an honest peer, whose uploads
// are capped.
func (r *runner) newHost(idx int) (host.Host, error) {
	k, _, err := crypto.GenerateEd25519Key(r.keys)
	if err != nil {
		return nil, fmt.Errorf("simulate: key: %w", err)
	}
	if r.sc.Loopback {
		return r.newLoopbackHost(k, idx)
	}
	n := r.nextAddr
	r.nextAddr++
	a, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", (n>>16)&0xff, (n>>8)&0xff, n&0xff))
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	h, err := r.mn.AddPeer(k, a)
	if err != nil {
		return nil, fmt.Errorf("simulate: mocknet host: %w", err)
	}
	if idx < 0 {
		return h, nil
	}
	r.linkMu.Lock()
	r.slotOf[h.ID()] = idx
	r.linkMu.Unlock()
	me := h.ID()
	ch := &cappedHost{Host: h, tally: newTally(), cuts: r.cuts, dialing: func(p peer.ID) { r.ensureLink(me, p) }}
	if r.sc.UploadCap > 0 {
		ch.bucket = newBucket(r.sc.UploadCap, r.closed)
	}
	return ch, nil
}

// newLoopbackHost makes a libp2p host with key k on 127.0.0.1 (TCP, an
// ephemeral port; libp2p's default security and muxers), which Run closes
// at its end. idx ≥ 0 is an honest peer, whose uploads are capped. It
// takes no link: the kernel's loopback carries every dial.
func (r *runner) newLoopbackHost(k crypto.PrivKey, idx int) (host.Host, error) {
	h, err := libp2p.New(
		libp2p.Identity(k),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
	)
	if err != nil {
		return nil, fmt.Errorf("simulate: loopback host: %w", err)
	}
	r.linkMu.Lock()
	r.loopback = append(r.loopback, h)
	r.linkMu.Unlock()
	if idx < 0 {
		return h, nil
	}
	ch := &cappedHost{Host: h, tally: newTally(), cuts: r.cuts, dialing: func(peer.ID) {}}
	if r.sc.UploadCap > 0 {
		ch.bucket = newBucket(r.sc.UploadCap, r.closed)
	}
	return ch, nil
}

// closeLoopback closes the hosts newLoopbackHost made.
func (r *runner) closeLoopback() {
	r.linkMu.Lock()
	hs := r.loopback
	r.loopback = nil
	r.linkMu.Unlock()
	for _, h := range hs {
		h.Close()
	}
}

// linkOptions are the options of the link between the hosts in profile
// slots i and j (honest peers first, then adversaries in order).
func (r *runner) linkOptions(i, j int) mocknet.LinkOptions {
	a, b := r.sc.Profiles[r.profile[i]], r.sc.Profiles[r.profile[j]]
	o := mocknet.LinkOptions{Latency: a.Latency + b.Latency}
	switch {
	case a.Bandwidth == 0:
		o.Bandwidth = b.Bandwidth
	case b.Bandwidth == 0:
		o.Bandwidth = a.Bandwidth
	default:
		o.Bandwidth = min(a.Bandwidth, b.Bandwidth)
	}
	return o
}

// slot is a host with its profile index.
type slot struct {
	id  peer.ID
	idx int
}

// slots lists every live host: honest peers that are up, then adversaries.
func (r *runner) slots(adv []host.Host) []slot {
	var out []slot
	for _, p := range r.peers {
		if p.host != nil {
			out = append(out, slot{p.host.ID(), p.idx})
		}
	}
	for i, h := range adv {
		out = append(out, slot{h.ID(), r.sc.Peers + i})
	}
	return out
}

func (r *runner) advHosts() []host.Host {
	out := make([]host.Host, len(r.advs))
	for i, a := range r.advs {
		out[i] = a.host
	}
	return out
}

// link links two hosts unless they are linked already.
func (r *runner) link(a, b slot) error {
	if r.sc.Loopback {
		return nil // the kernel links them
	}
	r.linkMu.Lock()
	defer r.linkMu.Unlock()
	return r.linkLocked(a, b)
}

// linkLocked is link with r.linkMu held.
func (r *runner) linkLocked(a, b slot) error {
	if r.linked[a.id][b.id] {
		return nil
	}
	l, err := r.mn.LinkPeers(a.id, b.id)
	if err != nil {
		return fmt.Errorf("simulate: link: %w", err)
	}
	if o := r.linkOptions(a.idx, b.idx); o != (mocknet.LinkOptions{}) {
		l.SetOptions(o)
	}
	for _, e := range [][2]peer.ID{{a.id, b.id}, {b.id, a.id}} {
		m := r.linked[e[0]]
		if m == nil {
			m = map[peer.ID]bool{}
			r.linked[e[0]] = m
		}
		m[e[1]] = true
	}
	return nil
}

// unlinkLocked removes the link between a and b, if any. r.linkMu is held.
func (r *runner) unlinkLocked(a, b peer.ID) {
	if !r.linked[a][b] {
		return
	}
	r.mn.UnlinkPeers(a, b)
	delete(r.linked[a], b)
	delete(r.linked[b], a)
}

// ensureLink links honest host a to host b as a dials it, unless a fault
// stands between them (a partition, a peer that left), b is no live host,
// or the run is shutting down: then the dial fails as it would over a cut
// link. It is safe for
// concurrent use.
func (r *runner) ensureLink(a, b peer.ID) {
	select {
	case <-r.closed:
		return // shutting down: no new connections to tear down
	default:
	}
	r.linkMu.Lock()
	defer r.linkMu.Unlock()
	if a == b || r.linked[a][b] || r.cuts.blocked(a, b) {
		return
	}
	ia, oka := r.slotOf[a]
	ib, okb := r.slotOf[b]
	if !oka || !okb {
		return
	}
	r.linkLocked(slot{a, ia}, slot{b, ib}) // mocknet fails only for unknown hosts, checked above
}

// linkAll links every adversary to every other host, and records the
// adversaries' slots; honest hosts link as they dial (ensureLink).
func (r *runner) linkAll(adv []host.Host) error {
	s := r.slots(adv)
	r.linkMu.Lock()
	defer r.linkMu.Unlock()
	for _, a := range s {
		r.slotOf[a.id] = a.idx
	}
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[i].idx < r.sc.Peers && s[j].idx < r.sc.Peers {
				continue
			}
			if err := r.linkLocked(s[i], s[j]); err != nil {
				return err
			}
		}
	}
	return nil
}
