// Package swarm is peer's exchange: it serves the chunks and DAG nodes
// this node has, and fetches a root from every peer that has any of it.
//
// The wire format is package wire; which chunk to ask of whom is decided by
// package sched, a pure state machine. This package is the thin I/O layer
// between the two: it opens and accepts libp2p streams (one per peer and
// root, protocol wire.ProtocolID), feeds what arrives to the scheduler as
// events, and carries out the actions it returns.
//
// Serving. Serve registers a Source for a root: a share indexed in place, or
// a download in progress (which serves the chunks it has verified and
// announces each new one with HAVE). A Serve that replaces a root's source
// moves the root's open sessions to the new one, and tells each of the
// chunks it adds (a finished download adopted as a share, wherever it was
// moved). Every chunk is re-verified against its
// CID as it is read, so a file edited behind the node's back is never served
// as the old content. A few peers are sent blocks at once (upload slots);
// the others are choked and wait in line, and a freed slot goes first to
// the peer that has sent this node the most lately (tit-for-tat), every
// third to the one that has waited longest: package choker decides, a pure
// state machine like sched, which the serving sessions drive (see slots).
// A serving stream joins the resource manager's ServiceName service and
// reserves its block buffers' memory there; a block write that does not
// finish within IdleTimeout (the peer stopped reading) ends the session.
//
// Fetching. Fetch gathers sources (ticket hints, the peers the caller's
// discovery finds, the peers already connected), loads the DAG through
// them, and then runs one event loop per fetch that owns the scheduler.
// Each peer has a reader goroutine that checks every block's length against
// the size the root declares and verifies it against its CID, and writes it
// at its offset in a pre-allocated partial file before telling the loop; a
// block that fails either names its sender, who is struck and then banned.
// The partial file (or folder, made 0700) sits beside the destination as
// ".NAME.ROOT.peer-partial", one per root, locked while a fetch uses it and
// never opened through a symlink, and is renamed into place only when every
// chunk is verified and every file is its declared size; a folder's is
// renamed only if it holds nothing the root does not list. A fetch started
// again resumes from it, verifying what it holds instead of fetching it
// again. Written pages go to disk and leave the page
// cache as the download goes (see writeBehind); a streaming reader
// (ReadBack) gets the chunks just verified from memory instead (see
// handoff).
//
// Looking again. While fewer than a handful of sessions have a chunk the
// fetch lacks (a peer that holds only chunks it has, as one cut off from
// every source with it does, is no source), it runs discovery and dials its
// hints again every RediscoverEvery. When it has made no progress for an
// eighth of StallTimeout, it does so whatever its sessions, and also dials
// again the peers it knew whose sessions ended and the peers the host is
// connected to, so that a partition that heals or a link that comes back is
// found; after StallTimeout without progress it fails with ErrStalled,
// which names the peers it tried and what each did. A fetch never waits
// without end and without a word.
//
// Bitswap. With Config.Bitswap the swarm also speaks IPFS's Bitswap
// (package bitswap): it serves the blocks of the roots registered here, and
// nothing else, to the peers it admits, within the same rate caps and
// upload slots (bsserve.go: a Bitswap peer served is a quiet session of the
// choker, its messages of blocks waiting in Bitswap's Sending for its
// turn); and a fetch whose hinted or discovered provider refuses the
// wire protocol but speaks Bitswap runs a session with it through a Link
// (bsconn.go): a peer of the same scheduler that has every chunk, asked by
// CID, struck and banned for a block that answers none of its wants.
//
// Every goroutine is owned: each starts through a group (session.go) that
// its owner waits for; Close stops the stream handler, ends every session
// and waits for all of them. Both sides end a session the same way: ERROR
// with the reason, then the stream closed (endWith).
package swarm
