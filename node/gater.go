package node

import (
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// allowGater is the connection gater of a node with an allowlist: it dials
// only allowed peers and drops any other connection as soon as the security
// handshake names the peer, before a stream can open.
type allowGater struct {
	allow map[peer.ID]bool
}

func newAllowGater(ids []peer.ID) *allowGater {
	g := &allowGater{allow: make(map[peer.ID]bool, len(ids))}
	for _, id := range ids {
		g.allow[id] = true
	}
	return g
}

func (g *allowGater) allowed(p peer.ID) bool { return g.allow[p] }

func (g *allowGater) InterceptPeerDial(p peer.ID) bool { return g.allowed(p) }

func (g *allowGater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.allowed(p) }

// InterceptAccept lets the handshake run: the peer is not known before it.
func (g *allowGater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

func (g *allowGater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allowed(p)
}

func (g *allowGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}
