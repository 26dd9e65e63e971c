package node

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/dht"
	"github.com/peer-project/peer/swarm"
)

// Version is the version of peer.
const Version = "0.1.0"

// Config configures a Node. Start from DefaultConfig; every zero value is
// documented. A Config may be copied to make many nodes (simulations do).
type Config struct {
	// Home holds the identity key and the database. Empty means ~/.peer.
	Home string
	// Listen addresses (multiaddrs). Empty means DefaultConfig's.
	// Ignored when Host is set.
	Listen []string
	// Network is NetworkLocal (the zero value: the LAN, tickets and named
	// peers; the node talks to no one it was not told of) or NetworkPublic
	// (the public IPFS network: the Amino DHT, AutoNAT v2, AutoRelay on
	// relays found among its peers, hole punching). See NetworkPublic.
	Network Network
	// Bootstrap peers of the DHT, as /ip4/…/tcp/…/p2p/ID multiaddrs. None
	// are built in, but for NetworkPublic: there an empty list means the
	// public bootstrap peers that go-libp2p-kad-dht ships, and a list
	// replaces them (a test's small internet, an operator's own peers).
	Bootstrap []string
	// DHTMode is DHTAuto (the zero value: a server unless AutoNAT finds
	// the node behind NAT), DHTServer (simulations and private swarms,
	// whose nodes can all dial each other) or DHTClient.
	DHTMode DHTMode
	// DHTPrefix is the DHT's protocol prefix; empty means dht.DefaultPrefix.
	DHTPrefix string
	// DHTNoAutoRefresh turns off the DHT's periodic routing-table refresh:
	// for large simulations, where every node refreshing costs O(N²)
	// lookups; a node on a real network keeps it.
	DHTNoAutoRefresh bool
	// NoDHT runs no DHT at all: fetches use tickets, hints and connected
	// peers only.
	NoDHT bool
	// NoMDNS keeps mDNS off even when the node listens on a LAN address.
	// mDNS is never started for a node whose addresses are all loopback,
	// nor for one with a SwarmKey or AllowPeers (it would announce the node
	// to everyone on the LAN).
	NoMDNS bool
	// Chunking is how shared files are cut; the zero value means fixed
	// 1 MiB chunks.
	Chunking Chunking
	// ConnLow and ConnHigh are the connection manager's watermarks; zero
	// means 100 and 400.
	ConnLow, ConnHigh int
	// SwarmKey, if set, is a libp2p private-network key (the text of a
	// swarm.key file): only nodes with the same key can connect. go-libp2p's
	// QUIC does not support it, so such a node listens on TCP only: its UDP
	// listen addresses are left out (an error if none is left).
	SwarmKey []byte
	// Host, if not nil, is used instead of building one (simulations pass
	// mocknet hosts). The node does not close a host it did not build.
	Host host.Host
	// Logger receives the node's logs; nil means slog.Default().
	Logger *slog.Logger
	// AllowPeers, if not empty, are the only peers this node connects to or
	// accepts connections from (a connection gater on the host it builds;
	// the exchange refuses anyone else on a host the caller brought too).
	// Empty means everyone.
	AllowPeers []peer.ID
	// NATPortMap asks the local router for a port mapping over UPnP or
	// NAT-PMP (multicast on the LAN). Off unless set, and never used by a
	// node whose listen addresses are all loopback.
	NATPortMap bool
	// Relays are circuit-relay v2 relays (multiaddrs with /p2p/ID) on which
	// AutoRelay reserves a slot while AutoNAT finds the node unreachable (or
	// has not decided yet): their circuit addresses then join the node's
	// addresses and tickets. None are built in; empty means no AutoRelay.
	Relays []string
	// RelayService runs a circuit-relay v2 relay for other peers within
	// RelayLimits, whatever AutoNAT says; it also answers AutoNAT, so the
	// relay's clients learn whether they need it.
	RelayService bool
	// RelayLimits bound what RelayService carries; the zero value is
	// go-libp2p's defaults (enough for a hole punch, not for a transfer).
	RelayLimits RelayLimits
	// AutoNATService answers other peers' AutoNAT dial-back requests (for a
	// node that is publicly reachable).
	AutoNATService bool
	// NoHolePunch turns hole punching (DCUtR) off: relayed connections are
	// never upgraded to direct ones.
	NoHolePunch bool
	// ForceReachability, unless ReachUnknown (the zero value), is taken as
	// the node's reachability instead of what AutoNAT finds.
	ForceReachability ReachState
	// AnnounceAddrs (multiaddrs, without /p2p) join the addresses the node
	// advertises and puts in tickets: a port forwarded on the router, or a
	// public address libp2p can't see. go-libp2p takes an address that
	// peers observe only once four of them agree, so a port-forwarded node
	// with few peers needs this to be dialled directly. AutoNAT checks
	// them like the rest.
	AnnounceAddrs []string
	// Seed seeds the node's random choices (which chunk next among equally
	// rare ones), so that a simulation replays; zero means a fresh seed.
	Seed uint64
	// NoSync skips fsync in the database: for tests and simulations only.
	NoSync bool
	// FindTimeout bounds how long a fetch waits without finding any peer
	// that has a chunk it lacks; zero means DefaultFindTimeout (60 s).
	FindTimeout time.Duration
	// StallTimeout bounds how long a fetch may go without verifying
	// anything: it looks for sources again meanwhile (the DHT, its hints,
	// the peers it knew), then fails with swarm.ErrStalled, naming the
	// peers it tried and what each did. Zero means DefaultStallTimeout
	// (2 minutes).
	StallTimeout time.Duration
	// RequestTimeout is the base time one chunk request may take; zero
	// means the scheduler's default.
	RequestTimeout time.Duration
	// UploadRate and DownloadRate cap the chunk bytes per second the node
	// sends and receives over all peers; PeerUploadRate and
	// PeerDownloadRate cap them for each peer. Zero means no cap.
	UploadRate, DownloadRate, PeerUploadRate, PeerDownloadRate int64
	// UploadSlots is how many peers the node sends blocks to at once; the
	// others are choked and wait their turn, and a peer yields its slot
	// after a few blocks while others wait. Peers that send the node
	// blocks get most turns, as in BitTorrent's tit-for-tat. Zero means
	// DefaultUploadSlots (4).
	UploadSlots int
	// Bitswap speaks IPFS's Bitswap beside peer's own protocol: Kubo
	// nodes and gateways can fetch the roots this node shares or has
	// fetched (their blocks only, within the same caps, upload limits,
	// bans and allowlist), and a fetch takes chunks from providers that
	// speak only Bitswap (a hint, or one the DHT names). Off by default:
	// a node on its own network has no IPFS peers to serve; always on for
	// NetworkPublic, where every IPFS node speaks it.
	Bitswap bool
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

// Defaults of the Config fields whose zero value means a default.
const (
	DefaultFindTimeout  = 60 * time.Second
	DefaultStallTimeout = swarm.DefaultStallTimeout
	DefaultUploadSlots  = swarm.DefaultUploadSlots
	DefaultConnLow      = 100
	DefaultConnHigh     = 400
)

// DefaultConfig returns the configuration of a node that listens on every
// interface on a random port, over TCP and QUIC, and joins no one: the zero
// Config's defaults, spelled out (Home, Logger and Now stay empty: New fills
// them).
func DefaultConfig() Config {
	return Config{
		Listen: []string{
			"/ip4/0.0.0.0/tcp/0",
			"/ip4/0.0.0.0/udp/0/quic-v1",
			"/ip6/::/tcp/0",
			"/ip6/::/udp/0/quic-v1",
		},
		Chunking:     chunker.DefaultParams(),
		DHTMode:      DHTAuto,
		ConnLow:      DefaultConnLow,
		ConnHigh:     DefaultConnHigh,
		FindTimeout:  DefaultFindTimeout,
		StallTimeout: DefaultStallTimeout,
		UploadSlots:  DefaultUploadSlots,
	}
}

// WithDefaults returns c as New runs it: every zero value that means a
// default replaced by it, and every field checked. Its error says what is
// wrong with each bad field. It is pure but for Home (the user's home
// folder when empty) and a log line when a swarm key leaves out UDP
// addresses.
func (c Config) WithDefaults() (Config, error) {
	c.Listen = slices.Clone(c.Listen)
	err := c.validate()
	return c, err
}

// validate fills zero values and reports what is wrong, without panicking.
// It is where every default and every check of a Config lives: the daemon
// and the CLI parse, and leave the rest to it.
func (c *Config) validate() error {
	var errs []error
	def := DefaultConfig()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Home == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			errs = append(errs, fmt.Errorf("no Home and no user home directory: %w", err))
		}
		c.Home = filepath.Join(home, ".peer")
	}
	if c.Host == nil && len(c.Listen) == 0 {
		c.Listen = def.Listen
	}
	if c.Host == nil {
		if err := c.checkListen(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Chunking == (Chunking{}) {
		c.Chunking = def.Chunking
	}
	if err := c.Chunking.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.DHTMode < DHTAuto || c.DHTMode > DHTClient {
		errs = append(errs, fmt.Errorf("unknown DHT mode %d", c.DHTMode))
	}
	if c.ConnLow == 0 {
		c.ConnLow = def.ConnLow
	}
	if c.ConnHigh == 0 {
		c.ConnHigh = def.ConnHigh
	}
	if c.ConnLow < 0 || c.ConnHigh < c.ConnLow {
		errs = append(errs, fmt.Errorf("connection watermarks %d/%d: want 0 ≤ low ≤ high", c.ConnLow, c.ConnHigh))
	}
	if _, err := c.bootstrapPeers(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateNetwork(); err != nil {
		errs = append(errs, err)
	}
	if c.FindTimeout < 0 || c.StallTimeout < 0 || c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("find timeout %s, stall timeout %s, request timeout %s: want positive durations (zero means the default)", c.FindTimeout, c.StallTimeout, c.RequestTimeout))
	}
	if c.FindTimeout == 0 {
		c.FindTimeout = def.FindTimeout
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = def.StallTimeout
	}
	if c.UploadRate < 0 || c.DownloadRate < 0 || c.PeerUploadRate < 0 || c.PeerDownloadRate < 0 {
		errs = append(errs, fmt.Errorf("rates %d, %d, %d, %d (upload, download, per peer up, per peer down): must not be negative (zero means no cap)",
			c.UploadRate, c.DownloadRate, c.PeerUploadRate, c.PeerDownloadRate))
	}
	if c.UploadSlots < 0 {
		errs = append(errs, fmt.Errorf("upload slots %d: want 1 or more (zero means the default, %d)", c.UploadSlots, DefaultUploadSlots))
	}
	if c.UploadSlots == 0 {
		c.UploadSlots = def.UploadSlots
	}
	if err := c.validateReach(); err != nil {
		errs = append(errs, err)
	}
	if len(c.SwarmKey) > 0 {
		if _, err := c.psk(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node: invalid config: %w", err)
	}
	return nil
}

// checkListen parses the listen addresses and, for a node with a swarm
// key, leaves out the UDP ones (QUIC, WebTransport, WebRTC): go-libp2p runs
// none of them on a private network.
func (c *Config) checkListen() error {
	var tcp, udp []string
	for _, s := range c.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("listen address %q: %w (want e.g. /ip4/0.0.0.0/tcp/4001)", s, err)
		}
		if _, err := a.ValueForProtocol(ma.P_UDP); err == nil {
			udp = append(udp, s)
		} else {
			tcp = append(tcp, s)
		}
	}
	if len(c.SwarmKey) == 0 || len(udp) == 0 {
		return nil
	}
	if len(tcp) == 0 {
		return fmt.Errorf("listen addresses %v: a node with a swarm key listens on TCP only (go-libp2p's QUIC cannot run on a private network); add a TCP address such as /ip4/0.0.0.0/tcp/0", udp)
	}
	c.Logger.Info("private network: listening on TCP only (go-libp2p's QUIC cannot run with a swarm key)", "left_out", udp)
	c.Listen = tcp
	return nil
}

