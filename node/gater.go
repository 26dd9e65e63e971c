package node

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gater is the connection gater of the host a node builds. It refuses the
// peers that are not on the allowlist (when there is one) and the peers the
// exchange has banned: it does not dial them, and drops a connection from
// one as soon as the security handshake names the peer, before a stream can
// open. Safe for concurrent use.
type gater struct {
	allow  map[peer.ID]bool                   // nil: every peer
	banned atomic.Pointer[func(peer.ID) bool] // nil until the swarm exists
}

func newGater(allow []peer.ID) *gater {
	g := &gater{}
	if len(allow) > 0 {
		g.allow = make(map[peer.ID]bool, len(allow))
		for _, id := range allow {
			g.allow[id] = true
		}
	}
	return g
}

// setBanned has the gater refuse the peers for which banned is true.
func (g *gater) setBanned(banned func(peer.ID) bool) { g.banned.Store(&banned) }

// allowed reports whether p is on the allowlist, if there is one.
func (g *gater) allowed(p peer.ID) bool { return g.allow == nil || g.allow[p] }

// admits reports whether a connection with p may be made or kept.
func (g *gater) admits(p peer.ID) bool {
	if !g.allowed(p) {
		return false
	}
	b := g.banned.Load()
	return b == nil || !(*b)(p)
}

func (g *gater) InterceptPeerDial(p peer.ID) bool { return g.admits(p) }

func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.admits(p) }

// InterceptAccept lets the handshake run: the peer is not known before it.
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.admits(p)
}

func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}
