package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/peer-project/peer/node"
)

// Names of the files the daemon keeps in the home directory, beside the
// node's identity key and database.
const (
	ConfigFile = "config.json" // Settings, made with the defaults on first use
	AddrFile   = "api.addr"    // host:port of the running daemon's API
	TokenFile  = "api.token"   // the API token, mode 0600, made anew at each start
)

// HomeDir returns dir, or ~/.peer when dir is empty, as an absolute path.
func HomeDir(dir string) (string, error) {
	if dir == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("daemon: no --home and no user home directory: %w", err)
		}
		dir = filepath.Join(h, ".peer")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("daemon: home %s: %w", dir, err)
	}
	return abs, nil
}

// Settings are a node's settings as the config file, the PEER_* environment
// variables and the command-line flags give them (in rising precedence;
// cmd/peer applies the last two). Empty fields mean the default.
type Settings struct {
	// Listen addresses (multiaddrs); empty means every interface, TCP and
	// QUIC, on a random port.
	Listen []string `json:"listen"`
	// Network is "local" (the default: the LAN, tickets and named peers)
	// or "public" (the public IPFS network: the Amino DHT, relays and hole
	// punching; see node.NetworkPublic).
	Network string `json:"network"`
	// Bootstrap peers of the DHT (/ip4/…/tcp/…/p2p/ID); none are built in.
	// With Network "public", empty means the public bootstrap peers that
	// go-libp2p-kad-dht ships, and a list replaces them.
	Bootstrap []string `json:"bootstrap"`
	// API is the daemon's HTTP API address, on loopback only; empty means
	// 127.0.0.1 on a random port (written to api.addr).
	API string `json:"api"`
	// Metrics, if set, is where the daemon serves Prometheus metrics.
	Metrics string `json:"metrics"`
	// Gateway is where the daemon's HTTP gateway listens (GET /ipfs/ROOT);
	// empty means DefaultGateway (127.0.0.1:8089), "off" none. On a
	// non-loopback address it serves only this node's shares, unless
	// GatewayFetch.
	Gateway      string `json:"gateway"`
	GatewayFetch bool   `json:"gateway_fetch"`
	// DHT is "auto" (default: a server unless AutoNAT finds the node
	// behind NAT), "server", "client" or "off".
	DHT string `json:"dht"`
	// NoMDNS keeps mDNS off even on a LAN address (it is always off with
	// a swarm key or an allowlist).
	NoMDNS bool `json:"no_mdns"`
	// FindTimeout is how long a fetch looks for a peer that has the root,
	// e.g. "60s" (the default).
	FindTimeout string `json:"find_timeout"`
	// Chunker ("fixed" or "fastcdc") and ChunkSize ("1MiB") are how shared
	// files are cut.
	Chunker   string `json:"chunker"`
	ChunkSize string `json:"chunk_size"`
	// Publish and Follow are names the daemon publishes (each path at
	// start and again whenever it changes) and follows (each folder kept
	// equal to the name's latest version, receive-only); see names.go.
	Publish []PublishSetting `json:"publish,omitempty"`
	Follow  []FollowSetting  `json:"follow,omitempty"`

	// UploadRate and DownloadRate cap the chunk bytes per second sent and
	// received over all peers, PeerUploadRate and PeerDownloadRate for each
	// peer: a size per second such as "10MB" (10^6 bytes), "8MiB" or
	// "512KiB/s"; "0" or empty means no cap (see ParseRate).
	UploadRate       string `json:"upload_rate"`
	DownloadRate     string `json:"download_rate"`
	PeerUploadRate   string `json:"peer_upload_rate"`
	PeerDownloadRate string `json:"peer_download_rate"`
	// UploadSlots is how many peers are sent blocks at once (the others
	// wait their turn); 0 means node.DefaultUploadSlots (4).
	UploadSlots int `json:"upload_slots"`
	// Bitswap serves Kubo nodes and gateways, and fetches from them, over
	// IPFS's Bitswap beside peer's protocol (node.Config.Bitswap).
	Bitswap bool `json:"bitswap"`
	// AllowPeers, if not empty, are the only peers the node talks to: peer
	// IDs (or multiaddrs ending in /p2p/ID).
	AllowPeers []string `json:"allow_peers"`
	// SwarmKey is the path of a libp2p swarm.key file (mode 0600; a
	// relative path is relative to the home). Empty means the home's
	// swarm.key when there is one, else a public network. A node with a key
	// talks only to nodes with the same key, over TCP only.
	SwarmKey string `json:"swarm_key"`
	// NATPortMap asks the router for a port mapping (UPnP, NAT-PMP).
	NATPortMap bool `json:"nat_portmap"`
	// Relays are circuit-relay v2 relays (multiaddrs with /p2p/ID) to hold a
	// reservation on while the node is not publicly reachable.
	Relays []string `json:"relays"`
	// RelayService runs a relay for other peers within RelayLimits.
	RelayService bool `json:"relay_service"`
	// RelayLimits bound the relay service; zero fields mean go-libp2p's
	// defaults (128 KiB and 2 minutes per relayed connection).
	RelayLimits RelayLimitSettings `json:"relay_limits"`
	// AutoNATService answers other peers' AutoNAT dial-back requests.
	AutoNATService bool `json:"autonat_service"`
	// NoHolePunch turns hole punching off.
	NoHolePunch bool `json:"no_hole_punch"`
	// Reachability is "auto" (or empty: AutoNAT decides), "public" or
	// "private".
	Reachability string `json:"reachability"`
}

