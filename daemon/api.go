package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// API is what the CLI asks of a node: a running daemon's (Client) or one in
// this process (Local). Both are safe for concurrent use; every method
// blocks until its answer is known or ctx is done.
type API interface {
	// ID returns the node's peer ID and listen addresses.
	ID(ctx context.Context) (IDInfo, error)
	// Status returns the node's state: addresses, peers, transfers,
	// bandwidth.
	Status(ctx context.Context) (StatusInfo, error)
	// Peers lists the connected peers.
	Peers(ctx context.Context) ([]PeerInfo, error)
	// Shares lists what the node shares.
	Shares(ctx context.Context) ([]ShareInfo, error)
	// Share indexes a file or folder in place, serves and announces it.
	Share(ctx context.Context, req ShareRequest) (ShareInfo, error)
	// Unshare stops sharing a root.
	Unshare(ctx context.Context, root string) error
	// Inspect reads a root's DAG: files, sizes, leaf CIDs.
	Inspect(ctx context.Context, req InspectRequest) (ListingInfo, error)
	// Get fetches a target to a path, calling progress (if not nil) with
	// each report; it does not return before the fetch has ended.
	Get(ctx context.Context, req GetRequest, progress func(ProgressInfo)) (GetResult, error)
	// Cat fetches a target that names one file and writes its bytes to w
	// in order.
	Cat(ctx context.Context, req GetRequest, w io.Writer) error
	// Export writes a CARv1 of a target's whole DAG to w, fetching what
	// the node lacks first.
	Export(ctx context.Context, req ExportRequest, w io.Writer) error
	// Import takes in the CAR file at req.Path (every block verified) and
	// shares its roots.
	Import(ctx context.Context, req ImportRequest) (ImportInfo, error)
}

// Errors that callers match with errors.Is.
var (
	// ErrNoDaemon: no daemon answers for this home.
	ErrNoDaemon = errors.New("daemon: no daemon is running")
	// ErrImpostor: what answers at the home's API address is not the
	// home's daemon (it cannot sign with the node's identity key): most
	// likely another program took the port of a daemon that stopped
	// without cleaning up. Nothing was sent to it. It matches ErrNoDaemon
	// too.
	ErrImpostor = fmt.Errorf("daemon: the API address is not answered by this home's daemon: %w", ErrNoDaemon)
	// ErrUnauthorized: the daemon refused the API token.
	ErrUnauthorized = errors.New("daemon: API token refused")
	// ErrNotFound: no peer provides the root, or the node has no such share.
	ErrNotFound = errors.New("daemon: not found")
	// ErrExists: the destination exists and Force was not given.
	ErrExists = errors.New("daemon: destination exists")
	// ErrBadRequest: the request itself is wrong (a malformed root, a
	// relative path).
	ErrBadRequest = errors.New("daemon: bad request")
)

// IDInfo is a node's identity.
type IDInfo struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"` // with /p2p/ID
}

// PeerInfo is a connected peer.
type PeerInfo struct {
	ID     string   `json:"id"`
	Addrs  []string `json:"addrs"` // remote addresses of its connections
	Banned bool     `json:"banned,omitempty"`
	// Direct: at least one connection goes straight to the peer; else
	// they go through Relays. Limited: only relayed connections under the
	// relay's limits (the exchange waits for a hole punch).
	Direct  bool     `json:"direct"`
	Relays  []string `json:"relays,omitempty"`
	Limited bool     `json:"limited,omitempty"`
	// Path says it for people: "direct ADDR" or "relayed via RELAY …".
	Path string `json:"path"`
}

// ShareRequest asks to share a path.
type ShareRequest struct {
	Path      string `json:"path"` // absolute
	Chunker   string `json:"chunker,omitempty"`
	ChunkSize string `json:"chunk_size,omitempty"`
	// FollowLinks shares what the symbolic links in the folder point at;
	// without it a link that stays inside the folder is shared as a
	// symlink and one that leads out is left out (ShareInfo.SkippedLinks).
	FollowLinks bool `json:"follow_links,omitempty"`
	// PreserveMode and PreserveMtime store UnixFS 1.5 mode and mtime.
	PreserveMode  bool `json:"preserve_mode,omitempty"`
	PreserveMtime bool `json:"preserve_mtime,omitempty"`
}

