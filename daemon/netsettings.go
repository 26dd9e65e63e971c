package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/node"
)

// SwarmKeyFile is the name of the swarm key a home may hold (as Kubo's
// repository does): a node started on the home uses it unless another key
// file is named.
const SwarmKeyFile = "swarm.key"

// ParseRate reads a rate in bytes per second: a size as ParseSize reads it
// ("10MB", "8MiB", "512KiB"), optionally followed by "/s". "0" and ""
// mean no cap (0).
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "/S"))
	if t == "" {
		return 0, nil
	}
	n, err := parseBytes(t)
	if err != nil {
		return 0, fmt.Errorf("rate %q: want bytes per second such as 10MB, 8MiB or 512KiB/s (0 means no cap)", s)
	}
	return n, nil
}

// SwarmKeyPath returns the swarm key file a node on home uses: SwarmKey
// (relative to home unless absolute), or the home's swarm.key if there is
// one, or "" for none. It does not read the file.
func (s Settings) SwarmKeyPath(home string) (string, error) {
	p, err := s.swarmKeyPath(home)
	if err != nil {
		return "", fmt.Errorf("daemon: %w", err)
	}
	return p, nil
}

func (s Settings) swarmKeyPath(home string) (string, error) {
	if s.SwarmKey != "" {
		p := s.SwarmKey
		if !filepath.IsAbs(p) {
			p = filepath.Join(home, p)
		}
		return p, nil
	}
	p := filepath.Join(home, SwarmKeyFile)
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("swarm key %s: %w", p, err)
	}
	return p, nil
}

// readSwarmKey reads and checks a swarm key file: it must be readable by
// its owner only, and hold a libp2p swarm.key (/key/swarm/psk/1.0.0/,
// /base16/, 64 hex digits).
func readSwarmKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("swarm key %s does not exist (check --swarm-key, PEER_SWARM_KEY or \"swarm_key\" in %s)", path, ConfigFile)
		}
		return nil, fmt.Errorf("swarm key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("swarm key %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("swarm key %s is readable by others (mode %v): anyone who reads it can join the private network; run chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("swarm key: %w", err)
	}
	if len(b) > 4096 {
		return nil, fmt.Errorf("swarm key %s: %d bytes is not a swarm.key file", path, len(b))
	}
	if err := node.CheckSwarmKey(b); err != nil {
		return nil, fmt.Errorf("swarm key %s: %w", path, err)
	}
	return b, nil
}

// parseAllowPeer reads a peer ID, or a multiaddr ending in /p2p/ID.
func parseAllowPeer(s string) (peer.ID, error) {
	if strings.HasPrefix(s, "/") {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return "", fmt.Errorf("allowed peer %q: %v (want a peer ID such as 12D3KooW…, or a multiaddr ending in /p2p/ID)", s, err)
		}
		return ai.ID, nil
	}
	id, err := peer.Decode(s)
	if err != nil {
		return "", fmt.Errorf("allowed peer %q: %v (want a peer ID such as 12D3KooW…; `peer id` prints a node's)", s, err)
	}
	return id, nil
}

// netConfig maps the network, rate, access and reachability settings onto
// cfg.
func (s Settings) netConfig(home string, cfg *node.Config) error {
	var errs []error
	nw, err := node.ParseNetwork(s.Network)
	if err != nil {
		errs = append(errs, fmt.Errorf("network %q: want local (the LAN, tickets and named peers) or public (the public IPFS network)", s.Network))
	}
	cfg.Network = nw
	for _, r := range []struct {
		name string
		val  string
		dst  *int64
	}{
		{"upload rate", s.UploadRate, &cfg.UploadRate},
		{"download rate", s.DownloadRate, &cfg.DownloadRate},
		{"peer upload rate", s.PeerUploadRate, &cfg.PeerUploadRate},
		{"peer download rate", s.PeerDownloadRate, &cfg.PeerDownloadRate},
	} {
		n, err := ParseRate(r.val)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
		}
		*r.dst = n
	}
	cfg.UploadSlots = s.UploadSlots
	cfg.Bitswap = s.Bitswap
	for _, a := range s.AllowPeers {
		id, err := parseAllowPeer(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.AllowPeers = append(cfg.AllowPeers, id)
	}
	if p, err := s.swarmKeyPath(home); err != nil {
		errs = append(errs, err)
	} else if p != "" {
		k, err := readSwarmKey(p)
		if err != nil {
			errs = append(errs, err)
		}
		// The node listens on TCP only with it (node.Config.SwarmKey).
		cfg.SwarmKey = k
		if cfg.Logger != nil && err == nil {
			cfg.Logger.Info("private network: only nodes with the same swarm key can connect", "swarm_key", p)
		}
	}
	cfg.NATPortMap = s.NATPortMap
	cfg.Relays = s.Relays
	cfg.RelayService = s.RelayService
	l, err := s.RelayLimits.limits()
	if err != nil {
		errs = append(errs, err)
	}
	cfg.RelayLimits = l
	cfg.AutoNATService = s.AutoNATService
	cfg.NoHolePunch = s.NoHolePunch
	r, err := node.ParseReachState(s.Reachability)
	if err != nil {
		errs = append(errs, fmt.Errorf("reachability %q: want auto, public or private", s.Reachability))
	}
	cfg.ForceReachability = r
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	return nil
}

// limits maps the relay limits onto node.RelayLimits, which checks them.
func (r RelayLimitSettings) limits() (node.RelayLimits, error) {
	l := node.RelayLimits{Unlimited: r.Unlimited, Reservations: r.Reservations, Circuits: r.Circuits}
	var errs []error
	if r.Data != "" {
		n, err := parseBytes(r.Data)
		if err != nil {
			errs = append(errs, fmt.Errorf("relay data limit %q: want a size such as 128KiB or 1GiB", r.Data))
		}
		l.Data = n
	}
	if r.Duration != "" {
		d, err := time.ParseDuration(r.Duration)
		if err != nil {
			errs = append(errs, fmt.Errorf("relay duration limit %q: want a duration such as 2m or 1h", r.Duration))
		}
		l.Duration = d
	}
	return l, errors.Join(errs...)
}