// RelayLimitSettings are node.RelayLimits as the config file gives them.
type RelayLimitSettings struct {
	// Unlimited lets relayed connections carry anything (a transfer can
	// then go through the relay); Data and Duration are ignored.
	Unlimited bool `json:"unlimited"`
	// Data is how much one relayed connection carries each way, e.g.
	// "128KiB"; empty means 128 KiB.
	Data string `json:"data"`
	// Duration is how long one relayed connection may last, e.g. "2m";
	// empty means 2 minutes.
	Duration string `json:"duration"`
	// Reservations is how many peers may hold a slot at once (0: 128);
	// Circuits how many relayed connections one peer may have (0: 16).
	Reservations int `json:"reservations"`
	Circuits     int `json:"circuits"`
}

// DefaultSettings are what a new home's config file holds: node's
// defaults, written out.
func DefaultSettings() Settings {
	def := node.DefaultConfig()
	return Settings{
		Listen:      def.Listen,
		Network:     def.Network.String(),
		Bootstrap:   []string{},
		API:         "127.0.0.1:0",
		Gateway:     DefaultGateway,
		DHT:         def.DHTMode.String(),
		FindTimeout: fmt.Sprintf("%gs", def.FindTimeout.Seconds()),
		Chunker:     def.Chunking.Algorithm,
		ChunkSize:   sizeText(def.Chunking.Size),
		UploadRate:  "0", DownloadRate: "0", PeerUploadRate: "0", PeerDownloadRate: "0",
		AllowPeers:   []string{},
		Relays:       []string{},
		Reachability: "auto",
	}
}

// LoadSettings reads home's config file. If there is none it returns
// DefaultSettings, and with create it first makes home (mode 0700) and
// writes them there.
func LoadSettings(home string, create bool) (Settings, error) {
	path := filepath.Join(home, ConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return DefaultSettings(), nil
		}
		if err := os.MkdirAll(home, 0o700); err != nil {
			return Settings{}, fmt.Errorf("daemon: home %s: %w", home, err)
		}
		s := DefaultSettings()
		b, _ = json.MarshalIndent(s, "", "  ")
		if err := writeFileAtomic(path, append(b, '\n'), 0o600); err != nil {
			return Settings{}, fmt.Errorf("daemon: writing %s: %w", path, err)
		}
		return s, nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("daemon: reading %s: %w", path, err)
	}
	var s Settings
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Settings{}, fmt.Errorf("daemon: config file %s: %w (fix it, or delete it to get the defaults)", path, err)
	}
	return s, nil
}

