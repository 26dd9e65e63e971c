package node

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peer-project/peer/dht"
)

// Network is which network a node joins.
type Network int

const (
	// NetworkLocal (the zero value) is peer's own: a DHT under peer's
	// prefix joined only through the bootstrap peers the Config names (none
	// by default), mDNS on a LAN address, tickets and named peers. A node
	// run by hand talks to no one on the internet unasked.
	NetworkLocal Network = iota
	// NetworkPublic is the public IPFS network. The node joins the Amino
	// DHT (/ipfs/kad/1.0.0) through Config.Bootstrap, or the public
	// bootstrap peers that go-libp2p-kad-dht ships when it is empty; it
	// announces its roots there (roots only, never each block) and finds
	// providers there. It runs AutoNAT v2 and answers AutoNAT for others,
	// holds reservations on relays found among its peers while it is not
	// publicly reachable (AutoRelay: its tickets then carry the relay
	// addresses), and upgrades relayed connections by hole punching
	// (DCUtR). It relays for others only with RelayService. A node with a
	// SwarmKey can't be public, nor one with NoDHT.
	NetworkPublic
)

// String returns "local" or "public".
func (n Network) String() string {
	switch n {
	case NetworkLocal:
		return "local"
	case NetworkPublic:
		return "public"
	}
	return fmt.Sprintf("Network(%d)", int(n))
}

// ParseNetwork reads "local" (or "") or "public", in any case.
func ParseNetwork(s string) (Network, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "local":
		return NetworkLocal, nil
	case "public":
		return NetworkPublic, nil
	}
	return NetworkLocal, fmt.Errorf("node: network %q: want local (the default: the LAN, tickets and named peers) or public (the public IPFS network)", s)
}

// MarshalText encodes n as its String, so that JSON shows "public".
func (n Network) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// UnmarshalText decodes what ParseNetwork accepts.
func (n *Network) UnmarshalText(b []byte) error {
	v, err := ParseNetwork(string(b))
	if err != nil {
		return err
	}
	*n = v
	return nil
}

// validateNetwork checks that the rest of the Config fits its Network.
func (c *Config) validateNetwork() error {
	switch c.Network {
	case NetworkLocal:
		return nil
	case NetworkPublic:
	default:
		return fmt.Errorf("unknown network %d", c.Network)
	}
	var errs []error
	if len(c.SwarmKey) > 0 {
		errs = append(errs, errors.New("a private network (swarm key) can't join the public network: drop the swarm key (--swarm-key, PEER_SWARM_KEY, HOME/swarm.key) or --network public"))
	}
	if c.NoDHT {
		errs = append(errs, errors.New("the public network is found through its DHT: drop --dht off or --network public"))
	}
	if c.DHTPrefix != "" && c.DHTPrefix != string(dht.AminoPrefix) {
		errs = append(errs, fmt.Errorf("DHT prefix %q: the public network's DHT is %s; leave the prefix empty", c.DHTPrefix, dht.AminoPrefix))
	}
	return errors.Join(errs...)
}

// BootstrapPeers returns the peers a node of c joins the DHT through:
// Bootstrap parsed, or for NetworkPublic with an empty Bootstrap the public
// bootstrap peers that go-libp2p-kad-dht ships. It does not dial them.
func (c Config) BootstrapPeers() ([]peer.AddrInfo, error) {
	boot, err := c.bootstrapPeers()
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return boot, nil
}

// DHTProtocol returns the protocol ID of the node's DHT, e.g.
// /ipfs/kad/1.0.0 on the public network; "" without a DHT.
func (n *Node) DHTProtocol() protocol.ID {
	if n.dht == nil {
		return ""
	}
	return n.dht.Protocol()
}

// dhtProtocol returns the protocol ID of the DHT dhtConfig makes, as its
// Protocol method will say once it runs (/peer/kad/1.0.0 by default,
// /ipfs/kad/1.0.0 on the public network, PREFIX/kad/1.0.0 with DHTPrefix);
// "" with NoDHT.
func (c *Config) dhtProtocol() protocol.ID {
	if c.NoDHT {
		return ""
	}
	return c.dhtConfig(nil).Protocol()
}

// dhtConfig returns the DHT's Config for the node, logging to log.
func (c *Config) dhtConfig(log *slog.Logger) dht.Config {
	boot, _ := c.bootstrapPeers() // validate checked them
	return dht.Config{
		Mode: c.DHTMode.dhtMode(), Prefix: protocol.ID(c.DHTPrefix), Bootstrap: boot,
		Amino: c.Network == NetworkPublic, NoAutoRefresh: c.DHTNoAutoRefresh, Logger: log,
	}
}