// bitswap reports whether the node speaks Bitswap: when asked to, and
// always on the public network.
func (c *Config) bitswap() bool { return c.Bitswap || c.Network == NetworkPublic }

// bootstrapPeers parses Config.Bootstrap; for NetworkPublic an empty list
// is the public bootstrap peers (dht.AminoBootstrapPeers).
func (c *Config) bootstrapPeers() ([]peer.AddrInfo, error) {
	if c.Network == NetworkPublic && len(c.Bootstrap) == 0 {
		return dht.AminoBootstrapPeers(), nil
	}
	var out []peer.AddrInfo
	for _, s := range c.Bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap address %q: %w (want /ip4/ADDR/tcp/PORT/p2p/PEERID)", s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// psk decodes SwarmKey, the text of a swarm.key file, into the 32-byte key.
func (c *Config) psk() (pnet.PSK, error) {
	k, err := decodePSK(c.SwarmKey)
	if err != nil {
		return nil, fmt.Errorf("swarm key: %w", err)
	}
	return k, nil
}

// CheckSwarmKey reports what is wrong with text as the text of a libp2p
// swarm.key file, the check New makes of Config.SwarmKey; nil if nothing.
// The error says what a swarm.key holds but not where the text came from:
// the caller names its file.
func CheckSwarmKey(text []byte) error {
	_, err := decodePSK(text)
	return err
}

func decodePSK(text []byte) (pnet.PSK, error) {
	k, err := pnet.DecodeV1PSK(bytes.NewReader(text))
	if err == nil && len(k) != 32 {
		err = fmt.Errorf("%d-byte key, want 32", len(k))
	}
	if err != nil {
		return nil, fmt.Errorf("%w (want three lines: /key/swarm/psk/1.0.0/, /base16/ and 64 hex digits)", err)
	}
	return k, nil
}

// mdnsOn reports whether a node of this config listening on addrs runs mDNS:
// only on a LAN address, and never for a node of a private network (a swarm
// key) or with an allowlist, which mDNS would announce to everyone on the
// LAN.
func (c *Config) mdnsOn(addrs []ma.Multiaddr) bool {
	return !c.NoMDNS && len(c.SwarmKey) == 0 && len(c.AllowPeers) == 0 && dht.ShouldRunMDNS(addrs)
}

// Chunking is how shared files are cut into chunks: fixed size, or
// content-defined (FastCDC) around an average size. NewChunking makes one;
// the zero value means the default, fixed 1 MiB chunks.
type Chunking = chunker.Params

// Chunker names, as NewChunking takes them.
const (
	ChunkerFixed   = chunker.Fixed
	ChunkerFastCDC = chunker.FastCDC
)

// NewChunking returns the chunking alg names (ChunkerFixed, or "" for it,
// or ChunkerFastCDC) with chunks of size bytes (fixed) or of size bytes on
// average (FastCDC, a power of two); size 0 means 1 MiB. A size out of
// range is an error that gives the range.
func NewChunking(alg string, size int) (Chunking, error) {
	if size == 0 {
		size = chunker.DefaultSize
	}
	var p Chunking
	switch alg {
	case "", chunker.Fixed:
		p = chunker.FixedParams(size)
	case chunker.FastCDC:
		p = chunker.CDCParams(size)
	default:
		return p, fmt.Errorf("node: chunker %q: want %s or %s", alg, chunker.Fixed, chunker.FastCDC)
	}
	if err := p.Validate(); err != nil {
		return Chunking{}, fmt.Errorf("node: chunk size %d: %w", size, err)
	}
	return p, nil
}

// DHTMode says whether a node's DHT answers other peers' queries.
type DHTMode int

const (
	// DHTAuto (the zero value) follows the node's reachability as AutoNAT
	// sees it: a server when publicly reachable, else a client.
	DHTAuto DHTMode = iota
	// DHTServer answers queries and stores provider records.
	DHTServer
	// DHTClient only asks: for nodes that others can't dial.
	DHTClient
)

func (m DHTMode) String() string {
	switch m {
	case DHTAuto:
		return "auto"
	case DHTServer:
		return "server"
	case DHTClient:
		return "client"
	}
	return fmt.Sprintf("DHTMode(%d)", int(m))
}

// ParseDHTMode reads "auto" (or ""), "server" or "client", in any case.
func ParseDHTMode(s string) (DHTMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return DHTAuto, nil
	case "server":
		return DHTServer, nil
	case "client":
		return DHTClient, nil
	}
	return DHTAuto, fmt.Errorf("node: DHT mode %q: want auto, server or client", s)
}

// dhtMode is m in the dht package's terms.
func (m DHTMode) dhtMode() dht.Mode {
	switch m {
	case DHTServer:
		return dht.ModeServer
	case DHTClient:
		return dht.ModeClient
	}
	return dht.ModeAuto
}