// NodeConfig maps the settings onto a node.Config for home. It parses;
// the node fills the defaults of what is left empty and checks the rest
// (node.Config.WithDefaults).
func (s Settings) NodeConfig(home string, log *slog.Logger) (node.Config, error) {
	cfg := node.Config{Home: home, Logger: log, Listen: s.Listen, Bootstrap: s.Bootstrap, NoMDNS: s.NoMDNS}
	switch strings.ToLower(strings.TrimSpace(s.DHT)) {
	case "off", "none":
		cfg.NoDHT = true
	default:
		m, err := node.ParseDHTMode(s.DHT)
		if err != nil {
			return cfg, fmt.Errorf("daemon: dht %q: want server, client, auto or off", s.DHT)
		}
		cfg.DHTMode = m
	}
	if s.FindTimeout != "" {
		d, err := time.ParseDuration(s.FindTimeout)
		if err != nil {
			return cfg, fmt.Errorf("daemon: find timeout %q: want a duration such as 30s or 2m", s.FindTimeout)
		}
		cfg.FindTimeout = d
	}
	p, err := ParseChunking(s.Chunker, s.ChunkSize)
	if err != nil {
		return cfg, err
	}
	cfg.Chunking = p
	if err := s.netConfig(home, &cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// ParseChunking reads a chunker name ("fixed" or "fastcdc"; empty means
// fixed) and a size ("1MiB", "256KiB", "262144"; empty means 1 MiB), as
// node.NewChunking takes them.
func ParseChunking(alg, size string) (node.Chunking, error) {
	n := 0
	if size != "" {
		var err error
		if n, err = ParseSize(size); err != nil {
			return node.Chunking{}, fmt.Errorf("chunk size: %w", err)
		}
	}
	return node.NewChunking(alg, n)
}

// ParseSize reads a positive size: "1048576", "256KiB", "1MiB", "4M",
// "2GiB", "1.5MB". K, M, G, KiB, MiB and GiB are powers of 1024; KB, MB
// and GB powers of 1000; a trailing B is allowed ("512B"); case does not
// matter.
func ParseSize(s string) (int, error) {
	n, err := parseBytes(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size (try 1MiB or 262144)", s)
	}
	return int(n), nil
}

// sizeText writes n bytes as ParseSize reads them: "1MiB", "256KiB", "1000".
func sizeText(n int) string {
	switch {
	case n > 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n > 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.Itoa(n)
}

// parseBytes reads a size of zero or more bytes (see ParseSize).
func parseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
	} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n < 0 || n > (1<<62)/mult {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || !(f >= 0) || f*float64(mult) > 1<<62 || strings.ContainsAny(t, "einfaxp_") {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return int64(f * float64(mult)), nil
}

// newToken makes a new API token and writes it to home's api.token (mode
// 0600), replacing the one an earlier daemon made.
func newToken(home string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw[:])
	if err := writeFileAtomic(filepath.Join(home, TokenFile), []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("daemon: writing API token: %w", err)
	}
	return tok, nil
}

// writeFileAtomic writes data to a temporary file beside path with mode
// perm, flushes it to disk, renames it over path and flushes the folder, so
// that after a crash path holds either the old content or the new, whole.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomicOps(path, data, perm, osOps())
}

// fileOps are the calls writeFileAtomic makes that a test cannot see from
// the outside: it records them to check their order.
type fileOps struct {
	syncFile func(f *os.File) error
	rename   func(oldpath, newpath string) error
	syncDir  func(dir string) error
}

func osOps() fileOps {
	return fileOps{syncFile: (*os.File).Sync, rename: os.Rename, syncDir: syncDir}
}

func writeFileAtomicOps(path string, data []byte, perm os.FileMode, ops fileOps) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := ops.syncFile(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := ops.rename(tmp.Name(), path); err != nil {
		return err
	}
	return ops.syncDir(filepath.Dir(path))
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
