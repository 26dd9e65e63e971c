package dht

import (
	kad "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// AminoPrefix is the protocol prefix of the public IPFS DHT (Amino): its
// protocol is /ipfs/kad/1.0.0. A Config with Amino set speaks it.
const AminoPrefix protocol.ID = kad.DefaultPrefix

// AminoProtocol is the protocol ID of the Amino DHT.
const AminoProtocol = AminoPrefix + "/kad/1.0.0"

// AminoBootstrapPeers returns the public bootstrap peers that
// go-libp2p-kad-dht ships (dht.DefaultBootstrapPeers): the list a node of
// the public network joins through when its Config names none. Nothing of
// this package dials them unless a Config carries them.
func AminoBootstrapPeers() []peer.AddrInfo {
	return kad.GetDefaultBootstrapPeerAddrInfos()
}
