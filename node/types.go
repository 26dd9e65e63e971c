package node

import (
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/store"
	"github.com/peer-project/peer/swarm"
)

// Progress describes a fetch in flight.
type Progress struct {
	Root         cid.Cid // zero until the fetch has found the root's DAG
	Bytes, Total int64   // verified bytes, of all
	Chunks, Of   int64   // verified chunks, of all
	Resumed      int64   // chunks found on disk when the fetch started
	Local        int64   // bytes copied from files this node has (shares, downloads, the previous version at the destination)
	Received     int64   // verified bytes received from peers
	Peers        int     // peers with a live session
	Duplicate    int64   // bytes received for chunks already verified
	Done         bool
	// PerPeer is the verified bytes received from each peer. It belongs to
	// the fetch: read it in the Progress callback, or copy it.
	PerPeer map[peer.ID]int64
	Bans    int // peers banned by this fetch
}

func progressOf(p swarm.Progress) Progress {
	return Progress{
		Root: p.Root, Bytes: p.Bytes, Total: p.Total, Chunks: p.Chunks, Of: p.Of, Resumed: p.Resumed,
		Local: p.Local, Received: p.Received, Peers: p.Peers, Duplicate: p.Duplicate, Done: p.Done, PerPeer: p.PerPeer, Bans: p.Bans,
	}
}

// progressFunc adapts a Progress callback (nil stays nil) to the exchange's.
func progressFunc(fn func(Progress)) func(swarm.Progress) {
	if fn == nil {
		return nil
	}
	return func(p swarm.Progress) { fn(progressOf(p)) }
}

// Result describes a finished fetch.
type Result struct {
	Root     cid.Cid // what was fetched: the target's root, or the node below it
	Dest     string  // where it was written
	Name     string  // its name: Target.Name (a UnixFS root has none of its own)
	Dir      bool    // a folder, not a single file
	Files    int     // files in it (1 for a file)
	Size     int64   // bytes in all its files
	Chunks   int64   // chunks in all its files
	Progress Progress
}

func resultOf(r *swarm.Result, name string) *Result {
	return &Result{
		Root: r.Root, Dest: r.Dest, Name: name, Dir: r.Layout.Dir, Files: len(r.Layout.Files),
		Size: r.Layout.Size, Chunks: r.Layout.NumChunks(), Progress: progressOf(r.Progress),
	}
}

// Stats are the exchange's counters since the node started.
type Stats struct {
	BytesUp, BytesDown int64 // chunk bytes sent and received (verified or not)
	ChunksServed       int64
	ChunksVerified     int64
	ChunksRejected     int64 // failed their hash: the sender is struck
	DuplicateBytes     int64 // received for chunks already verified
	Bans               int64
	ServeSessions      int64 // open now
	FetchSessions      int64 // open now
	UnrequestedBlocks  int64
	ProtocolViolations int64
	Chokes             int64 // peers told to wait their turn for an upload slot (Bitswap peers included)
	// BitswapBytesUp and BitswapBytesDown are the part of BytesUp and
	// BytesDown that went over Bitswap (see Config.Bitswap); the rest
	// went over peer's own protocol.
	BitswapBytesUp, BitswapBytesDown int64
	// BitswapDuplicateBytes is the part of DuplicateBytes that came over
	// Bitswap (a block that crossed our CANCEL, or an endgame duplicate).
	BitswapDuplicateBytes int64
}

func statsOf(s swarm.Stats) Stats {
	return Stats{
		BytesUp: s.BytesUp, BytesDown: s.BytesDown, ChunksServed: s.ChunksServed, ChunksVerified: s.ChunksVerified,
		ChunksRejected: s.ChunksRejected, DuplicateBytes: s.DuplicateBytes, Bans: s.Bans,
		ServeSessions: s.ServeSessions, FetchSessions: s.FetchSessions, UnrequestedBlocks: s.UnrequestedBlocks,
		ProtocolViolations: s.ProtocolViolations, Chokes: s.Chokes,
		BitswapBytesUp: s.BitswapBytesUp, BitswapBytesDown: s.BitswapBytesDown, BitswapDuplicateBytes: s.BitswapDuplicateBytes,
	}
}

// Share is a file or folder the node shares.
type Share struct {
	Root     cid.Cid // what people pass around
	Path     string  // absolute path of the shared file or folder
	Name     string
	Dir      bool
	Size     int64 // bytes in all its files
	Files    int64
	Chunking string // how its files were cut, as Chunking.String says
	Created  time.Time
	// Stale: one of its files changed on disk since it was indexed. It
	// serves only the chunks that still verify; share the path again.
	Stale bool
}

func shareOf(s store.Share) Share {
	return Share{
		Root: s.Root, Path: s.Path, Name: s.Name, Dir: s.Dir, Size: s.Size, Files: s.Files,
		Chunking: s.Chunking.String(), Created: s.Created, Stale: s.Stale,
	}
}
