package webui

import (
	"context"
	"errors"
	"time"
)

// Errors a Backend wraps so that the UI answers with the right status:
// ErrBadRequest gives 400, ErrNotFound 404, anything else 500. The UI shows
// the error's message to the user.
var (
	ErrBadRequest = errors.New("webui: bad request")
	ErrNotFound   = errors.New("webui: not found")
)

// Backend is what the UI shows and changes: the daemon implements it over
// its node. Its methods must be safe for concurrent use; those that take a
// context block at most until it is done, the others do not block.
type Backend interface {
	// Overview returns the node's identity, reachability, caps and rates.
	Overview(ctx context.Context) (Overview, error)
	// Peers lists the connected peers.
	Peers(ctx context.Context) ([]Peer, error)
	// Shares lists what the node shares.
	Shares(ctx context.Context) ([]Share, error)
	// Share indexes the file or folder at path (absolute) and shares it.
	Share(ctx context.Context, path string) (Share, error)
	// Unshare stops sharing root.
	Unshare(ctx context.Context, root string) error
	// Fetch starts fetching target (a root, ROOT/path or a ticket) into
	// the folder dir and returns once it is registered (Transfers lists
	// it): it does not wait for the fetch.
	Fetch(ctx context.Context, target, dir string) error
	// Transfers lists the fetches in progress and those that ended
	// lately, oldest first.
	Transfers() []Transfer
	// Bandwidth returns the bandwidth samples of the last minutes, oldest
	// first.
	Bandwidth() []Sample
	// SetLimits changes the node's caps at run time.
	SetLimits(ctx context.Context, l Limits) error
}

// Share is a share as the UI shows it.
type Share struct {
	Root   string
	Name   string
	Path   string
	Ticket string
	// Link is the share's URL on the daemon's gateway, "" when the
	// gateway is off.
	Link  string
	Dir   bool
	Stale bool // its files changed since it was shared
	Size  int64
	Files int64
}

// Transfer states.
const (
	Running = "running"
	Done    = "done"
	Failed  = "failed"
)

// Transfer is a fetch, running or ended.
type Transfer struct {
	ID      int64 // 0 for a fetch the UI did not start (a CLI get)
	Target  string
	Dest    string
	Started time.Time
	Bytes   int64
	Total   int64
	Peers   int
	Rate    float64 // bytes per second
	State   string  // Running, Done or Failed
	Err     string  // when Failed
}

// Percent is how much of the transfer is verified, 0 to 100.
func (t Transfer) Percent() int {
	switch {
	case t.State == Done:
		return 100
	case t.Total <= 0:
		return 0
	}
	return int(min(100, t.Bytes*100/t.Total))
}

// Peer is a connected peer.
type Peer struct {
	ID      string
	Addrs   []string
	Direct  bool
	Relays  []string
	Limited bool
	Banned  bool
	Path    string // "direct ADDR" or "relayed via RELAY …"
}

// Sample is the bandwidth at one moment, in bytes per second.
type Sample struct {
	At       time.Time
	Up, Down float64
}

// Limits are the node's caps in bytes per second; 0 means none.
type Limits struct {
	UploadRate, DownloadRate, PeerUploadRate, PeerDownloadRate int64
}

// Overview is the node at a glance.
type Overview struct {
	ID        string
	Addrs     []string
	Version   string
	Peers     int
	Shares    int
	BytesUp   int64
	BytesDown int64
	RateUp    float64
	RateDown  float64
	Limits    Limits
	Reach     Reach
	// Gateway is the gateway's base URL (http://HOST:PORT/ipfs/), ""
	// when it is off.
	Gateway string
	// DownloadDir is the folder the fetch form proposes.
	DownloadDir string
}

// Reach is how peers can reach the node.
type Reach struct {
	State        string // "public", "private" or "unknown"
	Forced       bool
	PublicAddrs  []string
	Relays       []string
	Reservations []Reservation
	RelayService string // its limits, "" when the node runs none
	NATPortMap   bool
	HolePunching bool
	Direct       int // connected peers, by how they connect
	Relayed      int
}

// Reservation is a slot a relay holds for the node.
type Reservation struct {
	Relay string
	Addrs []string
}
