package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/swarm/bitswap"
)

// KeyFile is the name of the node's identity key in its home directory
// (mode 0600).
const KeyFile = "identity.key"

const keyFile = KeyFile

// loadIdentity reads the node's private key from home, or makes an Ed25519
// key and writes it there (mode 0600) on first use.
func loadIdentity(home string) (crypto.PrivKey, error) {
	return loadIdentityWith(home, syncDir)
}

// syncDir flushes a folder's entries (a rename in it) to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadIdentityWith is loadIdentity with the call that flushes the home
// after the key is renamed into it (tests record it).
func loadIdentityWith(home string, syncDir func(string) error) (crypto.PrivKey, error) {
	path := filepath.Join(home, keyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("node: identity key %s is readable by others (mode %v): run chmod 600 %s", path, fi.Mode().Perm(), path)
		}
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("node: identity key %s is damaged: %w (move it away to make a new identity)", path, err)
		}
		return k, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("node: reading identity key: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node: making identity key: %w", err)
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	// Write to a temporary file and rename, so a crash never leaves half a key.
	tmp, err := os.CreateTemp(home, keyFile+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("node: writing identity key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("node: writing identity key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("node: writing identity key: %w", err)
	}
	if err := syncDir(home); err != nil {
		return nil, fmt.Errorf("node: writing identity key: flushing %s: %w", home, err)
	}
	return k, nil
}

// buildHost makes the libp2p host a node runs on when the caller brought
// none: TCP and QUIC, TLS (first: with AES instructions it is the faster of
// the two here) and Noise, yamux, a connection manager, a resource
// manager whose limits scale with the machine, and the reachability stack
// of reachOptions (relays, hole punching, AutoNAT, port mapping).
func buildHost(cfg *Config, key crypto.PrivKey, g *gater, deps hostDeps) (host.Host, error) {
	opts, release, err := hostOptions(cfg, key, g, deps)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		release()
		return nil, fmt.Errorf("node: starting libp2p on %v: %w", cfg.Listen, err)
	}
	return h, nil
}

// resourceLimits returns the resource manager's limits, scaled to the
// machine: go-libp2p's defaults and service limits, and bounds of their own
// for the exchange, the DHT protocol dhtProto (none if ""), the relay
// protocols and Bitswap.
func resourceLimits(dhtProto protocol.ID) rcmgr.ConcreteLimitConfig {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	// The exchange protocol keeps one stream per peer and root, and a
	// chunk in flight is at most 4 MiB; each version has its own bound.
	// The service that both versions' serving streams join holds a peer
	// to the streams of one version, so that a peer that opens sessions
	// on 2.0 and on 2.1 gets no more; its memory per peer, and all its
	// limits, stay the manager's defaults.
	bound(&limits, 1024, 256<<20, 64, 64<<20, swarm.Protocols()...)
	perPeer, more := limits.ServicePeerBaseLimit, limits.ServicePeerLimitIncrease
	perPeer.StreamsInbound, perPeer.StreamsOutbound, perPeer.Streams = 64, 64, 128
	more.StreamsInbound, more.StreamsOutbound, more.Streams = 0, 0, 0
	limits.AddServicePeerLimit(swarm.ServiceName, perPeer, more)
	// The DHT's and the relay's protocols get bounds of their own, so a
	// public network's queries and relayed connections can't take what the
	// exchange needs. A kad-dht message is at most 4 MiB and a query is one
	// stream; a relayed connection is one hop and one stop stream, each
	// with the relay's 16 KiB copy buffer both ways (RelayLimits).
	if dhtProto != "" {
		bound(&limits, 256, 64<<20, 16, 16<<20, dhtProto)
	}
	// Per peer: room for the relay's own cap (RelayLimits.Circuits, 16 by
	// default) up to 64 circuits, 32 KiB of buffers each.
	bound(&limits, 256, 16<<20, 64, 4<<20, relayproto.ProtoIDv2Hop, relayproto.ProtoIDv2Stop)
	// Bitswap (Config.Bitswap): boxo keeps one stream a peer for what it
	// sends and reads each peer's on one loop; a message is at most
	// network.MessageSizeMax (4 MiB). Bounds of its own, so that IPFS
	// peers asking for blocks can't take the streams and memory the
	// exchange and the DHT need.
	bound(&limits, 256, 64<<20, 8, 16<<20, bitswap.Protocols...)
	return limits.AutoScale()
}

// bound gives each of protos streams streams each way (twice that in all)
// and mem bytes, a quarter of each more per GiB of the machine's memory
// (AutoScale), and to each peer on it peerStreams streams each way and
// peerMem bytes, whatever the machine.
func bound(limits *rcmgr.ScalingLimitConfig, streams int, mem int64, peerStreams int, peerMem int64, protos ...protocol.ID) {
	for _, proto := range protos {
		limits.AddProtocolLimit(proto,
			rcmgr.BaseLimit{StreamsInbound: streams, StreamsOutbound: streams, Streams: 2 * streams, Memory: mem},
			rcmgr.BaseLimitIncrease{StreamsInbound: streams / 4, StreamsOutbound: streams / 4, Streams: streams / 2, Memory: mem / 4})
		limits.AddProtocolPeerLimit(proto,
			rcmgr.BaseLimit{StreamsInbound: peerStreams, StreamsOutbound: peerStreams, Streams: 2 * peerStreams, Memory: peerMem},
			rcmgr.BaseLimitIncrease{})
	}
}

// hostDeps are what a host the node builds reports to and asks; each may
// be nil.
type hostDeps struct {
	// bandwidth counts the bytes of every stream by protocol.
	bandwidth *protocolCounter
	// relays finds AutoRelay's candidates on a public node.
	relays *relayCandidates
}

// hostOptions returns the libp2p options of buildHost, with g as the
// connection gater (nil: none), and release, which closes the connection
// and resource managers they hold: call it when libp2p.New fails (a host
// closes them itself).
func hostOptions(cfg *Config, key crypto.PrivKey, g *gater, deps hostDeps) (_ []libp2p.Option, release func(), _ error) {
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh)
	if err != nil {
		return nil, nil, fmt.Errorf("node: connection manager: %w", err)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(resourceLimits(cfg.dhtProtocol())))
	if err != nil {
		cm.Close()
		return nil, nil, fmt.Errorf("node: resource manager: %w", err)
	}
	listen := make([]ma.Multiaddr, 0, len(cfg.Listen))
	for _, s := range cfg.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			cm.Close()
			rm.Close()
			return nil, nil, fmt.Errorf("node: listen address %q: %w", s, err)
		}
		listen = append(listen, a) // a keyed node's are TCP only: see Config.checkListen
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrs(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(tls.ID, tls.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.UserAgent("peer/" + Version),
	}
	if deps.bandwidth != nil {
		opts = append(opts, libp2p.BandwidthReporter(deps.bandwidth))
	}
	reach, err := reachOptions(cfg, listen, deps.relays)
	if err != nil {
		cm.Close()
		rm.Close()
		return nil, nil, fmt.Errorf("node: %w", err)
	}
	opts = append(opts, reach...)
	if g != nil {
		opts = append(opts, libp2p.ConnectionGater(g))
	}
	if len(cfg.SwarmKey) > 0 {
		// go-libp2p's QUIC refuses private networks: a keyed node runs
		// over TCP only.
		psk, err := cfg.psk()
		if err != nil {
			cm.Close()
			rm.Close()
			return nil, nil, fmt.Errorf("node: %w", err)
		}
		opts = append(opts, libp2p.PrivateNetwork(psk))
	} else {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	return opts, func() { cm.Close(); rm.Close() }, nil
}