// ShareInfo is a share.
type ShareInfo struct {
	Root    string    `json:"root"`
	Ticket  string    `json:"ticket,omitempty"`
	Path    string    `json:"path"`
	Name    string    `json:"name"`
	Dir     bool      `json:"dir"`
	Size    int64     `json:"size"`
	Files   int64     `json:"files"`
	Chunks  int64     `json:"chunks,omitempty"`
	Chunker string    `json:"chunker"`
	Created time.Time `json:"created,omitzero"`
	Stale   bool      `json:"stale,omitempty"`
	Skipped []string  `json:"skipped,omitempty"`
	// SkippedLinks are symbolic links that lead out of the folder, left
	// out.
	SkippedLinks []string `json:"skipped_links,omitempty"`
	// Standard says, in Share's answer only, whether the root is the
	// unixfs-v1-2025 one that Kubo computes for the same bytes.
	Standard *bool `json:"standard,omitempty"`
	// Reused counts, in Share's answer only, the files that were not read
	// again: unchanged since the last share of the same path (see
	// node.Node.Share); ReusedBytes are their bytes. Both are left out of
	// the JSON when none was (a first share).
	Reused      int64 `json:"reused,omitempty"`
	ReusedBytes int64 `json:"reused_bytes,omitempty"`
	// KeepsStamps says, in Share's answer only, whether the path lies on
	// a file system where the store keeps stamps (node.ShareResult): if
	// false, every chunk served is hashed again each time.
	KeepsStamps *bool `json:"keeps_stamps,omitempty"`
}

// InspectRequest asks for a listing of a DAG.
type InspectRequest struct {
	Target string   `json:"target"` // ROOT, TICKET or ROOT/path
	Peers  []string `json:"peers,omitempty"`
}

// ListingInfo is what a root holds.
type ListingInfo struct {
	Root  string     `json:"root"`
	Name  string     `json:"name"`
	Dir   bool       `json:"dir"`
	Size  int64      `json:"size"`
	Files []FileInfo `json:"files"`
	Dirs  []string   `json:"dirs,omitempty"`
}

// FileInfo is one file of a listing.
type FileInfo struct {
	Path    string      `json:"path"`
	CID     string      `json:"cid"`
	Size    int64       `json:"size"`
	Chunker string      `json:"chunker"`
	Chunks  []ChunkInfo `json:"chunks"`
}

// ChunkInfo is one chunk of a file.
type ChunkInfo struct {
	CID    string `json:"cid"`
	Offset int64  `json:"offset"`
	Size   uint32 `json:"size"`
}

// GetRequest asks to fetch a target.
type GetRequest struct {
	Target string `json:"target"` // ROOT, TICKET or ROOT/path
	// Dest is the absolute path to write to; if empty, the target's own
	// name inside Dir.
	Dest  string   `json:"dest,omitempty"`
	Dir   string   `json:"dir,omitempty"`
	Force bool     `json:"force,omitempty"`
	Peers []string `json:"peers,omitempty"` // multiaddrs with /p2p/ID
}

// ProgressInfo is one progress report of a fetch.
type ProgressInfo struct {
	Root    string  `json:"root"`
	Bytes   int64   `json:"bytes"` // verified
	Total   int64   `json:"total"`
	Chunks  int64   `json:"chunks"`
	Of      int64   `json:"of"`
	Resumed int64   `json:"resumed"` // chunks found on disk at the start
	Peers   int     `json:"peers"`
	Rate    float64 `json:"rate"` // bytes per second, recent
	ETA     float64 `json:"eta"`  // seconds; 0 when unknown or done
	Elapsed float64 `json:"elapsed"`
	Done    bool    `json:"done,omitempty"`
	// Dest is where the fetch writes; the first report, sent before
	// anything is fetched, carries only it.
	Dest string `json:"dest,omitempty"`
}

// GetResult is a finished fetch.
type GetResult struct {
	Root      string           `json:"root"`
	Dest      string           `json:"dest"`
	Name      string           `json:"name"`
	Dir       bool             `json:"dir"`
	Size      int64            `json:"size"`
	Chunks    int64            `json:"chunks"`
	Resumed   int64            `json:"resumed"`
	Local     int64            `json:"local_bytes"` // copied from files this node had
	Seconds   float64          `json:"seconds"`
	Duplicate int64            `json:"duplicate_bytes"`
	FromPeers map[string]int64 `json:"from_peers"`
}

// TransferInfo is a fetch in progress.
type TransferInfo struct {
	Target  string    `json:"target"`
	Dest    string    `json:"dest"`
	Started time.Time `json:"started"`
	Bytes   int64     `json:"bytes"`
	Total   int64     `json:"total"`
	Peers   int       `json:"peers"`
}

// StatusInfo is a node's state.
type StatusInfo struct {
	ID        string         `json:"id"`
	Addrs     []string       `json:"addrs"`
	Version   string         `json:"version"`
	Uptime    float64        `json:"uptime_seconds"`
	Peers     int            `json:"peers"`
	DHTPeers  int            `json:"dht_peers"`
	Shares    int            `json:"shares"`
	Transfers []TransferInfo `json:"transfers"`
	Uploads   int64          `json:"upload_sessions"`
	BytesUp   int64          `json:"bytes_up"`
	BytesDown int64          `json:"bytes_down"`
	RateUp    float64        `json:"rate_up"`   // bytes per second, last few seconds
	RateDown  float64        `json:"rate_down"` // bytes per second, last few seconds
	Verified  int64          `json:"chunks_verified"`
	Rejected  int64          `json:"chunks_rejected"`
	Served    int64          `json:"chunks_served"`
	Banned    int            `json:"banned"`
	// Limits are the configured caps.
	Limits LimitsInfo `json:"limits"`
	// Network is "local" or "public" (the public IPFS network);
	// DHTProtocol the DHT's protocol ID ("" without a DHT); BootstrapPeers
	// how many bootstrap peers the node joins through.
	Network        string `json:"network"`
	DHTProtocol    string `json:"dht_protocol,omitempty"`
	BootstrapPeers int    `json:"bootstrap_peers"`
	// Protocols are the stream bytes by libp2p protocol since start.
	Protocols []ProtocolBytesInfo `json:"protocol_bytes"`
	// PrivateNetwork: the node has a swarm key, and talks only to nodes
	// with the same key (over TCP only).
	PrivateNetwork bool `json:"private_network"`
	// AllowPeers, if not empty, are the only peers the node talks to.
	AllowPeers []string `json:"allow_peers"`
	// Reachability is whether peers can dial the node, and how.
	Reachability ReachInfo `json:"reachability"`
	// StaleShares are the shares whose files changed since they were
	// shared: they serve only the chunks that still verify until shared
	// again (`peer share PATH`).
	StaleShares []ShareInfo `json:"stale_shares"`
}

// ProtocolBytesInfo is what one protocol's streams carried.
type ProtocolBytesInfo struct {
	Protocol string `json:"protocol"`
	In       int64  `json:"in"`
	Out      int64  `json:"out"`
}

// LimitsInfo are a node's caps, in bytes per second; 0 means no cap.
type LimitsInfo struct {
	UploadRate       int64 `json:"upload_rate"`
	DownloadRate     int64 `json:"download_rate"`
	PeerUploadRate   int64 `json:"peer_upload_rate"`
	PeerDownloadRate int64 `json:"peer_download_rate"`
	// UploadSlots is how many peers the node sends blocks to at once.
	UploadSlots int `json:"upload_slots"`
}

// ReachInfo is how a node can be reached (see node.Reachability).
type ReachInfo struct {
	// State is "public", "private" or "unknown" (AutoNAT has not decided).
	State string `json:"state"`
	// Forced: State comes from the settings, not from AutoNAT.
	Forced bool `json:"forced,omitempty"`
	// PublicAddrs are the node's own addresses that look public.
	PublicAddrs []string `json:"public_addrs"`
	// Relays are the configured relays; Reservations the slots held on
	// them now.
	Relays       []string          `json:"relays"`
	Reservations []ReservationInfo `json:"reservations"`
	// RelayService is the node's relay service, nil when it runs none.
	RelayService   *RelayServiceInfo `json:"relay_service,omitempty"`
	NATPortMap     bool              `json:"nat_portmap"`
	HolePunching   bool              `json:"hole_punching"`
	AutoNATService bool              `json:"autonat_service"`
	// Direct and Relayed count the connected peers by how they connect.
	Direct  int `json:"peers_direct"`
	Relayed int `json:"peers_relayed"`
}

// ReservationInfo is a slot a relay holds for the node.
type ReservationInfo struct {
	Relay string   `json:"relay"`
	Addrs []string `json:"addrs"` // the node's circuit addresses through it
}

// RelayServiceInfo are the limits of a node's relay service.
type RelayServiceInfo struct {
	Unlimited    bool    `json:"unlimited"`
	Data         int64   `json:"data_bytes,omitempty"`       // per relayed connection, each way
	Duration     float64 `json:"duration_seconds,omitempty"` // per relayed connection
	Reservations int     `json:"reservations"`
	Circuits     int     `json:"circuits_per_peer"`
	Summary      string  `json:"summary"`
}
